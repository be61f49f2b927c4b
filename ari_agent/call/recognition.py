"""Feeding one call's recogniser while the caller speaks, so its result is ready at end of turn.

Decoding starts at the speech onset (with the audio before it) and is fed in 100 ms batches in a
worker thread; every partial result goes to the turn rules (``TurnCompletion.observe``) and is what
the endpointer's ``completes`` check reads. All recogniser calls run in threads, one at a time.
"""

from __future__ import annotations

import asyncio

import numpy as np

from ari_agent.media.pcm import Pcm
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import SpeechRecognizer, Transcript
from ari_agent.speech.turn_completion import TurnCompletion

BATCH_FRAMES = 5  # 100 ms of audio per feed


class RecognizerFeed:
    def __init__(self, recognizer: SpeechRecognizer, rules: TurnCompletion) -> None:
        self.recognizer = recognizer
        self.rules = rules
        self.partial = ""
        self._lock = asyncio.Lock()
        self._active = False
        self._buffer: list[Pcm] = []
        self._feeding: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self._active

    async def start(self, expect: Expectation, audio: Pcm | None = None) -> None:
        """Begin decoding a turn (keeps an utterance already being decoded: the caller barged in).
        ``audio``: what was heard before this moment (the onset and its pre-roll)."""
        async with self._lock:
            if not self._active:
                await asyncio.to_thread(self.recognizer.start, expect)
                self._active = True
                self.partial = ""
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
        self.partial = partial

    async def finish(self, expect: Expectation, utterance: Pcm) -> Transcript:
        """The turn ended: decode what is left and return the final transcript. ``utterance`` (the
        whole turn's audio) is decoded from scratch if decoding never started."""
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
