"""Speaking on the line: prompts piece by piece (clauses for a neural voice, else sentences), stopped at
once when the caller barges in.

The text comes as a :class:`~ari_agent.speech.tts.SpeechStream`: each piece is queued on the line the
moment it is rendered, so the first plays while the next render, and back to back when rendering keeps
up. When it does not, the line idles (silence, or nothing with DTX) until the next piece is ready, which
then follows in order. While a piece renders, a barge-in, the caller hanging up or a hold stops at
once: the audio queued is flushed and the stream closed, so pieces not rendered yet never are. A
barge-in reports the words the caller actually heard, from how many 20 ms frames of each piece went
out before the flush.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ari_agent.call.awaiting import first_of
from ari_agent.call.call_log import CallLog
from ari_agent.call.timing import TurnTiming
from ari_agent.media.pcm import SAMPLES_PER_FRAME, Pcm
from ari_agent.metrics import BARGE_INS
from ari_agent.seam import Say
from ari_agent.speech.tts import SpeechChunk, SpeechStream

log = logging.getLogger(__name__)


class AudioOut(Protocol):
    """The outbound side of the call's media (the RTP endpoint)."""

    def play(self, pcm: Pcm) -> asyncio.Future[float]:
        """Queue audio; the future resolves with the monotonic time its first packet went out."""
        ...

    def stop_playback(self) -> int:
        """Drop everything queued; returns the 20 ms frames dropped."""
        ...

    async def drained(self) -> None:
        """Return once everything queued has gone out."""
        ...


@dataclass
class _Spoken:
    text: str
    frames: int


def frames_of(pcm: Pcm) -> int:
    return -(-pcm.size // SAMPLES_PER_FRAME)


def heard_text(spoken: list[_Spoken], frames_sent: int) -> str:
    """The words the caller heard before cutting in, from how many 20 ms frames went out."""
    heard: list[str] = []
    left = frames_sent
    for part in spoken:
        if left >= part.frames:
            heard.append(part.text)
            left -= part.frames
            continue
        words = part.text.split()
        k = int(len(words) * max(0, left) / max(1, part.frames))
        if k:
            heard.append(" ".join(words[:k]))
        break
    return " ".join(heard)


class Playback:
    def __init__(self, out: AudioOut, speech: Callable[[str], SpeechStream], *, caller_gone: asyncio.Event,
                 barge_in: asyncio.Event, set_playing: Callable[[bool], None], call_log: CallLog) -> None:
        self.out = out
        self.speech = speech  # a text -> its rendered pieces, in order (PromptCache.stream)
        self.caller_gone = caller_gone
        self.barge_in = barge_in
        self.set_playing = set_playing  # the endpointer's echo-aware mode
        self.call_log = call_log
        self.barge_ins: list[str] = []
        self._held = asyncio.Event()  # the line is no longer the conversation's (a forced handoff is announced)

    @property
    def held(self) -> bool:
        return self._held.is_set()

    @held.setter
    def held(self, value: bool) -> None:
        if value:
            self._held.set()
        else:
            self._held.clear()

    def hold(self) -> None:
        """Stop what is playing and say nothing more from the conversation (a supervisor's takeover or the
        maximum duration: the call layer speaks its own line, then the caller is transferred)."""
        self.held = True
        self.out.stop_playback()

    async def say(self, say: Say, turn: TurnTiming | None = None) -> str | None:
        """Speak ``say``; None when it played out (or the caller hung up), else the text heard before
        the caller barged in. ``turn``: the caller turn this answers (first-audio timings)."""
        spoken: list[_Spoken] = []
        self.set_playing(True)
        stream = self.speech(say.text)
        try:
            while True:
                if self.held:
                    return None
                chunk = await self._next_piece(stream, say.interruptible)
                if self.held:
                    return None
                if self.caller_gone.is_set():
                    self.out.stop_playback()  # nobody is listening: send nothing more
                    return None
                if chunk is None:
                    if say.interruptible and self.barge_in.is_set():
                        return self._barged(spoken)
                    break
                started = self.out.play(chunk.pcm)
                if turn is not None and turn.tts_first_audio is None:
                    turn.tts_first_audio = time.monotonic()
                    started.add_done_callback(functools.partial(_note_first_packet, turn))
                spoken.append(_Spoken(chunk.text, frames_of(chunk.pcm)))
                if say.interruptible and self.barge_in.is_set():
                    return self._barged(spoken)
            waits = {"drained": self.out.drained(), "gone": self.caller_gone.wait()}
            if say.interruptible:
                waits["barge_in"] = self.barge_in.wait()
            done = await first_of(**waits)
            if self.caller_gone.is_set():
                self.out.stop_playback()  # nobody is listening: send nothing more
            elif "barge_in" in done and "drained" not in done:
                return self._barged(spoken)
            return None
        finally:
            await stream.aclose()  # pieces not rendered yet (a barge-in, a hang-up, a hold) never are
            self.set_playing(False)

    async def _next_piece(self, stream: SpeechStream, interruptible: bool) -> SpeechChunk | None:
        """The stream's next piece, or None when there is none or something stopped the wait first: a
        barge-in (when ``interruptible``), the caller hanging up, a hold. The piece being rendered then is
        left to the stream's closing."""
        if stream.ready():
            return await stream.next()
        piece: asyncio.Future[SpeechChunk | None] = asyncio.ensure_future(stream.next())
        waits: dict[str, Awaitable[object]] = {"piece": piece, "gone": self.caller_gone.wait(),
                                               "held": self._held.wait()}
        if interruptible:
            waits["barge_in"] = self.barge_in.wait()
        done = await first_of(**waits)
        return piece.result() if "piece" in done else None

    async def wait_playout(self) -> bool:
        """Until what is queued has gone out; False if the caller hung up first."""
        await first_of(drained=self.out.drained(), gone=self.caller_gone.wait())
        return not self.caller_gone.is_set()

    def _barged(self, spoken: list[_Spoken]) -> str:
        dropped = self.out.stop_playback()
        heard = heard_text(spoken, sum(p.frames for p in spoken) - dropped)
        self.barge_ins.append(heard)
        BARGE_INS.inc()
        self.call_log.add("barge_in", heard=heard)
        log.info("call %s: barge-in after %r (dropped %d frames)", self.call_log.call_id, heard, dropped)
        return heard


def _note_first_packet(turn: TurnTiming, started: asyncio.Future[float]) -> None:
    if not started.cancelled():
        turn.first_rtp = started.result()
        turn.observe()
