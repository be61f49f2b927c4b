"""The agent process's side of supervision: it publishes the calls it serves (``live_calls.py``) and
carries out a supervisor's takeover of one of them (``takeover.py``).

A takeover request arrives on Redis pub/sub; the process that serves the call (the others ignore it)
sends the caller to the supervisor's queue or interface through the normal handoff (channel
variables, the full context in Redis, media torn down by the session), reason
``supervisor_takeover``, writes an audit record (``governance.audit_log``) and publishes the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from redis.exceptions import RedisError

from ari_agent.call.forced_handoff import (
    engine_of,
    forced_context,
    forced_prompt,
    handoff_not_done,
    say_before_handoff,
)
from ari_agent.call.live_calls import LiveCall, LiveCallBoard, agent_name, follow_channel, live_card
from ari_agent.call.takeover import (
    BY_VARIABLE,
    INTERFACE_VARIABLE,
    RESULT_CHANNEL,
    TAKEOVER_CHANNEL,
    TAKEOVER_REASON,
    TakeoverError,
    TakeoverRequest,
    TakeoverResult,
)
from ari_agent.config import Config
from ari_agent.governance.audit import AuditLog
from ari_agent.governance.keys import GovernanceError, load_key
from ari_agent.telephony.ari import AriClient, AriError, AriUnreachable

log = logging.getLogger(__name__)

RESUBSCRIBE_S = 2.0


class SupervisedCall(LiveCall, Protocol):
    @property
    def caller_gone(self) -> asyncio.Event: ...

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None) -> bool: ...


class Supervision:
    def __init__(self, cfg: Config, ari: AriClient, calls: Callable[[], Mapping[str, SupervisedCall]]) -> None:
        self.cfg = cfg
        self.ari = ari
        self.calls = calls
        self.agent = agent_name()
        self.extra = tuple((p.label, p.pattern) for p in cfg.redaction.extra_patterns)
        ttl = max(10, int(cfg.supervision.refresh_s * 5))
        self.board = LiveCallBoard(cfg.redis.url, ttl_s=ttl)
        self.audit = open_audit(cfg)
        self.results: list[TakeoverResult] = []  # for tests
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._refresh_loop(), name="live-calls"),
                       loop.create_task(self._takeover_loop(), name="takeover-requests")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 3.0)
        for call_id in list(self.calls()):
            await self.board.remove(call_id)
        await self.board.close()
        if self.audit is not None:
            self.audit.close()

    # ------------------------------------------------------------------ live cards
    def call_started(self, call: SupervisedCall) -> None:
        self._later(self.publish(call), f"live-{call.call_id}")

    def call_ended(self, call_id: str) -> None:
        self._later(self.board.remove(call_id), f"live-end-{call_id}")

    async def publish(self, call: SupervisedCall) -> None:
        await self.board.put(live_card(call, extra_patterns=self.extra, agent=self.agent))

    async def _refresh_loop(self) -> None:
        """Republish every live card (its transcript grows; its expiry is renewed)."""
        while True:
            await asyncio.sleep(self.cfg.supervision.refresh_s)
            for call in list(self.calls().values()):
                if not call.caller_gone.is_set():
                    await self.publish(call)

    def _later(self, coro: Awaitable[object], name: str) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    # ------------------------------------------------------------------ takeover
    async def _takeover_loop(self) -> None:
        await follow_channel(self.cfg.redis.url, TAKEOVER_CHANNEL, self._on_request, what="takeover requests",
                             retry_s=RESUBSCRIBE_S)

    async def _on_request(self, raw: object) -> None:
        try:
            req = TakeoverRequest.from_json(raw if isinstance(raw, (str, bytes)) else b"")
        except TakeoverError as exc:
            log.warning("takeover request refused: %s", exc)
            return
        call = self.calls().get(req.call_id)
        if call is None:
            return  # served by another agent process (or already over: the screen-pop times out)
        result = await self.take_over(call, req)
        self.results.append(result)
        with contextlib.suppress(RedisError, OSError):
            await self.board.redis.publish(RESULT_CHANNEL, result.to_json())

    async def take_over(self, call: SupervisedCall, req: TakeoverRequest) -> TakeoverResult:
        """Send ``call`` where ``req`` says, as a handoff with the conversation's context; audited."""
        if call.caller_gone.is_set():
            result = TakeoverResult(req.request_id, req.call_id, False, "the caller has hung up")
        else:
            log.warning("call %s: taken over by supervisor %s to %s", req.call_id, req.by,
                        req.interface or req.queue)
            context = forced_context(engine_of(call.conversation), TAKEOVER_REASON,
                                     f"taken over by supervisor {req.by}")
            context["taken_over_by"] = req.by
            ok = False
            try:
                await self.ari.set_variable(call.caller.id, BY_VARIABLE, req.by)
                if req.interface:
                    await self.ari.set_variable(call.caller.id, INTERFACE_VARIABLE, req.interface)
                # a short line first (prompts.takeover); never holds the transfer up (forced_handoff.py)
                await say_before_handoff(call, forced_prompt(engine_of(call.conversation), "takeover"))
                ok = await call.handoff(req.target, TAKEOVER_REASON, context)
            except (AriError, AriUnreachable) as exc:
                log.error("call %s: takeover failed: %s", req.call_id, exc)
            if not ok:
                handoff_not_done(call)
            where = req.interface or req.queue
            result = TakeoverResult(req.request_id, req.call_id, ok,
                                    f"handed to {where}" if ok else f"could not hand the call to {where}")
        if self.audit is not None:
            self.audit.submit("takeover", {"call_id": req.call_id, "by": req.by, "queue": req.queue,
                                           "interface": req.interface, "request_id": req.request_id,
                                           "ok": result.ok, "detail": result.detail, "agent": self.agent})
        return result


def open_audit(cfg: Config) -> AuditLog | None:
    """The audit log of ``governance.audit_log`` (None when there is none or its key is unusable: logged)."""
    g = cfg.governance
    if g.audit_log is None:
        return None
    try:
        return AuditLog(g.audit_log, load_key(g.audit_key, g.audit_key_file, "audit"))
    except GovernanceError as exc:
        log.error("takeovers will not be audited: %s", exc)
        return None
