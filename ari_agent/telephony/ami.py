"""Asterisk Manager Interface client on panoramisk: queue checks and queue events, reconnecting by itself.

panoramisk 1.4 works on Python 3.11 but has pitfalls this wrapper keeps away from its callers:

- its own reconnect (``connection_lost`` → ``call_later(connect)``) never stops, not even after
  ``close()``, and a non-``OSError`` failure while connecting ends it silently. Here one supervisor task
  owns the connection: connect, log in, watch, back off and reconnect; ``close()`` ends it for good.
- a refused login is not reported (``authenticated`` just stays False): it is checked here and
  reported once per failure streak (never with the secret).
- an action sent while disconnected is parked and replayed after the next login, its future pending
  until then; a lost reply never resolves at all. Every action here has a timeout and fails with
  :class:`AmiUnavailable` instead.
- its objects must be created inside the running loop, and ``loop=`` is not passed (3.10+): a fresh
  ``Manager`` is made per connection, in the loop, with its ``loop`` attribute set afterwards.
- its pinger writes to a closed transport after a disconnect; it is disabled and replaced by a
  ping with a timeout that also catches a half-open connection.

Event callbacks get parsed :class:`~ari_agent.telephony.ami_events.QueueEvent` records; a callback that
raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from ari_agent.config import AmiConfig
from ari_agent.telephony.ami_events import (
    QUEUE_EVENT_NAMES,
    QueueEvent,
    QueueSummary,
    parse_queue_event,
    parse_queue_summary,
)

log = logging.getLogger(__name__)

_NEVER = 10**9  # panoramisk's own pinger: effectively off


class AmiUnavailable(Exception):
    """AMI is not connected, refused us, or did not answer in time."""


class _Manager(Manager):  # type: ignore[misc]
    """panoramisk's Manager without its self-scheduled reconnect: the supervisor decides."""

    def __init__(self, on_lost: Callable[[], None], **config: Any) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        self.authenticated = False
        pinger: Any = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        self._on_lost()


EventListener = Callable[[QueueEvent], None]


class AmiClient:
    """One AMI login, kept up by :meth:`start`'s supervisor task until :meth:`close`."""

    def __init__(self, cfg: AmiConfig, *, events: bool = False,
                 event_names: Sequence[str] = QUEUE_EVENT_NAMES) -> None:
        self.cfg = cfg
        self.events = events
        self.event_names = tuple(event_names)
        self.listeners: list[EventListener] = []
        # Every subscribed event as panoramisk's header mapping (e.g. dialplan UserEvents).
        self.raw_listeners: list[Callable[[Mapping[str, object]], None]] = []
        self.logins = 0  # successful logins so far (a reconnect adds one)
        self.last_error = ""
        self._mgr: _Manager | None = None
        self._connected: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def connected(self) -> bool:
        return self._connected is not None and self._connected.is_set()

    def start(self) -> None:
        """Start the supervisor (idempotent; needs the running loop)."""
        if self._task is None or self._task.done():
            self._closing = False
            self._connected = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name="ami-supervisor")

    async def wait_connected(self, timeout_s: float) -> bool:
        self.start()
        assert self._connected is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        return self.connected

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop()

    async def __aenter__(self) -> AmiClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ actions
    async def action(self, action: Mapping[str, str]) -> Any:
        """Send one action; its reply (a message, or a list for event-list actions)."""
        mgr = self._mgr
        if mgr is None or not self.connected:
            raise AmiUnavailable("AMI is not connected" + (f" ({self.last_error})" if self.last_error else ""))
        fut = mgr.send_action(dict(action))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), self.cfg.action_timeout_s)
        except TimeoutError:
            raise AmiUnavailable(f"AMI did not answer {action.get('Action')} within "
                                 f"{self.cfg.action_timeout_s:g}s") from None

    async def queue_summary(self, queue: str) -> QueueSummary | None:
        """The queue's members and callers now; None when Asterisk has no such queue."""
        reply = await self.action({"Action": "QueueSummary", "Queue": queue})
        return parse_queue_summary(reply, queue)

    # ------------------------------------------------------------------ connection
    async def _supervise(self) -> None:
        delay = self.cfg.reconnect_initial_s
        failing = False
        while not self._closing:
            lost = asyncio.Event()
            try:
                await self._connect(lost)
                assert self._connected is not None
                self._connected.set()
                self.logins += 1
                self.last_error = ""
                log.info("AMI connected to %s:%d (login %d)", self.cfg.host, self.cfg.port, self.logins)
                failing = False
                delay = self.cfg.reconnect_initial_s
                await self._watch(lost)
                log.warning("AMI connection to %s:%d lost; reconnecting", self.cfg.host, self.cfg.port)
            except (OSError, TimeoutError, AmiUnavailable) as exc:
                self.last_error = str(exc) or type(exc).__name__
                if not failing:
                    log.warning("AMI %s:%d unavailable: %s (retrying)", self.cfg.host, self.cfg.port, self.last_error)
                failing = True
            finally:
                if self._connected is not None:
                    self._connected.clear()
                self._drop()
            if not self._closing:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)

    async def _connect(self, lost: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        mgr = _Manager(lost.set, host=self.cfg.host, port=self.cfg.port, username=self.cfg.username,
                       secret=self.cfg.secret.get_secret_value(), events="on" if self.events else "off",
                       ping_delay=_NEVER, ping_interval=_NEVER)
        mgr.loop = loop
        mgr.log = log
        # panoramisk replays parked actions on FullyBooted: never wanted here (each action has a timeout).
        mgr.callbacks.pop("FullyBooted", None)
        mgr.patterns = [p for p in mgr.patterns if p[0] != "FullyBooted"]
        if self.events:
            for name in self.event_names:
                mgr.register_event(name, self._dispatch)
        self._mgr = mgr
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(AMIProtocol, self.cfg.host, self.cfg.port), self.cfg.connect_timeout_s)
        except TimeoutError:
            raise AmiUnavailable(f"no connection within {self.cfg.connect_timeout_s:g}s") from None
        made: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        made.set_result((transport, protocol))
        mgr.connection_made(made)  # sends Login
        login = mgr.authenticated_future
        if login is None:
            raise AmiUnavailable("login was not sent")
        try:
            reply = await asyncio.wait_for(asyncio.shield(login), self.cfg.connect_timeout_s)
        except TimeoutError:
            raise AmiUnavailable("no answer to login") from None
        if not getattr(reply, "success", False):
            raise AmiUnavailable("login refused: check ami.username / ami.secret and manager.conf")

    async def _watch(self, lost: asyncio.Event) -> None:
        """Return when the connection is gone: closed by the PBX, or no answer to a ping."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.cfg.ping_interval_s)
            if lost.is_set():
                return
            try:
                await self.action({"Action": "Ping"})
            except AmiUnavailable as exc:
                log.warning("AMI ping failed: %s", exc)
                return

    def _drop(self) -> None:
        mgr, self._mgr = self._mgr, None
        if mgr is not None:
            with contextlib.suppress(Exception):
                mgr.awaiting_actions.clear()  # never replay a stale action on a later login
                mgr.close()

    def _dispatch(self, _mgr: object, message: Mapping[str, object]) -> None:
        for raw in list(self.raw_listeners):
            try:
                raw(message)
            except Exception:
                log.exception("AMI raw event listener failed")
        event = parse_queue_event(message)
        if event is None:
            return
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                log.exception("AMI event listener failed on %s", event.kind)
