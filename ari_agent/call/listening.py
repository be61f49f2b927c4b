"""Listening to the caller: 20 ms frames → endpointer → turn events, with the recogniser fed as they speak.

Asterisk sends nothing while a caller is silent, so gaps in the audio are filled with silence by the
clock, keeping the endpointer's media timeline true. A speech onset while a prompt plays sets
:attr:`Listener.barge_in` (cleared when that utterance ends): playback awaits it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from ari_agent.call.call_log import CallLog
from ari_agent.call.recognition import RecognizerFeed
from ari_agent.call.timing import TurnTiming
from ari_agent.media.endpointer import Endpointer, EndpointEvent, NoInput, SpeechEnd, SpeechStart
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.loudness import LevelBaseline, utterance_level_db
from ari_agent.media.pcm import FRAME_MS, SAMPLES_PER_FRAME, Pcm
from ari_agent.seam import Event, Expectation, Timeout, Utterance
from ari_agent.speech.recognizer import Transcript
from ari_agent.speech.turn_completion import TurnCompletion, is_patient

SILENCE_FRAME: Pcm = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
GAP_FILL_S = 0.06  # no frame for this long: the caller is silent, fill the gap


class Listener:
    def __init__(self, endpointer: Endpointer, feed: RecognizerFeed, rules: TurnCompletion, call_log: CallLog,
                 *, clock: Callable[[], float] = time.monotonic, speculate_after_ms: int = 0) -> None:
        """``speculate_after_ms``: a pause this long inside an utterance starts its final decode early
        (engines that decode whole utterances; 0: never). While one is still decoding a pause the caller
        has since spoken past, the next pause gets its own as soon as that one is back."""
        self.ep = endpointer
        self.speculate_after_ms = speculate_after_ms
        self.feed = feed
        self.rules = rules
        self.call_log = call_log
        self.clock = clock
        self.barge_in = asyncio.Event()
        self.media_ms = 0
        self.expect = Expectation()  # what the current (or last) Listen expects
        self.upcoming = Expectation()  # what the Listen after the prompt now playing will expect
        self.transcripts: list[Transcript] = []
        self.loudness = LevelBaseline()  # the caller's level per turn, against their own median (raised voice)
        self._frames: asyncio.Queue[Pcm] = asyncio.Queue()
        self._events: asyncio.Queue[EndpointEvent] = asyncio.Queue()

    def on_frame(self, frame: AudioFrame) -> None:
        """The call's frame listener (runs in the RTP receive path: never blocks)."""
        self._frames.put_nowait(frame.pcm)

    # ------------------------------------------------------------------ one turn
    async def begin(self, expect: Expectation, timeout_s: float) -> None:
        """A Listen starts: decoding is set up for ``expect`` and the no-input timer armed."""
        self.expect = expect
        self.rules.begin(expect)
        await self.feed.start(expect)
        self.ep.start_turn(self.media_ms, patient=is_patient(expect), completes=self.rules.completes,
                           no_input_ms=int(timeout_s * 1000))

    def cancel(self) -> None:
        """The turn was answered another way (keypad): stop the no-input timer."""
        self.ep.cancel_turn()

    async def next_utterance(self, timings: list[TurnTiming]) -> Event:
        """The caller's next utterance as an event (or ``Timeout("silence")``)."""
        while True:
            ev = await self._events.get()
            if isinstance(ev, NoInput):
                self.call_log.add("no_input")
                return Timeout("silence")
            if isinstance(ev, SpeechEnd):
                timing = TurnTiming(speech_end=time.monotonic(), endpoint_wait_ms=self.media_ms - ev.end_ms)
                transcript = await self.feed.finish(self.expect, ev.audio, key=ev.end_ms)
                timing.stt_final = time.monotonic()
                timing.text = transcript.text
                timings.append(timing)
                self.transcripts.append(transcript)
                # once per utterance, from the audio the endpointer kept (not per frame); echo-suppressed
                # barge-ins count like any other turn
                raised = self.loudness.observe(utterance_level_db(ev.audio)) if transcript.text.strip() else None
                self.call_log.add("heard", text=transcript.text, confidence=round(transcript.confidence, 2),
                                  stt_ms=round(transcript.latency_ms), error=transcript.error,
                                  speculative=transcript.speculative, unsure=transcript.unsure,
                                  **({"raised_db": raised} if raised is not None else {}),
                                  **({"off_record": True} if transcript.off_record else {}))
                return Utterance(transcript.text, transcript.confidence, unsure=transcript.unsure, raised_db=raised,
                                 off_record=transcript.off_record)

    # ------------------------------------------------------------------ the media clock
    async def run(self) -> None:
        last = self.clock()
        while True:
            try:
                pcms = [await asyncio.wait_for(self._frames.get(), GAP_FILL_S)]
                last = self.clock()
            except TimeoutError:
                n = int((self.clock() - last) / (FRAME_MS / 1000))
                last += n * FRAME_MS / 1000
                pcms = [SILENCE_FRAME] * n
            for pcm in pcms:
                await self._push(pcm)

    async def _push(self, pcm: Pcm) -> None:
        ev = self.ep.push(pcm, self.media_ms)
        self.media_ms += FRAME_MS
        self.feed.voiced_until = self.ep.voiced_until_ms  # an early decode's words stand until the caller goes on
        if isinstance(ev, SpeechStart):
            # Start decoding now (with the audio before the onset) so the result is ready at end of turn.
            await self.feed.start(self.upcoming if ev.barge_in else self.expect, self.ep.utterance_audio())
            if ev.barge_in:
                self.barge_in.set()
        elif self.ep.in_speech:
            self.feed.push(pcm)
            if self.speculate_after_ms and self.ep.trailing_silence_ms >= self.speculate_after_ms:
                key = self.ep.voiced_until_ms
                if key is not None and self.feed.can_speculate(key):
                    self.feed.speculate(key, self.ep.utterance_audio())
        if isinstance(ev, SpeechEnd):
            self.barge_in.clear()
        if ev is not None:
            self._events.put_nowait(ev)
