"""Who ended the call (``CallOutcome.ended_by``) whichever order the last events arrive in.

A whole ``CallSession.run`` (answer, bridge, externalMedia on a real RTP endpoint and pacing ticker,
conversation, teardown) on a fake ARI line that records what it is asked and delivers the caller's
hang-up events at a chosen step, the way Asterisk's event stream interleaves with the session's own
teardown requests. The same paths run against the real Asterisk in tests/integration/test_call_path.py;
the orderings here are the ones a real call only hits by chance."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ari_agent.call.handoff import close_handoff_desks
from ari_agent.call.session import CallSession
from ari_agent.config import Config, load_config
from ari_agent.telephony.ari import AriNotFound, ExternalMediaInfo
from ari_agent.telephony.events import StasisStart, parse_event
from ari_agent.telephony.rtp_transport import PacingTicker

CALLER = "caller-1"


def event(kind: str, channel_id: str) -> Any:
    return parse_event({"type": kind, "application": "ari-agent", "args": ["inbound"],
                        "channel": {"id": channel_id, "name": "PJSIP/x", "state": "Up"}})


class LineAri:
    """One caller's ARI line. ``on_request``: a step name (``"hangup:<id>"``, ``"destroy_bridge"``) →
    what happens on the event stream when the session makes that request."""

    def __init__(self, rtp_sink: tuple[str, int]) -> None:
        self.rtp_sink = rtp_sink
        self.session: CallSession | None = None
        self.calls: list[tuple[str, ...]] = []
        self.on_request: dict[str, Callable[[], None]] = {}

    def _step(self, name: str) -> None:
        hook = self.on_request.pop(name, None)
        if hook is not None:
            hook()

    async def answer(self, cid: str) -> None:
        self.calls.append(("answer", cid))

    async def create_bridge(self, bridge_type: str = "mixing", name: str = "", bridge_id: str | None = None) -> None:
        self.calls.append(("create_bridge", bridge_id or ""))

    async def add_channel(self, bid: str, cid: str) -> None:
        self.calls.append(("add_channel", bid, cid))

    async def external_media(self, external_host: str, fmt: str, *, channel_id: str | None = None,
                             **kw: Any) -> ExternalMediaInfo:
        self.calls.append(("external_media", channel_id or ""))
        return ExternalMediaInfo(channel_id or "", self.rtp_sink[0], self.rtp_sink[1], {})

    async def hangup(self, cid: str, reason: str = "normal") -> None:
        self.calls.append(("hangup", cid))
        await asyncio.sleep(0)  # the request's round trip
        self._step(f"hangup:{cid}")

    async def destroy_bridge(self, bid: str) -> None:
        self.calls.append(("destroy_bridge", bid))
        await asyncio.sleep(0)
        self._step("destroy_bridge")

    async def quietly(self, coro: Any) -> None:
        await coro

    def caller_hangs_up(self) -> None:
        """What Asterisk sends when the caller hangs up."""
        assert self.session is not None
        for kind in ("ChannelHangupRequest", "StasisEnd", "ChannelDestroyed"):
            self.session.on_event(event(kind, CALLER))


class Goodbye:
    """The conversation says goodbye and hangs up (``Hangup(reason="completed")``): it returns."""

    async def run(self, call: CallSession) -> None:
        await asyncio.sleep(0.01)


class Listens:
    """The conversation is still listening when the caller hangs up (it is cancelled)."""

    def __init__(self, ari: LineAri) -> None:
        self.ari = ari

    async def run(self, call: CallSession) -> None:
        await asyncio.sleep(0.01)
        self.ari.caller_hangs_up()
        await asyncio.sleep(30)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config(None, env={"ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
                                  "ARI_AGENT__HANDOFF__CHECK_QUEUE": "false",
                                  "ARI_AGENT__AGENT__RECORDINGS_DIR": str(tmp_path / "recordings")})


@pytest.fixture
async def line() -> AsyncIterator[LineAri]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # Asterisk's side of the RTP: it takes what we send
    sink.bind(("127.0.0.1", 0))
    try:
        yield LineAri(sink.getsockname())
    finally:
        sink.close()
        await close_handoff_desks()


async def run_call(cfg: Config, ari: LineAri, conversation: Any) -> CallSession:
    async def expect_channel(channel_id: str, session: CallSession) -> StasisStart:
        started = event("StasisStart", channel_id)
        assert isinstance(started, StasisStart)
        return started

    caller = event("StasisStart", CALLER)
    ticker = PacingTicker()
    session = CallSession("call-1", caller, ari, cfg, ticker, conversation,  # type: ignore[arg-type]
                          expect_channel=expect_channel)
    ari.session = session
    try:
        await asyncio.wait_for(session.run(), 10)
    finally:
        await ticker.close()
    return session


@pytest.mark.parametrize("when", ["hangup:call-1-media", "destroy_bridge"])
async def test_the_agent_ended_it_when_the_callers_hangup_arrives_during_teardown(
        cfg: Config, line: LineAri, when: str) -> None:
    """The agent said goodbye and hung up; the caller's hang-up lands while the media path closes."""
    line.on_request[when] = line.caller_hangs_up
    session = await run_call(cfg, line, Goodbye())
    assert when not in line.on_request  # the caller's hang-up did arrive during the teardown
    assert session.caller_gone.is_set()
    assert session.outcome.ended_by == "agent"
    assert ("hangup", CALLER) not in line.calls  # already gone: not hung up again


