"""Feeding one call's recogniser while the caller speaks, so its result is ready at end of turn.

Decoding starts at the speech onset (with the audio before it) and is fed in 100 ms batches in a
worker thread; every partial result goes to the turn rules (``TurnCompletion.observe``) and is what
the endpointer's ``completes`` check reads. All recogniser calls run in threads, one at a time.

Engines that decode the utterance whole (whisper: :class:`SpeculativeRecognizer`) get the final decode
started at the caller's first pause (``speculate``), while the endpointer still waits to be sure the turn
is over; when the turn ends with nothing voiced after that pause, that result is the turn's, and the
caller waits only for what is left of it. Speech after the pause makes it stale: it is dropped.

Such engines give no partial results, so the early decode's words stand in for one: once it is back, and
while the caller has said nothing since the pause it started at (the listener keeps :attr:`voiced_until`
current), its text is :attr:`partial` (after the turn rules have ``observe``-d it), and the endpointer's
``completes`` check can end a complete turn at 250 ms of silence instead of 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import numpy as np

from ari_agent.media.pcm import Pcm
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import SettlingRecognizer, SpeculativeRecognizer, SpeechRecognizer, Transcript
from ari_agent.speech.turn_completion import TurnCompletion

log = logging.getLogger(__name__)

BATCH_FRAMES = 5  # 100 ms of audio per feed


class RecognizerFeed:
    def __init__(self, recognizer: SpeechRecognizer, rules: TurnCompletion) -> None:
        self.recognizer = recognizer
        self.rules = rules
        self._partial = ""
        self._early: tuple[int, str] | None = None  # (key, text) of the latest early decode back
        self.voiced_until: int | None = None  # when the caller was last voiced (the listener sets it)
        self._lock = asyncio.Lock()
        self._active = False
        self._buffer: list[Pcm] = []
        self._feeding: asyncio.Task[None] | None = None
        self._spec_key: int | None = None
        self._spec: asyncio.Task[Transcript] | None = None
        self.speculations = 0  # started, for the call log and benchmarks
        self.speculation_hits = 0

    @property
    def active(self) -> bool:
        return self._active

    @property
    def partial(self) -> str:
        """The words heard so far: the streaming recogniser's partial result, else the early decode's text
        while the caller has said nothing since the pause it was started at ('' once they go on)."""
        if self._partial:
            return self._partial
        early = self._early
        return early[1] if early is not None and early[0] == self.voiced_until else ""

    @property
    def spec_key(self) -> int | None:
        """The pause the latest early decode was started at (None: none this turn)."""
        return self._spec_key

    def can_speculate(self, key: int) -> bool:
        """Would :meth:`speculate` start a decode for the pause ``key`` now? (Cheap: asked every frame.)"""
        return (self._active and isinstance(self.recognizer, SpeculativeRecognizer) and key != self._spec_key
                and (self._spec is None or self._spec.done()))

    async def start(self, expect: Expectation, audio: Pcm | None = None) -> None:
        """Begin decoding a turn (keeps an utterance already being decoded: the caller barged in).
        ``audio``: what was heard before this moment (the onset and its pre-roll)."""
        async with self._lock:
            if not self._active:
                await asyncio.to_thread(self.recognizer.start, expect)
                self._active = True
                self._partial = ""
                self._early = None
        if audio is not None:
            self._buffer = [audio]

    def push(self, pcm: Pcm) -> None:
        """A 20 ms frame of the caller's speech; decoded in batches in the background."""
        if not self._active:
            return
        self._buffer.append(pcm)
        if sum(p.size for p in self._buffer) >= BATCH_FRAMES * pcm.size and (
                self._feeding is None or self._feeding.done()):
            batch, self._buffer = np.concatenate(self._buffer), []
            self._feeding = asyncio.get_running_loop().create_task(self._feed(batch))

    async def _feed(self, pcm: Pcm) -> None:
        async with self._lock:
            if self._active:
                await asyncio.to_thread(self._feed_sync, pcm)

    def _feed_sync(self, pcm: Pcm) -> None:
        self.recognizer.feed(pcm)
        partial = self.recognizer.partial()
        self.rules.observe(partial)
        self._partial = partial

    def speculate(self, key: int, audio: Pcm) -> bool:
        """The caller paused: start the final decode of ``audio`` (the utterance so far) now. ``key``
        identifies the pause (the media time the caller was last voiced). One decode in flight at a time;
        False when none was started (the engine streams, or one is still running)."""
        if not self.can_speculate(key):
            return False
        self._spec_key = key
        self._spec = asyncio.get_running_loop().create_task(self._decode_early(key, audio))
        self.speculations += 1
        return True

    async def _decode_early(self, key: int, audio: Pcm) -> Transcript:
        rec = self.recognizer
        assert isinstance(rec, SpeculativeRecognizer)
        transcript = await asyncio.to_thread(rec.decode, audio)
        text = transcript.text.strip()
        if transcript.ok and text and key == self._spec_key and self._active:
            # judged in this thread (the classifier is slow), then offered to the endpointer as the partial
            try:
                await asyncio.to_thread(self.rules.observe, text)
            except Exception:  # the turn then just waits its full silence; the transcript stands
                log.exception("turn rules failed on an early decode")
                return transcript
            if key == self._spec_key:
                self._early = (key, text)
        return transcript

    async def finish(self, expect: Expectation, utterance: Pcm, key: int | None = None) -> Transcript:
        """The turn ended: decode what is left and return the final transcript. ``utterance`` (the
        whole turn's audio) is decoded from scratch if decoding never started. ``key``: the media time
        the caller was last voiced; a decode started at a pause with the same key is the result."""
        spec, spec_key = self._spec, self._spec_key
        self._spec, self._spec_key, self._early = None, None, None
        if spec is not None and key is not None and key == spec_key and self._active:
            t0 = time.perf_counter()
            transcript = await spec
            if transcript.ok:  # a failed early decode: the turn is decoded again below
                async with self._lock:
                    rec = self.recognizer
                    if isinstance(rec, SettlingRecognizer):
                        transcript = await asyncio.to_thread(rec.settle, transcript)
                    elif isinstance(rec, SpeculativeRecognizer):
                        await asyncio.to_thread(rec.discard)
                    self._buffer = []
                    self._active = False
                self.speculation_hits += 1
                return dataclasses.replace(transcript, latency_ms=(time.perf_counter() - t0) * 1000.0,
                                           speculative=True)
        async with self._lock:
            if not self._active:
                await asyncio.to_thread(self.recognizer.start, expect)
                await asyncio.to_thread(self.recognizer.feed, utterance)
            elif self._buffer:
                await asyncio.to_thread(self._feed_sync, np.concatenate(self._buffer))
            self._buffer = []
            self._active = False
            return await asyncio.to_thread(self.recognizer.finish)

    async def close(self) -> None:
        if self._feeding is not None and not self._feeding.done():
            self._feeding.cancel()
        await asyncio.to_thread(self.recognizer.close)
