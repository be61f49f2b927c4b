"""One call, end to end: answer, bridge with an externalMedia channel, run the conversation, tear down.

The session owns everything it creates (bridge, media channel, UDP socket, tasks) and releases all
of it in ``finally``, whichever side hangs up and whatever fails. A failure while the caller is
still on the line ends in a handoff to a human queue, never in a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ari_agent.call.awaiting import first_of, stop_tasks
from ari_agent.call.awaiting import stop_task as stop_task  # its old home: still importable from here
from ari_agent.call.call_log import CallLog
from ari_agent.call.handoff import Announce, Render, handoff_desk
from ari_agent.call.media_path import MediaPath, media_endpoint
from ari_agent.call.recorder import CallRecorder
from ari_agent.call.tracing import CallSummary, trace_call
from ari_agent.config import Config
from ari_agent.errors import AriAgentError
from ari_agent.governance.at_rest import recording_seal
from ari_agent.log import CALL_ID
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Codec, Pcm
from ari_agent.metrics import ACTIVE_CALLS, CALLS, HANDOFFS
from ari_agent.records.call_facts import CallFacts
from ari_agent.records.writer import CallRecordWriter
from ari_agent.telephony.ari import AriClient, AriError, AriNotFound, AriUnreachable
from ari_agent.telephony.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from ari_agent.telephony.rtp_transport import PacingTicker
from ari_agent.telephony.websocket_media import WebSocketMediaEndpoint

log = logging.getLogger(__name__)


class CallEnded(Exception):
    """The caller is gone; unwind the session."""


@dataclass
class CallOutcome:
    call_id: str
    caller_channel: str
    ended_by: str = "unknown"  # caller | agent | handoff | error
    handoff_queue: str | None = None
    handoff_reason: str | None = None
    recording: Path | None = None
    call_log: Path | None = None  # the stored event log (storage.store_call_logs)
    rtp: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


class Conversation(Protocol):
    """What runs once the media path is up: the speech loop (``VoiceConversation``), or the plain
    greeting of ``conversation.mode: greet_and_listen`` (``GreetAndListen``)."""

    async def run(self, call: CallSession) -> None: ...


class CallSession:
    def __init__(
        self,
        call_id: str,
        caller: StasisStart,
        ari: AriClient,
        cfg: Config,
        ticker: PacingTicker,
        conversation: Conversation,
        *,
        expect_channel: Callable[[str, CallSession], Awaitable[StasisStart]],
        record_lateness: bool = False,
        records: CallRecordWriter | None = None,
    ) -> None:
        self.call_id = call_id
        self.caller = caller.channel
        self.start_event = caller
        self.ari = ari
        self.cfg = cfg
        self.conversation = conversation
        self.codec = Codec.from_name(cfg.media.format)
        # storage.encrypt_at_rest: the recording is sealed (AES-256-GCM, bound to this call id) before it is written
        self.recorder = CallRecorder(max_seconds=cfg.agent.max_call_s, seal=recording_seal(cfg, call_id))
        self.endpoint = media_endpoint(cfg, self.codec, self._on_frame, record_lateness=record_lateness)
        self.media = MediaPath(call_id, self.caller.id, ari, cfg, ticker, self.endpoint,
                               lambda channel_id: expect_channel(channel_id, self))
        self.media_channel_id = self.media.media_channel_id
        self.outcome = CallOutcome(call_id, self.caller.id)
        self.caller_gone = asyncio.Event()
        # The media channel ended while the caller is still on the line (Asterisk hung it up, its lease
        # ran out, the media socket failed): the call cannot be served, so the caller goes to a person now.
        self.media_lost = asyncio.Event()
        if isinstance(self.endpoint, WebSocketMediaEndpoint):  # its socket failed: the same, at once
            self.endpoint.on_failure = self.media_lost.set
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.frame_listeners: list[Callable[[AudioFrame], None]] = []
        self._tearing_down = False
        self._handing_off: tuple[str, str] | None = None  # (queue, reason) of a handoff being committed
        self.started_at = time.monotonic()
        self.started_wall = dt.datetime.now(dt.UTC)
        self.records = records  # one call record at the end (records/writer.py: never raises, bounded wait)

    # ------------------------------------------------------------------ events (from the manager)
    def on_event(self, event: AriEvent) -> None:
        ch = getattr(event, "channel", None)
        cid = ch.id if ch is not None else None
        if cid == self.caller.id and isinstance(event, (StasisEnd, ChannelDestroyed, ChannelHangupRequest)):
            if self.outcome.ended_by == "unknown" and isinstance(event, StasisEnd) and self._handing_off \
                    and not self.caller_gone.is_set():
                # the caller left Stasis for the queue (a hang-up sends ChannelHangupRequest first): the continue
                # worked, even if its answer comes after this event (the conversation waiting on it is then
                # stopped before it can say so, and the call was recorded "open", without its transfer)
                self._handed_off(*self._handing_off)
            if self.outcome.ended_by == "unknown" and not self._tearing_down:
                self.outcome.ended_by = "caller"
            self.caller_gone.set()
        elif cid == self.media_channel_id and isinstance(event, (StasisEnd, ChannelDestroyed)):
            if not self._tearing_down and not self.media_lost.is_set():
                log.warning("call %s: media channel ended unexpectedly; handing the caller to a person",
                            self.call_id)
                self.media_lost.set()
        elif cid == self.caller.id and isinstance(event, ChannelDtmfReceived):
            self.dtmf.put_nowait(event.digit)

    def _on_frame(self, frame: AudioFrame) -> None:
        self.recorder.add(frame)
        for listener in self.frame_listeners:
            listener(frame)

    # ------------------------------------------------------------------ media helpers for conversations
    async def play(self, pcm: Pcm) -> bool:
        """Send audio and wait until it has gone out; False if the caller hung up first."""
        self.endpoint.play(pcm)
        await first_of(drained=self.endpoint.drained(), gone=self.caller_gone.wait())
        if self.caller_gone.is_set():
            self.endpoint.stop_playback()
            return False
        return True

    async def wait_caller_gone(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.caller_gone.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> CallOutcome:
        CALL_ID.set(self.call_id)  # this task's context: every log line of the call carries its id
        log.info("call %s: start channel=%s caller=%s", self.call_id, self.caller.id, self.caller.caller_number)
        ACTIVE_CALLS.inc()
        try:
            await self._setup()
            await self._converse()
        except CallEnded:
            pass
        except asyncio.CancelledError:
            # The agent is shutting down: callers still on the line go to a human, not to silence.
            self.outcome.ended_by = "error"
            await self._handoff_on_failure("agent_shutdown")
            raise
        except (AriError, AriUnreachable, OSError) as exc:
            log.error("call %s: %s", self.call_id, exc)
            if self.outcome.ended_by == "unknown":
                self.outcome.ended_by = "error"
            await self._handoff_on_failure(str(exc))
        except Exception:
            log.exception("call %s: unexpected failure", self.call_id)
            self.outcome.ended_by = "error"
            await self._handoff_on_failure("internal_error")
        finally:
            await self._teardown()
            ACTIVE_CALLS.dec()
            CALLS.labels(self.outcome.ended_by).inc()
            trace_call(self.cfg, self._summary(), getattr(self.conversation, "timings", ()))
            if self.records is not None:
                await self.records.write(self._facts())
        return self.outcome

    def _summary(self) -> CallSummary:
        """What the call's trace is built from (call/tracing.py)."""
        return CallSummary(self.call_id, self.started_wall, self.started_at, self.outcome.duration_s,
                           self.outcome.ended_by, self.outcome.handoff_queue, self.outcome.handoff_reason)

    def _facts(self) -> CallFacts:
        """What the call record is made of (records/call_facts.py)."""
        conv = self.conversation
        timings = getattr(conv, "timings", ())
        return CallFacts(
            self.call_id, self.started_wall, dt.datetime.now(dt.UTC), self.caller.caller_number,
            self.outcome.ended_by, self.outcome.handoff_queue, self.outcome.handoff_reason,
            events=list(getattr(conv, "events", ())), notes=list(getattr(getattr(conv, "engine", None), "notes", ())),
            turn_profiles=[t.profile_ms() for t in timings])

    async def _setup(self) -> None:
        try:
            await self.ari.answer(self.caller.id)
        except AriNotFound:
            raise CallEnded from None
        handoff_desk(self.cfg)  # its AMI connection opens now, ready for a queue check at handoff
        await self.media.open()
        if self.caller_gone.is_set():
            raise CallEnded

    async def _converse(self) -> None:
        conv = asyncio.ensure_future(self.conversation.run(self))
        gone = asyncio.ensure_future(self.caller_gone.wait())
        lost = asyncio.ensure_future(self.media_lost.wait())
        try:
            done, _ = await asyncio.wait({conv, gone, lost}, timeout=self.cfg.agent.max_call_s,
                                        return_when=asyncio.FIRST_COMPLETED)
            if conv in done:
                conv.result()  # re-raise a conversation failure
                self._conversation_ended()
        finally:
            await stop_tasks((conv, gone, lost))
        if lost in done and conv not in done and not self.caller_gone.is_set():
            self.outcome.ended_by = "error"
            await self._handoff_on_failure("media_lost")

    def _conversation_ended(self) -> None:
        """The conversation returned with the caller still on the line (it said goodbye: ``Hangup``, or
        had nothing more to do): the agent ends this call. Recorded now, so that the caller's hang-up
        arriving during the teardown that follows (while the media path closes) cannot leave it
        "unknown" or make it "caller"."""
        if self.outcome.ended_by == "unknown" and not self.caller_gone.is_set():
            self.outcome.ended_by = "agent"

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None, *,
                      announce: Announce | None = None, render: Render | None = None, told: bool = False,
                      ready: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Send the caller to a human queue that can take the call (checked over AMI, else its fallback),
        saying first what happens next through ``announce`` (``render``: the agent's voice, for a warm
        transfer's brief); the context goes into inherited channel variables and, in full, into Redis
        (``call/handoff.py``). ``told``: the caller has just heard a handoff line; ``ready``: awaited
        between the queue check and the announcement (the line playing out)."""
        if self.caller_gone.is_set():
            return False

        def committing(target: str) -> None:
            self._tearing_down = True  # the caller leaving Stasis is now expected
            self._handing_off = (target, reason)

        result = await handoff_desk(self.cfg).hand_off(
            self.ari, self.call_id, self.caller, queue, reason, context or {},
            transcript_log=getattr(self.conversation, "events", ()), announce=announce, render=render,
            still_here=lambda: not self.caller_gone.is_set(), committing=committing, told=told, ready=ready)
        if not result.ok:
            self._tearing_down = False
            self._handing_off = None
            return False
        if self.outcome.ended_by != "handoff":  # not recorded already at the caller's StasisEnd
            self._handed_off(result.plan.target, reason)
        return True

    def _handed_off(self, queue: str, reason: str) -> None:
        self._handing_off = None
        self.outcome.ended_by = "handoff"
        HANDOFFS.labels(queue).inc()
        self.outcome.handoff_queue = queue
        self.outcome.handoff_reason = reason
        log.info("call %s: handed off to %s (%s)", self.call_id, queue, reason)

    async def _handoff_on_failure(self, reason: str) -> None:
        if not self.caller_gone.is_set():
            await self.handoff(self.cfg.agent.handoff_extension, f"agent_failure: {reason}"[:120])

    async def _teardown(self) -> None:
        self._tearing_down = True
        await self.media.close()
        if self.outcome.ended_by in ("unknown", "agent", "error") and not self.caller_gone.is_set():
            if self.outcome.ended_by == "unknown":
                self.outcome.ended_by = "agent"
            await self.ari.quietly(self.ari.hangup(self.caller.id))
        self.outcome.duration_s = time.monotonic() - self.started_at
        self.outcome.rtp = self.media.rtp_stats()
        with contextlib.suppress(OSError):
            path = self.cfg.agent.recordings_dir / self.call_id / "received.wav"
            self.outcome.recording = await asyncio.to_thread(self.recorder.write, path)
        events = getattr(self.conversation, "events", None)
        if isinstance(events, CallLog) and events.call_id == self.call_id:
            try:  # redacted, sealed with storage.encrypt_at_rest (governance/call_logs.py)
                self.outcome.call_log = await asyncio.to_thread(events.store, self.cfg)
            except (OSError, AriAgentError) as exc:
                log.warning("call %s: call log not stored: %s", self.call_id, exc)
        log.info("call %s: ended by %s after %.1fs rtp=%s", self.call_id, self.outcome.ended_by,
                 self.outcome.duration_s, self.outcome.rtp)

