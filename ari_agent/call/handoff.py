"""Handing the caller to a human queue that can take the call, with context a human can act on.

``HandoffDesk.hand_off`` (one per process and event loop, shared by all calls):

1. reads the loop-prevention marker (``ARI_AGENT_TRIED``) from the caller's channel;
2. asks AMI (``QueueSummary``) about the requested queue and its fallbacks and plans the target
   (:mod:`ari_agent.call.handoff_plan`): an empty or too-slow queue gives way to its fallback; AMI
   unreachable → the requested queue unchecked (logged), never a stranded caller;
3. lets the agent say what happens next ("I'm putting you through to our support team; the wait is
   about two minutes"; after the conversation's own handoff line only what it could not know: "The wait
   is about two minutes.", another team, every team busy);
4. stores the full redacted context in Redis under the call id, sets short ``__ARI_AGENT_*`` variables
   (inherited by the queue member's channel) and continues the caller into ``dialplan/handoff.conf``.

``send_to_queue`` is the last step on its own (variables + continue), for callers that have no
conversation to announce anything (orphaned channels after an agent restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import wave
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ari_agent.call.handoff_context import brief_text, handoff_record, handoff_variables, transcript_from_log
from ari_agent.call.handoff_plan import (
    HandoffPlan,
    announcement,
    candidates,
    plan_handoff,
    settings_for,
    tried_queues,
)
from ari_agent.call.handoff_store import HandoffStore
from ari_agent.config import Config
from ari_agent.media.pcm import Pcm
from ari_agent.telephony.ami import AmiClient, AmiUnavailable
from ari_agent.telephony.ami_events import QueueSummary
from ari_agent.telephony.ari import AriClient, AriError, AriUnreachable
from ari_agent.telephony.events import Channel

log = logging.getLogger(__name__)

__all__ = ["HandoffDesk", "HandoffResult", "close_handoff_desks", "handoff_desk", "handoff_variables",
           "send_to_queue"]

TRIED_VARIABLE = "ARI_AGENT_TRIED"


async def send_to_queue(ari: AriClient, channel_id: str, context_name: str, queue: str, reason: str,
                        context: Mapping[str, str], *, variables: Mapping[str, str] | None = None) -> bool:
    """Set the handoff variables on the caller's channel and continue it to ``queue``; False (logged)
    when ARI refused or was unreachable (the caller is still ours then). ``variables``: the ones to set
    (default: :func:`handoff_variables` of ``reason`` and ``context``)."""
    try:
        for name, value in (variables if variables is not None else handoff_variables(reason, context)).items():
            await ari.set_variable(channel_id, name, value)
        await ari.continue_in_dialplan(channel_id, context_name, queue)
    except (AriError, AriUnreachable) as exc:
        log.error("channel %s: handoff to %s failed: %s", channel_id, queue, exc)
        return False
    return True


@dataclass(frozen=True)
class HandoffResult:
    ok: bool
    plan: HandoffPlan
    announced: str | None = None


Announce = Callable[[str], Awaitable[object]]
Render = Callable[[str], Awaitable[Pcm]]  # text → 8 kHz mono int16 (the agent's voice)


class HandoffDesk:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.ami: AmiClient | None = AmiClient(cfg.ami) if cfg.handoff.check_queue else None
        self.store = HandoffStore(cfg.redis.url, ttl_s=cfg.handoff.context_ttl_s)
        self.extra_patterns = tuple((p.label, p.pattern) for p in cfg.redaction.extra_patterns)

    def start(self) -> None:
        """Open the AMI connection ahead of the first handoff (non-blocking)."""
        if self.ami is not None:
            self.ami.start()

    async def close(self) -> None:
        if self.ami is not None:
            await self.ami.close()
        await self.store.close()

    async def summaries(self, queues: Iterable[str]) -> dict[str, QueueSummary | None] | None:
        """AMI's view of ``queues``; None when AMI cannot be asked (a partial dict when it fails mid-way)."""
        if self.ami is None:
            return None
        if not self.ami.connected and not await self.ami.wait_connected(self.cfg.ami.action_timeout_s):
            log.warning("AMI unreachable (%s): transferring without a queue check", self.ami.last_error or "no login")
            return None
        out: dict[str, QueueSummary | None] = {}
        for queue in queues:
            try:
                out[queue] = await self.ami.queue_summary(queue)
            except AmiUnavailable as exc:
                log.warning("queue check of %s failed: %s: transferring without it", queue, exc)
                return out or None
        return out

    async def plan(self, requested: str, tried: Iterable[str] = ()) -> HandoffPlan:
        tried = tuple(tried)
        if requested in self.cfg.handoff.destinations:
            return plan_handoff(self.cfg.handoff, requested, None, tried)
        chain = [q for q in candidates(self.cfg.handoff, requested)
                 if not (self.cfg.handoff.loop_prevention and q in tried)]
        return plan_handoff(self.cfg.handoff, requested, await self.summaries(chain), tried)

    async def hand_off(self, ari: AriClient, call_id: str, caller: Channel, queue: str, reason: str,
                       context: Mapping[str, str], *, transcript_log: Iterable[Mapping[str, Any]] = (),
                       announce: Announce | None = None, render: Render | None = None,
                       still_here: Callable[[], bool] = lambda: True,
                       committing: Callable[[str], None] = lambda target: None,
                       told: bool = False, ready: Callable[[], Awaitable[object]] | None = None) -> HandoffResult:
        """``told``: the caller has just been told it is going to a person (the announcement then says only
        what is new: :func:`~ari_agent.call.handoff_plan.announcement`). ``ready``: awaited once the plan is
        made and before anything is said or the caller moved: the line still playing, so that the queue
        check runs while it plays instead of after it (dead air: up to ``ami.action_timeout_s`` with AMI
        down)."""
        tried = tried_queues(await _variable(ari, caller.id, TRIED_VARIABLE))
        plan = await self.plan(queue, tried)
        if plan.rerouted:
            log.info("call %s: %s → %s (%s)", call_id, queue, plan.target,
                     plan.why or ("exhausted" if plan.exhausted else "unchecked"))
        if ready is not None:
            await ready()
        said = announcement(self.cfg.handoff, plan, told=told) if announce is not None else None
        if said and announce is not None:
            await announce(said)
        if not still_here():
            return HandoffResult(False, plan, said)
        committing(plan.target)  # from here the caller may leave Stasis for the queue at any moment
        transcript = transcript_from_log(transcript_log, self.extra_patterns)
        record = handoff_record(call_id, plan.target, reason, context, caller_number=caller.caller_number,
                                caller_name=caller.caller_name, transcript=transcript, requested_queue=queue,
                                rerouted_because=plan.why, extra_patterns=self.extra_patterns)
        await self.store.put(call_id, record)
        marker = [*tried, plan.target] if not plan.exhausted else list(tried)
        variables = handoff_variables(reason, context, call_id=call_id, tried=marker,
                                      extra_patterns=self.extra_patterns)
        if plan.rerouted:
            variables["__ARI_AGENT_REQUESTED_QUEUE"] = queue
        if render is not None and not plan.exhausted and settings_for(self.cfg.handoff, plan.target).warm:
            brief = await self._brief(call_id, record, render)
            if brief:
                variables["__ARI_AGENT_BRIEF"] = brief
        ok = await send_to_queue(ari, caller.id, self.cfg.agent.handoff_context, plan.target, reason, context,
                                 variables=variables)
        return HandoffResult(ok, plan, said)


    async def _brief(self, call_id: str, record: Mapping[str, Any], render: Render) -> str | None:
        """Render the warm-transfer brief into a WAV Asterisk can play; its path as Asterisk sees it
        (no extension, as Queue()'s announce override wants), or None (logged) when that failed: the
        transfer then goes ahead cold rather than not at all."""
        pbx_dir = self.cfg.handoff.briefs_dir.rstrip("/")
        host_path = self.cfg.pbx.root / pbx_dir.lstrip("/") / f"{call_id}.wav"
        try:
            pcm = await render(brief_text(record))
            await asyncio.to_thread(_write_wav, host_path, pcm)
        except Exception as exc:  # a TTS or disk failure must not stop the handoff
            log.warning("call %s: warm-transfer brief not rendered (%s): transferring cold", call_id, exc)
            return None
        return f"{pbx_dir}/{call_id}"


