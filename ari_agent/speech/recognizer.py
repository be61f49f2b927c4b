"""What every speech recogniser speaks: the :class:`SpeechRecognizer` protocol and its results.

A recogniser serves one call, one turn at a time::

    rec.start(expect)          # a Listen: the Expectation biases the search (grammar or domain LM)
    rec.feed(pcm8k)            # 20 ms frames as they arrive; cheap (incremental decoding)
    rec.partial()              # best guess so far (the endpointer asks whether it completes the turn)
    t = rec.finish()           # end of turn: the final Transcript

``finish`` blocks (pocketsphinx: a few ms to ~100 ms; whisper: the whole inference, in a worker
process) - call it from a thread (``asyncio.to_thread``) in the event loop's process.

Empty ``text`` means no match (nothing in the grammar fitted, or silence). ``error`` is set when the
engine failed (a crashed or timed-out worker): the turn is then a no-match too, and the caller of
``finish`` decides whether to re-prompt or hand the call to a person.

The engines (:mod:`~ari_agent.speech.pocketsphinx_stt`, :mod:`~ari_agent.speech.whisper_stt`) build
on this module; :mod:`~ari_agent.speech.stt` picks one of them from the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy.typing as npt

from ari_agent.errors import AriAgentError
from ari_agent.seam import Expectation

__all__ = ["SettlingRecognizer", "SpeculativeRecognizer", "SpeechRecognizer", "SttError", "Transcript", "Word"]


class SttError(AriAgentError):
    """A speech recogniser could not be set up (bad model file, missing engine, bad grammar)."""


@dataclass(frozen=True)
class Word:
    text: str
    start_ms: int
    end_ms: int
    confidence: float = 1.0


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float = 0.0
    words: tuple[Word, ...] = ()
    latency_ms: float = 0.0
    """From the ``finish()`` call to its result (what the caller waits after end of turn)."""
    audio_ms: int = 0
    """Audio the recogniser heard this turn."""
    engine: str = ""
    error: str | None = None
    speculative: bool = False
    """Decoded ahead, at a pause before the end of turn, and still valid when the turn ended."""
    unsure: bool = False
    """The value in it (a number, code, date or time) is not to be used as heard: two recognisers disagreed on
    it, or only one could hear the turn. The conversation reads it back first ("I have 1 2 3 4. Is that
    right?")."""
    off_record: bool = False
    """An identity code turn checked against the code on the caller's record (``speech/code_check.py``), and
    the check ran and found the audio does not say it. The conversation counts an identity question whose
    every answer was off the record as a failed verification, not a code it could not hear."""

    @property
    def no_match(self) -> bool:
        return not self.text

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class SpeechRecognizer(Protocol):
    engine: str

    def start(self, expect: Expectation) -> None:
        """Begin a turn: set up the search for what the caller is expected to say."""
        ...

    def feed(self, pcm8k: npt.ArrayLike) -> None:
        """Next chunk (int16, 8 kHz, mono) of the turn's audio."""
        ...

    def partial(self) -> str:
        """Best hypothesis so far ('' when none; engines without streaming always give '')."""
        ...

    def finish(self) -> Transcript:
        """End the turn and return its transcript (blocking)."""
        ...

    def close(self) -> None:
        """Free the recogniser's resources (the call ended)."""
        ...


@runtime_checkable
class SpeculativeRecognizer(Protocol):
    """An engine that decodes a whole utterance at once (whisper) can start the final decode at the first
    pause, while the endpointer still waits to be sure the caller has finished (see ``call.recognition``)."""

    def decode(self, pcm8k: npt.ArrayLike) -> Transcript:
        """Decode exactly this audio as the current turn's final result (blocking; the turn goes on)."""
        ...

    def discard(self) -> None:
        """End the current turn without decoding what was fed (a speculative result was used)."""
        ...


@runtime_checkable
class SettlingRecognizer(Protocol):
    """A speculative engine whose early result still needs the rest of the turn (a paired recogniser: the
    grammar engine's final result on the whole turn, combined with the early whisper decode)."""

    def settle(self, early: Transcript) -> Transcript:
        """End the current turn with ``early`` (this turn's :meth:`SpeculativeRecognizer.decode` result, still
        valid): the turn's final transcript. Replaces ``discard`` (blocking)."""
        ...
