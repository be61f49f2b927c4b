"""Routes ARI events to per-call sessions: one task per call, nothing left behind when it ends."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable

from ari_agent.call.session import CallOutcome, CallSession, Conversation
from ari_agent.config import Config
from ari_agent.metrics import ARI_RECONNECTS
from ari_agent.telephony.ari import AriClient, AriError, AriNotFound, AriUnreachable
from ari_agent.telephony.event_stream import AriEventStream
from ari_agent.telephony.events import AriEvent, StasisStart, channel_of
from ari_agent.telephony.rtp_transport import PacingTicker

log = logging.getLogger(__name__)

MEDIA_SUFFIX = "-media"


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
        self.ended: list[CallSession] = []  # for benchmarks (cleared by their owner)
        self.keep_sessions = False
        self._routes: dict[str, CallSession] = {}
        self._expected: dict[str, asyncio.Future[StasisStart]] = {}
        self.stream: AriEventStream | None = None
        self.on_close: list[Callable[[], Awaitable[None]]] = []
        self.calls_started = 0
        self.events_seen = 0

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        """Consume ARI events until cancelled (reconnecting by itself)."""
        self.stream = AriEventStream(
            self.cfg.ari.url, self.cfg.ari.app, self.ari.auth_header,
            initial_backoff_s=self.cfg.ari.reconnect_initial_s, max_backoff_s=self.cfg.ari.reconnect_max_s,
            on_connect=self._on_connect,
        )
        try:
            async for event in self.stream.events():
                self.events_seen += 1
                log.debug("ARI event %s", event.raw)
                try:
                    self.dispatch(event)
                except Exception:  # one bad event must not stop the service
                    log.exception("error dispatching ARI event %s", event.type)
        finally:
            self.stream.close()

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
            self._start_call(event)
            return
        if event.type == "ApplicationReplaced":
            log.error("another client registered ARI app %r: this instance receives no new calls until it "
                      "reconnects (run one agent per app name)", self.cfg.ari.app)
            return
        if cid is not None:
            session = self._routes.get(cid)
            if session is not None:
                session.on_event(event)

    def _start_call(self, event: StasisStart) -> None:
        call_id = "call-" + uuid.uuid4().hex[:12]
        session = CallSession(
            call_id, event, self.ari, self.cfg, self.ticker, self.conversation_factory(),
            expect_channel=self._expect_channel, record_lateness=self.record_lateness,
        )
        self.sessions[call_id] = session
        self._routes[event.channel.id] = session
        self.calls_started += 1
        task = asyncio.get_running_loop().create_task(session.run(), name=f"session-{call_id}")
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._session_done, session))

    async def _expect_channel(self, channel_id: str, session: CallSession) -> StasisStart:
        fut: asyncio.Future[StasisStart] = asyncio.get_running_loop().create_future()
        self._expected[channel_id] = fut
        self._routes[channel_id] = session
        try:
            return await fut
        finally:
            self._expected.pop(channel_id, None)

    def _session_done(self, session: CallSession, task: asyncio.Task[CallOutcome]) -> None:
        self.tasks.discard(task)
        self.sessions.pop(session.call_id, None)
        for cid in [k for k, v in self._routes.items() if v is session]:
            del self._routes[cid]
        if not task.cancelled() and task.exception() is None:
            self.outcomes.append(task.result())
        if self.keep_sessions:
            self.ended.append(session)

    def _spawn_cleanup(self, channel_id: str) -> None:
        async def cleanup() -> None:
            await self.ari.quietly(self.ari.hangup(channel_id))

        asyncio.get_running_loop().create_task(cleanup(), name=f"cleanup-{channel_id}")

    def _on_connect(self) -> None:
        ARI_RECONNECTS.inc()
        if self.sessions:
            asyncio.get_running_loop().create_task(self._reconcile(), name="reconcile-after-reconnect")

    async def _reconcile(self) -> None:
        """After a reconnect, events may have been missed: end sessions whose caller is gone."""
        for session in list(self.sessions.values()):
            try:
                await self.ari.get_channel(session.caller.id)
            except AriNotFound:
                session.caller_gone.set()
            except (AriError, AriUnreachable) as exc:
                log.warning("reconcile: %s", exc)

    # ------------------------------------------------------------------ shutdown
    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout_s)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.ticker.close()
        for hook in self.on_close:
            with contextlib.suppress(Exception):
                await hook()