async def test_the_agent_ended_it_and_hangs_up_the_caller_still_on_the_line(cfg: Config, line: LineAri) -> None:
    session = await run_call(cfg, line, Goodbye())
    assert session.outcome.ended_by == "agent"
    assert ("hangup", CALLER) in line.calls


async def test_the_caller_ended_it_when_they_hang_up_mid_conversation(cfg: Config, line: LineAri) -> None:
    session = await run_call(cfg, line, Listens(line))
    assert session.outcome.ended_by == "caller"
    assert ("hangup", CALLER) not in line.calls


class QueueLine(LineAri):
    """A line whose ``continue`` (the handoff to a queue) makes Asterisk send the caller's StasisEnd before
    the request's answer arrives (``hangs_up``: the caller hangs up as the handoff is committed instead)."""

    def __init__(self, rtp_sink: tuple[str, int], *, hangs_up: bool = False) -> None:
        super().__init__(rtp_sink)
        self.hangs_up = hangs_up

    async def get_variable(self, cid: str, name: str) -> str:
        raise AriNotFound("GET", f"/channels/{cid}/variable", 404, f"no variable {name}")

    async def set_variable(self, cid: str, name: str, value: str) -> None:
        self.calls.append(("set_variable", cid, name))

    async def continue_in_dialplan(self, cid: str, context: str, extension: str, priority: int = 1) -> None:
        self.calls.append(("continue", cid, extension))
        assert self.session is not None
        if self.hangs_up:
            self.caller_hangs_up()
        else:
            self.session.on_event(event("StasisEnd", CALLER))  # left Stasis for the queue
        await asyncio.sleep(0.5)  # the answer comes after the event: the session has stopped waiting by then


class HandsOff:
    """The conversation hands the caller to the support queue (as a Transfer action does)."""

    async def run(self, call: CallSession) -> None:
        await asyncio.sleep(0.01)
        await call.handoff("support", "silence", {"intent": "order_status"})
        await asyncio.sleep(30)  # not reached when the session stops the conversation at the StasisEnd


async def test_a_handoff_whose_stasis_end_beats_the_continue_answer_is_recorded_as_a_handoff(
        cfg: Config, line: LineAri) -> None:
    """Under load Asterisk's StasisEnd for the continued caller arrives before the answer to the continue
    request; the session then stops the conversation that was waiting on it. The transfer happened (the
    caller is in the queue), so the outcome is the handoff, not "unknown" (a call record "open", with no
    queue or reason: one of the audio evaluation's transfers was judged wrong this way)."""
    ari = QueueLine(line.rtp_sink)
    session = await run_call(cfg, ari, HandsOff())
    assert ("continue", CALLER, "support") in ari.calls
    assert session.outcome.ended_by == "handoff"
    assert (session.outcome.handoff_queue, session.outcome.handoff_reason) == ("support", "silence")
    assert ("hangup", CALLER) not in ari.calls  # in the queue now: never hung up by the agent


async def test_a_hang_up_while_the_handoff_is_committed_is_not_a_handoff(cfg: Config, line: LineAri) -> None:
    ari = QueueLine(line.rtp_sink, hangs_up=True)
    session = await run_call(cfg, ari, HandsOff())
    assert session.outcome.ended_by != "handoff" and session.outcome.handoff_queue is None
