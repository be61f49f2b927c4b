"""One call, end to end: answer, bridge with an externalMedia channel, run the conversation, tear down.

The session owns everything it creates (bridge, media channel, UDP socket, tasks) and releases all
of it in ``finally``, whichever side hangs up and whatever fails. A failure while the caller is
still on the line ends in a handoff to a human queue, never in a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ari_agent.call.recorder import CallRecorder
from ari_agent.config import Config
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Codec
from ari_agent.metrics import ACTIVE_CALLS, CALLS, HANDOFFS, RTP_PACKETS
from ari_agent.telephony.ari import AriClient, AriError, AriNotFound, AriUnreachable
from ari_agent.telephony.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    StasisEnd,
    StasisStart,
)
from ari_agent.telephony.rtp_transport import PacingTicker, RtpEndpoint

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
    rtp: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0


class Conversation(Protocol):
    """What runs once the media path is up (the first greeting today; the speech loop later)."""

    async def run(self, call: CallSession) -> None: ...


def handoff_variables(reason: str, context: dict[str, str]) -> dict[str, str]:
    """Channel variables for a handoff: ``__ARI_AGENT_<KEY>`` (the ``__`` makes the queue member's
    channel inherit them, so the screen-pop sees them). Keys are made safe for the dialplan."""
    renamed = {"verified_identity": "verified"}
    out = {"__ARI_AGENT_INTENT": "", "__ARI_AGENT_SUMMARY": "", "__ARI_AGENT_VERIFIED": "none"}
    for key, value in context.items():
        safe = re.sub(r"[^A-Za-z0-9]+", "_", renamed.get(key, key)).strip("_").upper()
        if safe:
            out[f"__ARI_AGENT_{safe}"] = str(value)[:500]
    out["__ARI_AGENT_REASON"] = reason
    return out


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
    ) -> None:
        self.call_id = call_id
        self.caller = caller.channel
        self.start_event = caller
        self.ari = ari
        self.cfg = cfg
        self.ticker = ticker
        self.conversation = conversation
        self._expect_channel = expect_channel
        self.codec = Codec.from_name(cfg.media.format)
        self.recorder = CallRecorder(max_seconds=cfg.agent.max_call_s)
        self.endpoint = RtpEndpoint(self.codec, self._on_frame, jitter_depth_frames=cfg.media.jitter_depth_frames,
                                    record_lateness=record_lateness, send_silence=cfg.media.send_silence)
        self.media_channel_id = f"{call_id}-media"
        self.bridge_id = f"{call_id}-bridge"
        self.outcome = CallOutcome(call_id, self.caller.id)
        self.caller_gone = asyncio.Event()
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.frame_listeners: list[Callable[[AudioFrame], None]] = []
        self._bridge_created = False
        self._media_created = False
        self._tearing_down = False
        self.started_at = time.monotonic()

    # ------------------------------------------------------------------ events (from the manager)
    def on_event(self, event: AriEvent) -> None:
        ch = getattr(event, "channel", None)
        cid = ch.id if ch is not None else None
        if cid == self.caller.id and isinstance(event, (StasisEnd, ChannelDestroyed, ChannelHangupRequest)):
            if self.outcome.ended_by == "unknown" and not self._tearing_down:
                self.outcome.ended_by = "caller"
            self.caller_gone.set()
        elif cid == self.media_channel_id and isinstance(event, (StasisEnd, ChannelDestroyed)):
            if not self._tearing_down:
                log.warning("call %s: media channel ended unexpectedly", self.call_id)
                self.caller_gone.set()
        elif cid == self.caller.id and isinstance(event, ChannelDtmfReceived):
            self.dtmf.put_nowait(event.digit)

    def _on_frame(self, frame: AudioFrame) -> None:
        self.recorder.add(frame)
        for listener in self.frame_listeners:
            listener(frame)

    # ------------------------------------------------------------------ media helpers for conversations
    async def play(self, pcm: npt.NDArray[np.int16]) -> bool:
        """Send audio and wait until it has gone out; False if the caller hung up first."""
        self.endpoint.play(pcm)
        while not self.endpoint.outbound.is_idle:
            if self.caller_gone.is_set():
                self.endpoint.stop_playback()
                return False
            await asyncio.sleep(0.02)
        return not self.caller_gone.is_set()

    async def wait_caller_gone(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.caller_gone.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> CallOutcome:
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
        return self.outcome

    async def _setup(self) -> None:
        try:
            await self.ari.answer(self.caller.id)
        except AriNotFound:
            raise CallEnded from None
        await self.ari.create_bridge("mixing", name=f"ari-agent {self.call_id}", bridge_id=self.bridge_id)
        self._bridge_created = True
        await self.ari.add_channel(self.bridge_id, self.caller.id)
        port = await self.endpoint.open(self.cfg.media.bind_host)
        started = asyncio.ensure_future(self._expect_channel(self.media_channel_id, self))
        try:
            info = await self.ari.external_media(
                f"{self.cfg.media.bind_host}:{port}", self.cfg.media.format, channel_id=self.media_channel_id,
                variables={"ARI_AGENT_CALL_ID": self.call_id},
            )
            self._media_created = True
            self.endpoint.set_remote(info.local_address, info.local_port)
            # Known race: the HTTP reply can beat the media channel's StasisStart; addChannel before
            # it fails 422 "Channel not in Stasis application". Wait for it.
            await asyncio.wait_for(asyncio.shield(started), 5.0)
        finally:
            if not started.done():
                started.cancel()
        await self.ari.add_channel(self.bridge_id, self.media_channel_id)
        self.ticker.add(self.endpoint)
        if self.caller_gone.is_set():
            raise CallEnded

    async def _converse(self) -> None:
        conv = asyncio.ensure_future(self.conversation.run(self))
        gone = asyncio.ensure_future(self.caller_gone.wait())
        try:
            done, _ = await asyncio.wait({conv, gone}, timeout=self.cfg.agent.max_call_s,
                                        return_when=asyncio.FIRST_COMPLETED)
            if conv in done:
                conv.result()  # re-raise a conversation failure
        finally:
            for t in (conv, gone):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None) -> bool:
        """Send the caller to a human queue, with the context in inherited channel variables."""
        if self.caller_gone.is_set():
            return False
        try:
            for name, value in handoff_variables(reason, context or {}).items():
                await self.ari.set_variable(self.caller.id, name, value)
            self._tearing_down = True  # the caller leaving Stasis is now expected
            await self.ari.continue_in_dialplan(self.caller.id, self.cfg.agent.handoff_context, queue)
        except (AriError, AriUnreachable) as exc:
            log.error("call %s: handoff to %s failed: %s", self.call_id, queue, exc)
            return False
        self.outcome.ended_by = "handoff"
        HANDOFFS.labels(queue).inc()
        self.outcome.handoff_queue = queue
        self.outcome.handoff_reason = reason
        log.info("call %s: handed off to %s (%s)", self.call_id, queue, reason)
        return True

    async def _handoff_on_failure(self, reason: str) -> None:
        if not self.caller_gone.is_set():
            await self.handoff(self.cfg.agent.handoff_extension, f"agent_failure: {reason}"[:120])

    async def _teardown(self) -> None:
        self._tearing_down = True
        self.ticker.remove(self.endpoint)
        self.endpoint.close()
        self.endpoint.flush_received()
        if self._media_created:
            await self.ari.quietly(self.ari.hangup(self.media_channel_id))
        if self._bridge_created:
            await self.ari.quietly(self.ari.destroy_bridge(self.bridge_id))
        if self.outcome.ended_by in ("unknown", "agent", "error") and not self.caller_gone.is_set():
            if self.outcome.ended_by == "unknown":
                self.outcome.ended_by = "agent"
            await self.ari.quietly(self.ari.hangup(self.caller.id))
        self.outcome.duration_s = time.monotonic() - self.started_at
        s = self.endpoint.stats
        j = self.endpoint.jitter.stats
        self.outcome.rtp = {
            "datagrams": s.datagrams, "accepted": s.accepted, "malformed": s.malformed,
            "wrong_payload_type": s.wrong_payload_type, "foreign_source": s.foreign_source,
            "foreign_ssrc": s.foreign_ssrc, "sent": s.sent, "lost": j.lost, "late": j.late,
            "duplicates": j.duplicates, "reordered": j.reordered,
        }
        for result in ("accepted", "malformed", "wrong_payload_type", "foreign_source", "foreign_ssrc"):
            RTP_PACKETS.labels("in", result).inc(self.outcome.rtp[result])
        RTP_PACKETS.labels("out", "sent").inc(s.sent)
        with contextlib.suppress(OSError):
            path = self.cfg.agent.recordings_dir / self.call_id / "received.wav"
            self.outcome.recording = await asyncio.to_thread(self.recorder.write, path)
        log.info("call %s: ended by %s after %.1fs rtp=%s", self.call_id, self.outcome.ended_by,
                 self.outcome.duration_s, self.outcome.rtp)
