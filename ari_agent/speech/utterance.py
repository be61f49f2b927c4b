"""One whole recorded utterance through a recogniser, fed as the line delivers it (20 ms frames).

Shared by ``ari-agent transcribe`` and ``ari-agent bench stt`` so both measure the same path:
``start`` with the turn's expectation, ``feed`` frame by frame, ``finish``; with the wall-clock
times an admin or a benchmark wants (the whole decode, and the wait after the audio ended).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ari_agent.media.pcm import SAMPLES_PER_FRAME, Pcm
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import SpeechRecognizer, Transcript


@dataclass(frozen=True)
class Recognised:
    transcript: Transcript
    decode_ms: float
    """From ``start`` to the result: feeding (incremental decoding) and finishing."""
    finish_ms: float
    """From ``finish`` to the result: what the caller waits once the turn has ended."""


def recognise_utterance(recognizer: SpeechRecognizer, expect: Expectation, pcm: Pcm) -> Recognised:
    started = time.perf_counter()
    recognizer.start(expect)
    for i in range(0, pcm.size, SAMPLES_PER_FRAME):
        recognizer.feed(pcm[i:i + SAMPLES_PER_FRAME])
    t0 = time.perf_counter()
    result = recognizer.finish()
    done = time.perf_counter()
    return Recognised(result, (done - started) * 1000.0, (done - t0) * 1000.0)
