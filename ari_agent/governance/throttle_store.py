"""The throttles' counters in Redis, shared by every agent process; and the policy event of a trip.

``RedisThrottleStore`` implements ``conversation.throttle.ThrottleStore``: a counter is one Lua call
(INCR, and EXPIRE when the key has no time to live yet: atomic, so two agents counting the same
caller at once both count and the window starts once); a lock is ``SET key 1 EX ttl``.

**Fails closed.** When Redis is unreachable the throttles keep counting, in this process's memory
(``fallback``: ``conversation.throttle.MemoryStore``, passed in by the call layer, which wires both; this
layer sits below the conversation and does not import it): a brute force against one agent process is
still stopped, only not across processes. Every count is also kept locally while Redis is up, and
reads take the larger of the two, so a lock-out reached during an outage holds after it. The first
failure of an outage is logged once (a warning), and Redis is not tried again for ``retry_s``, so a
dead Redis costs each turn no connect timeout. The engine runs off the event loop
(``asyncio.to_thread``), so these short blocking calls never stall the audio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from ari_agent.metrics import POLICY_EVENTS

log = logging.getLogger("ari_agent.policy")

_INCR = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class LocalStore(Protocol):
    """The in-process counters kept alongside Redis (``conversation.throttle.MemoryStore``)."""

    def incr(self, key: str, window_s: int) -> int: ...
    def count(self, key: str) -> int: ...
    def lock(self, key: str, ttl_s: int) -> None: ...
    def locked(self, key: str) -> bool: ...


class PolicyTrip(Protocol):
    """What a policy event reports of a throttle trip (``conversation.throttle.Trip``)."""

    @property
    def rule(self) -> str: ...
    @property
    def condition(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def call_id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def limit(self) -> int: ...


class RedisThrottleStore:
    def __init__(self, url: str, fallback: LocalStore, *, timeout_s: float = 0.25, retry_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.conn = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._incr = self.conn.register_script(_INCR)
        self.local = fallback
        self.clock = clock
        self.retry_s = retry_s
        self._down_until = 0.0
        self.outages = 0

    @property
    def degraded(self) -> bool:
        """True while Redis is treated as unreachable (counting locally)."""
        return self._down_until > self.clock()

    def incr(self, key: str, window_s: int) -> int:
        local = self.local.incr(key, window_s)
        shared = self._call(lambda: int(self._incr(keys=[key], args=[window_s])))
        return max(local, shared or 0)

    def count(self, key: str) -> int:
        shared = self._call(lambda: int(self.conn.get(key) or 0))
        return max(self.local.count(key), shared or 0)

    def lock(self, key: str, ttl_s: int) -> None:
        self.local.lock(key, ttl_s)
        self._call(lambda: self.conn.set(key, b"1", ex=ttl_s))

    def locked(self, key: str) -> bool:
        return self.local.locked(key) or bool(self._call(lambda: self.conn.exists(key)))

    def close(self) -> None:
        self.conn.close()

    def _call(self, op: Callable[[], Any]) -> Any:
        """Run ``op`` against Redis; None (and local counting) while Redis is unreachable."""
        if self.degraded:
            return None
        try:
            return op()
        except redis.RedisError as exc:
            self._down_until = self.clock() + self.retry_s
            self.outages += 1
            log.warning("throttle store: Redis unreachable (%s); counting in this process only, "
                        "failing closed, retry in %.0f s", type(exc).__name__, self.retry_s)
            return None


def record_policy_event(trip: PolicyTrip) -> None:
    """A throttle trip as a policy event: one warning line (no caller number: a hashed subject) and
    the ``ari_agent_policy_events`` counter."""
    POLICY_EVENTS.labels(kind="throttle", rule=trip.rule).inc()
    log.warning("policy event: throttle %s tripped call=%s subject=%s count=%d limit=%d -> handoff (%s): %s",
                trip.rule, trip.call_id, trip.subject, trip.count, trip.limit, trip.condition, trip.detail)