BRIEF_KEEP_S = 3600.0  # briefs older than this are deleted when a new one is written


def _write_wav(path: Path, pcm: Pcm) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cutoff = time.time() - BRIEF_KEEP_S
    for old in path.parent.glob("call-*.wav"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    tmp.chmod(0o644)
    tmp.replace(path)


async def _variable(ari: AriClient, channel_id: str, name: str) -> str:
    try:
        value = await ari.get_variable(channel_id, name)
    except (AriError, AriUnreachable):
        return ""  # unset variables are a 404 on ARI
    return value if isinstance(value, str) else ""


# One desk per event loop (its AMI connection and Redis pool belong to that loop), per config.
_desks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, tuple[Config, HandoffDesk]]] = \
    weakref.WeakKeyDictionary()


def handoff_desk(cfg: Config) -> HandoffDesk:
    """The running loop's desk for ``cfg`` (created, and its AMI connection started, on first use)."""
    per_loop = _desks.setdefault(asyncio.get_running_loop(), {})
    entry = per_loop.get(id(cfg))
    if entry is None or entry[0] is not cfg:
        entry = (cfg, HandoffDesk(cfg))
        per_loop[id(cfg)] = entry
        entry[1].start()
    return entry[1]


async def close_handoff_desks() -> None:
    """Close the running loop's desks (the agent's shutdown hook)."""
    per_loop = _desks.pop(asyncio.get_running_loop(), {})
    for _cfg, desk in per_loop.values():
        await desk.close()
