"""Routes ARI events to per-call sessions: one task per call, nothing left behind when it ends.

It also keeps callers out of dead air when this process fails or stops (docs/runbook.md): on every
connect it cleans up what a dead predecessor left in Asterisk (call/sweep.py), it renews each served
channel's dialplan lease so Asterisk moves the caller to a queue if this process stops renewing it,
and on drain it sends new callers to the queue and hands off the calls still up at the deadline. A new
caller past ``agent.max_calls`` calls in progress is passed on the same way (reason ``capacity``,
call/capacity.py): to the next agent the dialplan lists, else the queue.

A call still with the agent at ``agent.max_call_s`` is handed to a person (reason ``max_duration``, the
intent's queue); the session's own hard stop comes ``agent.max_call_grace_s`` later. With
``supervision.enabled`` the live calls are published for supervisors, who can take one over
(``call/supervision.py``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import math
import uuid
from collections.abc import Awaitable, Callable

from ari_agent.call.capacity import CAPACITY_REASON, call_limit, usable_cores
from ari_agent.call.forced_handoff import (
    engine_of,
    forced_prompt,
    handoff_not_done,
    max_duration_handoff,
    say_before_handoff,
)
from ari_agent.call.memory import MemoryReleaser
from ari_agent.call.orphans import CleanupPlan, stasis_app_of
from ari_agent.call.session import CallOutcome, CallSession, Conversation
from ari_agent.call.supervision import Supervision
from ari_agent.call.sweep import CALL_ID_VARIABLE, LEASE_VARIABLE, pass_on, quietly, sweep_orphans
from ari_agent.call.tracing import call_tracer
from ari_agent.config import Config
from ari_agent.conversation.intent_map import DEMO_MAP_PATH
from ari_agent.metrics import ARI_RECONNECTS, CALLS_PASSED_ON, DRAINING
from ari_agent.records.writer import CallRecordWriter
from ari_agent.telephony.ari import AriClient, AriError, AriNotFound, AriUnreachable
from ari_agent.telephony.event_stream import AriEventStream
from ari_agent.telephony.events import AriEvent, StasisStart, channel_of
from ari_agent.telephony.rtp_transport import PacingTicker

log = logging.getLogger(__name__)

MEDIA_SUFFIX = "-media"
RECLAIMED_MEMORY_S = 120.0


class CallManager:
    def __init__(
        self,
        cfg: Config,
        ari: AriClient,
        conversation_factory: Callable[[], Conversation],
        *,
        record_lateness: bool = False,
        keep_outcomes: int = 1000,
    ) -> None:
        self.cfg = cfg
        self.ari = ari
        self.conversation_factory = conversation_factory
        self.record_lateness = record_lateness
        self.ticker = PacingTicker()
        self.sessions: dict[str, CallSession] = {}
        self.tasks: set[asyncio.Task[CallOutcome]] = set()
        self.outcomes: collections.deque[CallOutcome] = collections.deque(maxlen=keep_outcomes)
        self.memory = MemoryReleaser()  # ended calls' freed memory back to the system (RSS does not drift)
        self.ended: list[CallSession] = []  # for benchmarks (cleared by their owner)
        self.keep_sessions = False
        self._routes: dict[str, CallSession] = {}
        self._expected: dict[str, asyncio.Future[StasisStart]] = {}
        self.stream: AriEventStream | None = None
        self.on_close: list[Callable[[], Awaitable[None]]] = []
        # Start-up work that goes on after the manager is built (the map's lines rendered ahead): benches
        # wait for it (``settled``) so its CPU is not counted as a call's.
        self.on_settle: list[Callable[[], Awaitable[None]]] = []
        self.calls_started = 0
        self.events_seen = 0
        # Lifecycle (docs/runbook.md): draining = no new calls; reclaimed = callers this process sent to
        # the queue without serving them (a late StasisStart for one of them must not start a session).
        self.draining = False
        # New callers past this many calls in progress are passed on (agent.max_calls; call/capacity.py).
        self.max_calls = call_limit(cfg.agent.max_calls, cfg.stt.engine, usable_cores(),
                                    voice=cfg.conversation.mode == "voice")  # 0: no limit
        self.last_cleanup: CleanupPlan | None = None
        self.cleanups: list[CleanupPlan] = []  # every non-empty cleanup, for tests and benches
        self.reconciled = asyncio.Event()  # set after each connect's cleanup has run
        self._reclaimed: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._hurry = asyncio.Event()
        # Sessions stop hard after max_call_s + grace; at max_call_s the manager hands the caller off.
        agent = cfg.agent.model_copy(update={"max_call_s": cfg.agent.max_call_s + cfg.agent.max_call_grace_s})
        self.session_cfg = cfg.model_copy(update={"agent": agent})
        self.supervision: Supervision | None = Supervision(cfg, ari, lambda: self.sessions) \
            if cfg.supervision.enabled else None
        # One call record per call (records.enabled); the writer logs its failures, never raises.
        self.records = CallRecordWriter.from_config(cfg, cfg.conversation.intent_map or DEMO_MAP_PATH) \
            if cfg.records.enabled else None
        call_tracer(cfg)  # made now (tracing.otlp_endpoint): a missing SDK is reported at start, not at a call's end

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        """Consume ARI events until cancelled (reconnecting by itself)."""
        self.stream = AriEventStream(
            self.cfg.ari.url, self.cfg.ari.app, self.ari.auth_header,
            initial_backoff_s=self.cfg.ari.reconnect_initial_s, max_backoff_s=self.cfg.ari.reconnect_max_s,
            on_connect=self._on_connect, tls=self.ari.tls,
        )
        lease = self._spawn(self._lease_loop(), "channel-lease")
        if self.supervision is not None:
            self.supervision.start()
        try:
            async for event in self.stream.events():
                self.events_seen += 1
                log.debug("ARI event %s", event.raw)
                try:
                    self.dispatch(event)
                except Exception:  # one bad event must not stop the service
                    log.exception("error dispatching ARI event %s", event.type)
        finally:
            lease.cancel()
            self.stream.close()

    def readiness(self) -> tuple[bool, str]:
        """Whether this agent should be sent calls now, and why not (``/readyz``)."""
        if self.draining:
            return False, "draining"
        if self.stream is None or not self.stream.connected.is_set():
            return False, "ari_disconnected"
        return True, "ready"

    def dispatch(self, event: AriEvent) -> None:
        cid = channel_of(event)
        if isinstance(event, StasisStart):
            fut = self._expected.pop(event.channel.id, None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(event)
                return
            if event.channel.id.endswith(MEDIA_SUFFIX):
                # A media channel nobody waits for (e.g. left over from before a restart): release it.
                self._spawn_cleanup(event.channel.id)
                return
            if event.channel.id in self._reclaimed:
                return  # already sent to the queue by the connect cleanup; it is leaving Stasis
            if self.draining:
                # Stopping: new callers go to the next agent the dialplan lists, else straight to a human
                # (the caller never hears a dead agent).
                self._pass_on(event, "draining")
                return
            if self.max_calls and len(self.sessions) >= self.max_calls:
                # Full: the caller is not served worse than the others, it goes where a draining agent's would.
                log.warning("%d calls in progress (agent.max_calls %d): new caller %s passed on", len(self.sessions),
                            self.max_calls, event.channel.id)
                self._pass_on(event, CAPACITY_REASON)
                return
            self._start_call(event)
            return
        if event.type == "ApplicationReplaced":
            log.error("another client registered ARI app %r: this instance receives no new calls until it "
                      "reconnects (run one agent per app name; several agents: docs/deploy.md)", self.cfg.ari.app)
            return
        if cid is not None:
            session = self._routes.get(cid)
            if session is not None:
                session.on_event(event)

    def _pass_on(self, event: StasisStart, reason: str) -> None:
        self._remember_reclaimed(event.channel.id)
        CALLS_PASSED_ON.labels(reason=reason).inc()
        self._spawn(pass_on(self.ari, self.cfg, event.channel, reason), f"pass-on-{event.channel.id}")

    def _start_call(self, event: StasisStart) -> None:
        call_id = "call-" + uuid.uuid4().hex[:12]
        session = CallSession(
            call_id, event, self.ari, self.session_cfg, self.ticker, self.conversation_factory(),
            expect_channel=self._expect_channel, record_lateness=self.record_lateness, records=self.records,
        )
        self.sessions[call_id] = session
        self._routes[event.channel.id] = session
        self.calls_started += 1
        task = asyncio.get_running_loop().create_task(session.run(), name=f"session-{call_id}")
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._session_done, session))
        self._spawn(self._claim(event.channel.id, call_id), f"lease-{call_id}")
        self._spawn(self._max_duration(session), f"max-duration-{call_id}")
        if self.supervision is not None:
            self.supervision.call_started(session)

    async def _expect_channel(self, channel_id: str, session: CallSession) -> StasisStart:
        fut: asyncio.Future[StasisStart] = asyncio.get_running_loop().create_future()
        self._expected[channel_id] = fut
        self._routes[channel_id] = session
        try:
            started = await fut
        finally:
            self._expected.pop(channel_id, None)
        # Our own media channel gets the lease too: with this process gone, it hangs itself up.
        self._spawn(self._renew([channel_id]), f"lease-{channel_id}")
        return started

    def _session_done(self, session: CallSession, task: asyncio.Task[CallOutcome]) -> None:
        self.tasks.discard(task)
        self.sessions.pop(session.call_id, None)
        for cid in [k for k, v in self._routes.items() if v is session]:
            del self._routes[cid]
        if self.supervision is not None:
            self.supervision.call_ended(session.call_id)
        if not task.cancelled() and task.exception() is None:
            self.outcomes.append(task.result())
        if self.keep_sessions:
            self.ended.append(session)
        if self.memory.try_start():
            self._spawn(asyncio.to_thread(self.memory.release), "release-memory")

    def _spawn_cleanup(self, channel_id: str) -> None:
        async def cleanup() -> None:
            await self.ari.quietly(self.ari.hangup(channel_id))

        asyncio.get_running_loop().create_task(cleanup(), name=f"cleanup-{channel_id}")

    def _spawn(self, coro: Awaitable[object], name: str) -> asyncio.Task[None]:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _remember_reclaimed(self, channel_id: str) -> None:
        now = asyncio.get_running_loop().time()
        for cid in [c for c, t in self._reclaimed.items() if now - t > RECLAIMED_MEMORY_S]:
            del self._reclaimed[cid]
        self._reclaimed[channel_id] = now

    async def _max_duration(self, session: CallSession) -> None:
        """At ``agent.max_call_s`` a caller still with the agent goes to a person (reason max_duration)."""
        done = asyncio.ensure_future(session.caller_gone.wait())
        try:
            await asyncio.wait({done}, timeout=self.cfg.agent.max_call_s)
        finally:
            done.cancel()
        if session.caller_gone.is_set() or session.outcome.ended_by != "unknown" or \
                session.call_id not in self.sessions:
            return
        engine = engine_of(session.conversation)
        queue, context = max_duration_handoff(engine, self.cfg.agent.handoff_extension)
        log.warning("call %s: maximum duration (%.0fs) reached: handing off to %s", session.call_id,
                    self.cfg.agent.max_call_s, queue)
        told = await say_before_handoff(session, forced_prompt(engine, "max_duration"))  # never holds it up
        if not await session.handoff(queue, "max_duration", context, told=told,
                                     announce=lambda said: say_before_handoff(session, said)):
            handoff_not_done(session)

    # ------------------------------------------------------------------ dead man's switch
    async def _claim(self, channel_id: str, call_id: str) -> None:
        """A new caller: mark it with the call id (its context after a restart) and renew its lease."""
        await quietly(self.ari.set_variable(channel_id, CALL_ID_VARIABLE, call_id))
        await self._renew([channel_id])

    async def _renew(self, channel_ids: list[str]) -> None:
        value = str(math.ceil(self.cfg.lifecycle.channel_lease_s))
        await asyncio.gather(*(quietly(self.ari.set_variable(cid, LEASE_VARIABLE, value))
                               for cid in channel_ids))

    async def _lease_loop(self) -> None:
        """Renew every served channel's lease at a third of its length: while this process lives and its
        loop turns, no lease comes within two thirds of running out."""
        period = self.cfg.lifecycle.channel_lease_s / 3
        while True:
            await asyncio.sleep(period)
            # While the events socket is down (Asterisk restarting) there is nothing to renew: the
            # reconnect's reconcile ends the calls whose channels are gone.
            if self._routes and self.stream is not None and self.stream.connected.is_set():
                await self._renew(list(self._routes))

    # ------------------------------------------------------------------ (re)connect
    def _on_connect(self) -> None:
        ARI_RECONNECTS.inc()
        self.reconciled.clear()
        self._spawn(self._reconcile(), "reconcile-after-connect")

    async def _reconcile(self) -> None:
        """After every connect: end sessions whose caller went while we were away (events were missed),
        then clean up what a previous process of this app left in Asterisk (docs/runbook.md)."""
        try:
            await asyncio.gather(*(self._still_there(s) for s in list(self.sessions.values())))
            try:
                await self.clean_up_orphans()
            except (AriError, AriUnreachable) as exc:
                log.error("reconcile: cannot list channels/bridges (%s); the dialplan lease still moves "
                          "unserved callers to the queue", exc)
        finally:
            self.reconciled.set()

    async def _still_there(self, session: CallSession) -> None:
        """A session whose caller's channel vanished while the events socket was down (Asterisk restarted
        or crashed: no StasisEnd ever comes) ends now, like a hang-up: its teardown releases what is
        left (all "already gone" to ARI) and the session's state here."""
        try:
            channel = await self.ari.get_channel(session.caller.id)
        except AriNotFound:
            channel = None
        except (AriError, AriUnreachable) as exc:
            log.warning("reconcile: %s", exc)
            return
        if session.caller_gone.is_set() or session.call_id not in self.sessions:
            return
        if channel is None:
            why = "vanished (Asterisk restarted?)"
        elif stasis_app_of(channel) != self.cfg.ari.app:
            why = "left our Stasis application (its lease moved it on?)"
        else:
            return
        log.warning("call %s: caller channel %s %s while ARI events were down: ending the call",
                    session.call_id, session.caller.id, why)
        if session.outcome.ended_by == "unknown":
            session.outcome.ended_by = "error"
        session.caller_gone.set()

    async def clean_up_orphans(self) -> CleanupPlan:
        """Hand unserved callers of our app to the queue (reason ``agent_restart``), hang up our leftover
        media channels, destroy our bridges that no session owns (call/sweep.py)."""
        plan = await sweep_orphans(
            self.ari, self.cfg,
            served=lambda: (list(self._routes), [s.media.bridge_id for s in self.sessions.values()]),
            on_reclaim=self._remember_reclaimed)
        self.last_cleanup = plan
        if not plan.is_empty():
            self.cleanups.append(plan)
        return plan

    # ------------------------------------------------------------------ drain
    def start_drain(self) -> None:
        """Take no new calls (they go to the queue, reason ``draining``); ``/readyz`` turns false."""
        if not self.draining:
            self.draining = True
            DRAINING.set(1)
            log.warning("draining: new calls go to %s; %d call(s) in progress may finish",
                        self.cfg.agent.handoff_extension, len(self.sessions))

    def hurry(self) -> None:
        """End the drain's wait now (a second SIGTERM/SIGINT): calls still up are handed off."""
        self._hurry.set()

    async def drain(self, deadline_s: float) -> int:
        """Drain: calls in progress may finish within ``deadline_s``; those still up then are handed to
        the queue (reason ``drain_deadline``). Returns how many were handed off at the deadline."""
        self.start_drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while self.tasks and not hurry.done() and (left := deadline - loop.time()) > 0:
                await asyncio.wait({*self.tasks, hurry}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        remaining = [s for s in self.sessions.values() if not s.caller_gone.is_set()]
        if remaining:
            log.warning("drain deadline: handing %d call(s) in progress to %s", len(remaining),
                        self.cfg.agent.handoff_extension)
            await asyncio.gather(*(s.handoff(self.cfg.agent.handoff_extension, "drain_deadline")
                                   for s in remaining))
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=5.0)
        return len(remaining)

    async def settled(self) -> None:
        """Wait for the background start-up work (``on_settle``); calls are served before it is done."""
        for hook in self.on_settle:
            await hook()

    # ------------------------------------------------------------------ shutdown
    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout_s)

    async def close(self) -> None:
        if self.supervision is not None:
            await self.supervision.close()
        for bg in list(self._background):
            bg.cancel()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.ticker.close()
        if self.records is not None:
            with contextlib.suppress(Exception):
                await self.records.aclose()
        for hook in self.on_close:
            with contextlib.suppress(Exception):
                await hook()
