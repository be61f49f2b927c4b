"""Playback of a streamed text: the first clause goes out while the rest render, the pieces follow in order
and back to back when rendering keeps up (silence, never reordering, when it does not), and a barge-in
stops at once, cancelling the clauses not rendered yet. The real RTP endpoint's queue and pacer, ticked
by the test; a voice whose rendering the test holds and releases."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ari_agent.call.call_log import CallLog
from ari_agent.call.playback import Playback
from ari_agent.media.pcm import Codec, Pcm
from ari_agent.seam import Say
from ari_agent.speech.tts import CancelToken, PromptCache, TtsError
from ari_agent.telephony.rtp_transport import RtpEndpoint

TEXT = "Your order has shipped, it left the warehouse on Monday, and it should arrive on Thursday."
CLAUSES = ["Your order has shipped,", "it left the warehouse on Monday,", "and it should arrive on Thursday."]
WORD_SAMPLES = 800  # 100 ms of audio per word


class HeldVoice:
    """Renders clause k (of ``CLAUSES``) as ``words x 100 ms`` of the constant sample value k + 1, after
    ``delay_s``, and only once the test has released it (``release``), when ``held``."""

    cache_key = "held-voice"

    def __init__(self, *, held: bool = True, delay_s: float = 0.0) -> None:
        self.held = held
        self.delay_s = delay_s
        self.started: list[str] = []
        self.finished: list[str] = []
        self.gates = {c: threading.Event() for c in CLAUSES}

    def release(self, clause: str) -> None:
        self.gates[clause].set()

    def synthesize(self, text: str) -> Pcm:
        self.started.append(text)
        if text not in CLAUSES:
            raise AssertionError(f"{text!r} is not one of the clauses")
        if self.held and not self.gates[text].wait(10):
            raise AssertionError(f"{text!r} was never released")
        time.sleep(self.delay_s)
        self.finished.append(text)
        return np.full(WORD_SAMPLES * len(text.split()), CLAUSES.index(text) + 1, dtype=np.int16)


class Line:
    """The real endpoint, ticked by a task every ``tick_s`` (20 ms of media each); it keeps, per tick,
    whether a frame of speech went out, and every piece of audio in the order it was queued."""

    def __init__(self, tick_s: float = 0.002) -> None:
        self.endpoint = RtpEndpoint(Codec.ULAW, lambda f: None)
        self.tick_s = tick_s
        self.ticks: list[bool] = []
        self.queued: list[Pcm] = []
        self.task: asyncio.Task[None] | None = None

    def play(self, pcm: Pcm) -> asyncio.Future[float]:
        self.queued.append(pcm)
        return self.endpoint.play(pcm)

    def stop_playback(self) -> int:
        return self.endpoint.stop_playback()

    async def drained(self) -> None:
        await self.endpoint.drained()

    def tick(self) -> None:
        self.ticks.append(self.endpoint.outbound.queued_frames > 0)
        self.endpoint.tick(0.0)

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.tick_s)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    def idle_ticks_while_speaking(self) -> int:
        """Ticks without speech between the first and the last tick with speech (gaps in the answer)."""
        spoke = [i for i, s in enumerate(self.ticks) if s]
        return 0 if not spoke else sum(not s for s in self.ticks[spoke[0]:spoke[-1] + 1])


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    ln = Line()
    yield ln
    if ln.task is not None:
        ln.task.cancel()


def playback(line: Line, voice: HeldVoice, tmp_path: Path, barge_in: asyncio.Event | None = None) -> Playback:
    cache = PromptCache(voice, tmp_path, clauses=True)
    return Playback(line, cache.stream, caller_gone=asyncio.Event(), barge_in=barge_in or asyncio.Event(),
                    set_playing=lambda playing: None, call_log=CallLog("call-1", time.monotonic()))


async def until(predicate: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def test_the_first_clause_is_on_the_line_before_the_last_is_rendered(line: Line, tmp_path: Path) -> None:
    voice = HeldVoice()
    pb = playback(line, voice, tmp_path)
    saying = asyncio.ensure_future(pb.say(Say(TEXT)))
    voice.release(CLAUSES[0])
    await until(lambda: len(line.queued) == 1)
    # the first clause is queued on the line (its audio only) while the second renders and the third waits
    assert np.all(line.queued[0] == 1) and line.queued[0].size == 4 * WORD_SAMPLES
    assert voice.finished == CLAUSES[:1] and CLAUSES[2] not in voice.started
    line.start()
    await until(lambda: line.endpoint.outbound.packets_sent > 0)  # and it goes out
    assert CLAUSES[2] not in voice.finished
    voice.release(CLAUSES[1])
    voice.release(CLAUSES[2])
    assert await asyncio.wait_for(saying, 10) is None
    assert voice.finished == CLAUSES


async def test_clauses_follow_back_to_back_in_order_when_rendering_keeps_up(line: Line, tmp_path: Path) -> None:
    # 20 ms to render a clause of 400-600 ms of audio (played here 10x fast: 40-60 ms): rendering keeps up
    voice = HeldVoice(held=False, delay_s=0.02)
    line.start()
    assert await asyncio.wait_for(playback(line, voice, tmp_path).say(Say(TEXT)), 10) is None
    played = np.concatenate(line.queued)
    expected = np.concatenate([np.full(WORD_SAMPLES * len(c.split()), i + 1) for i, c in enumerate(CLAUSES)])
    assert np.array_equal(played, expected)  # every clause, whole, in order
    assert line.idle_ticks_while_speaking() == 0  # no gap between clauses
    assert sum(line.ticks) == expected.size // 160


async def test_slow_rendering_leaves_silence_between_clauses_never_reorders(line: Line, tmp_path: Path) -> None:
    # 150 ms to render a clause played in 40-60 ms: the line waits (silence fill) for each next clause
    voice = HeldVoice(held=False, delay_s=0.15)
    line.start()
    assert await asyncio.wait_for(playback(line, voice, tmp_path).say(Say(TEXT)), 10) is None
    assert [int(p[0]) for p in line.queued] == [1, 2, 3] and all(np.all(p == p[0]) for p in line.queued)
    assert line.idle_ticks_while_speaking() > 0
    assert line.endpoint.outbound.packets_sent == len(line.ticks)  # silence filled the idle ticks


async def test_barge_in_stops_at_once_and_cancels_clauses_not_rendered(line: Line, tmp_path: Path) -> None:
    voice = HeldVoice()
    barge_in = asyncio.Event()
    pb = playback(line, voice, tmp_path, barge_in)
    saying = asyncio.ensure_future(pb.say(Say(TEXT)))
    voice.release(CLAUSES[0])
    await until(lambda: len(line.queued) == 1)
    for _ in range(10):  # 200 ms of the first clause's 400 ms go out
        line.tick()
    await until(lambda: CLAUSES[1] in voice.started)  # the second clause is rendering, held
    barge_in.set()
    heard = await asyncio.wait_for(saying, 0.5)  # at once: not after the clause being rendered
    assert heard == "Your order"
    assert line.endpoint.outbound.queued_frames == 0 and not line.endpoint.playing
    voice.release(CLAUSES[1])  # the clause that was rendering finishes in its thread, and is dropped
    await until(lambda: CLAUSES[1] in voice.finished)
    await asyncio.sleep(0.1)
    assert CLAUSES[2] not in voice.started  # the clause not rendered yet never is
    assert len(line.queued) == 1 and pb.barge_ins == ["Your order"]


async def test_an_uninterruptible_prompt_plays_through_a_barge_in(line: Line, tmp_path: Path) -> None:
    voice = HeldVoice(held=False)
    barge_in = asyncio.Event()
    barge_in.set()
    line.start()
    assert await asyncio.wait_for(playback(line, voice, tmp_path, barge_in).say(Say(TEXT, interruptible=False)),
                                  10) is None
    assert voice.finished == CLAUSES and len(line.queued) == 3


async def test_a_hangup_while_a_clause_renders_stops_the_rest(line: Line, tmp_path: Path) -> None:
    voice = HeldVoice()
    pb = playback(line, voice, tmp_path)
    saying = asyncio.ensure_future(pb.say(Say(TEXT)))
    voice.release(CLAUSES[0])
    await until(lambda: CLAUSES[1] in voice.started)
    pb.caller_gone.set()
    assert await asyncio.wait_for(saying, 0.5) is None
    assert line.endpoint.outbound.queued_frames == 0
    voice.release(CLAUSES[1])
    await asyncio.sleep(0.1)
    assert CLAUSES[2] not in voice.started


class StoppableVoice(HeldVoice):
    """Renders the first clause at once; any other until the stream cancels it (then gives up, as Piper)."""

    def __init__(self) -> None:
        super().__init__(held=False)
        self.stopped = threading.Event()

    def synthesize_cancellable(self, text: str, cancel: CancelToken) -> Pcm:
        if text == CLAUSES[0]:
            return self.synthesize(text)
        self.started.append(text)
        cancel.on_cancel(self.stopped.set)
        if not self.stopped.wait(10):
            raise AssertionError("never cancelled")
        raise TtsError("cancelled")


async def test_barge_in_stops_the_clause_being_rendered_in_an_engine_that_can_stop(line: Line,
                                                                                   tmp_path: Path) -> None:
    voice = StoppableVoice()
    barge_in = asyncio.Event()
    pb = playback(line, voice, tmp_path, barge_in)
    saying = asyncio.ensure_future(pb.say(Say(TEXT)))
    await until(lambda: CLAUSES[1] in voice.started)
    barge_in.set()
    assert await asyncio.wait_for(saying, 0.5) == ""
    assert voice.stopped.wait(0.5)  # the engine was told to stop the clause it was rendering
    await asyncio.sleep(0.05)
    assert CLAUSES[2] not in voice.started
