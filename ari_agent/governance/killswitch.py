"""The kill switch: one command puts every running agent into transfer-only mode.

The state lives in Redis under one key (JSON: on, reason, by, at) and every change is published on
a channel of the same name. Each agent runs a :class:`KillSwitchWatch`: subscribed to the channel
(a change arrives in milliseconds) and reading the key every ``poll_s`` as a backstop (a message
lost while reconnecting). What it flips are the conversation engines of live calls (anything with a
``kill_switch`` attribute, held weakly), so calls in progress end their next turn in a transfer and
new calls start in transfer-only mode.

It holds when Redis does not answer:

- the last state seen is kept (in memory, and in a small state file, so an agent restarted while
  Redis is down starts in the state it last saw);
- a missing key in a Redis that answers (restarted without persistence) also keeps the last state:
  only an explicit ``off`` turns it off;
- a local override file (``governance.killswitch_override_file``) forces it on without Redis, for
  this host; ``ari-agent killswitch on`` writes it when Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from ari_agent.governance.keys import GovernanceError
from ari_agent.governance.redis_follow import follow

log = logging.getLogger(__name__)

DEFAULT_KEY = "ari-agent:killswitch"
MAX_TEXT = 300


class Switchable(Protocol):
    """What the watch flips: a conversation engine (``engine.kill_switch``)."""

    kill_switch: bool


@dataclass(frozen=True)
class KillSwitchState:
    on: bool
    reason: str = ""
    by: str = ""
    at: str = ""  # ISO time of the change (UTC)
    changed_ns: int = 0  # time.time_ns() of the change: orders changes, measures propagation

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: bytes | str) -> KillSwitchState:
        """Parse a stored or published state; ValueError when it is not one."""
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("on"), bool):
            raise ValueError("not a kill-switch state")
        return cls(on=data["on"], reason=str(data.get("reason", ""))[:MAX_TEXT], by=str(data.get("by", ""))[:MAX_TEXT],
                   at=str(data.get("at", "")), changed_ns=int(data.get("changed_ns", 0)))


def check_text(what: str, text: str, *, required: bool) -> str:
    """A reason or a name as given on the command line: one printable line, not too long."""
    text = text.strip()
    if required and not text:
        raise GovernanceError(f"{what} must not be empty")
    if len(text) > MAX_TEXT:
        raise GovernanceError(f"{what} is {len(text)} characters long; at most {MAX_TEXT}")
    if any(not ch.isprintable() for ch in text):
        raise GovernanceError(f"{what} must be one line of printable text")
    return text


# ---------------------------------------------------------------------- the override file
def override_on(path: Path | None) -> bool:
    return path is not None and os.path.exists(path)


def write_override(path: Path, state: KillSwitchState) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(state.to_json() + "\n", encoding="utf-8")
    except OSError as exc:
        raise GovernanceError(f"kill-switch override file {path}: cannot write it ({exc.strerror or exc})") from None


def remove_override(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise GovernanceError(f"kill-switch override file {path}: cannot remove it ({exc.strerror or exc})") from None
    return True


def _read_state_file(path: Path | None) -> KillSwitchState | None:
    if path is None:
        return None
    try:
        return KillSwitchState.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None


def _write_state_file(path: Path | None, state: KillSwitchState) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(state.to_json() + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("kill switch: cannot keep the last state in %s: %s", path, exc.strerror or exc)


# ---------------------------------------------------------------------- Redis, for the CLI
class KillSwitchStore:
    """Reads and changes the state in Redis (blocking: for the command line)."""

    def __init__(self, url: str, key: str = DEFAULT_KEY, *, timeout_s: float = 2.0) -> None:
        try:
            self.client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        except ValueError as exc:
            raise GovernanceError(f"redis url: {exc}") from None
        self.key = key

    def get(self) -> KillSwitchState | None:
        raw = self._do(lambda: self.client.get(self.key))
        if raw is None:
            return None
        try:
            return KillSwitchState.from_json(raw)
        except (ValueError, TypeError):
            raise GovernanceError(f"redis key {self.key} does not hold a kill-switch state") from None

    def set(self, state: KillSwitchState) -> int:
        """Store and publish ``state``; returns how many agents were subscribed."""
        def _set() -> Any:
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.key, state.to_json())
            pipe.publish(self.key, state.to_json())
            return pipe.execute()

        result = self._do(_set)
        return int(result[1])

    def _do(self, op: Callable[[], Any]) -> Any:
        try:
            return op()
        except redis.RedisError as exc:
            raise RedisUnreachable(f"redis unreachable ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        self.client.close()


class RedisUnreachable(GovernanceError):
    """Redis did not answer."""


# ---------------------------------------------------------------------- the agent's side
class KillSwitchWatch:
    """The kill switch as one running agent sees it; flips attached engines when it changes."""

    def __init__(self, url: str, *, key: str = DEFAULT_KEY, override_file: Path | None = None,
                 state_file: Path | None = None, poll_s: float = 0.5) -> None:
        self.url = url
        self.key = key
        self.override_file = override_file
        self.state_file = state_file
        self.poll_s = poll_s
        self.state = _read_state_file(state_file) or KillSwitchState(on=False)
        self.source = "state file" if state_file is not None and state_file.exists() else "default"
        self.redis_ok = False
        self.listeners: list[Callable[[bool, KillSwitchState], None]] = []
        self._targets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._effective = self.on
        self._task: asyncio.Task[None] | None = None
        self._announced = False  # "watching redis key" logged once; an outage and its end by the follow loop
        self._told_missing = False
        self.connected = asyncio.Event()

    @property
    def on(self) -> bool:
        """Transfer-only now? (the override file is looked at on every read: new calls see it at once)"""
        return override_on(self.override_file) or self.state.on

    def attach(self, target: Switchable) -> None:
        """Keep ``target.kill_switch`` equal to :attr:`on` for as long as ``target`` lives."""
        target.kill_switch = self.on
        self._targets.add(target)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="killswitch-watch")

    async def aclose(self) -> None:
        """Stop watching. Bounded: redis-py's pub/sub read can swallow a cancellation (redis-py #2551), so
        the watcher is cancelled again if it has not stopped, and left behind (logged) after 3 s rather
        than holding up the agent's shutdown."""
        task, self._task = self._task, None
        if task is None:
            return
        for _ in range(3):
            task.cancel()
            done, _pending = await asyncio.wait({task}, timeout=1.0)
            if done:
                break
        else:
            log.warning("kill switch: the redis watcher did not stop within 3 s; leaving it behind")
            return
        if not task.cancelled() and task.exception() is not None:
            log.warning("kill switch: the redis watcher ended with %r", task.exception())

    # ------------------------------------------------------------------ internals
    def _apply(self, state: KillSwitchState | None, source: str) -> None:
        # Redis is the truth: the key is read only after the message was handled, never before.
        if state is not None and state != self.state:
            self.state, self.source = state, source
            _write_state_file(self.state_file, state)
        elif state is None and source == "redis" and not self._told_missing:
            self._told_missing = True
            log.info("kill switch: key %s not set in redis; keeping the last state (%s)", self.key,
                     "on" if self.state.on else "off")
        self._check()

    def _check(self) -> None:
        effective = self.on
        if effective == self._effective:
            return
        self._effective = effective
        for target in list(self._targets):
            target.kill_switch = effective
        why = "override file" if override_on(self.override_file) else f"{self.state.by}: {self.state.reason}"
        log.warning("kill switch %s (%s; %d live call(s) flipped)", "ON: transfer-only" if effective else "off",
                    why, len(self._targets))
        for listener in list(self.listeners):
            try:
                listener(effective, self.state)
            except Exception:
                log.exception("kill-switch listener failed")

    async def _run(self) -> None:
        # The shared follow loop: subscribed to the channel, the key read every poll_s as a backstop; one
        # warning per outage, during which the override file is still looked at every poll_s.
        await follow(self.url, self.key, self._on_message, what="kill switch", on_subscribed=self._subscribed,
                     on_lost=self._lost, poll=self._poll, poll_s=self.poll_s, while_down=self._check,
                     retry_s=0.2, retry_max_s=5.0, connect_timeout_s=1.0, socket_timeout_s=3.0,
                     detail=lambda: f"holding the last state ({'on' if self.on else 'off'})", logger=log)

    async def _on_message(self, raw: bytes | str) -> None:
        try:
            self._apply(KillSwitchState.from_json(raw), "pubsub")
        except (ValueError, TypeError):
            log.warning("kill switch: ignored a malformed message on %s", self.key)

    async def _subscribed(self) -> None:
        if not self._announced:
            self._announced = True
            log.info("kill switch: watching redis key %s (state %s)", self.key, "on" if self.on else "off")
        self.redis_ok = True
        self.connected.set()

    def _lost(self) -> None:
        self.redis_ok = False
        self.connected.clear()

    async def _poll(self, client: aioredis.Redis) -> None:
        raw = await client.get(self.key)
        state = None
        if raw is not None:
            try:
                state = KillSwitchState.from_json(raw)
            except (ValueError, TypeError):
                log.warning("kill switch: redis key %s is malformed; keeping the last state", self.key)
        self._apply(state, "redis")
