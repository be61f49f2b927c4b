"""The Redis throttle store when Redis is unreachable (a real refused connection, no server): it fails
closed, counting in the process; and the policy event a trip becomes (log line + counter)."""

from __future__ import annotations

import logging

import pytest

from ari_agent.conversation.throttle import MemoryStore, Throttle, ThrottleRules, Trip
from ari_agent.devtools.backend_process import free_port
from ari_agent.governance.throttle_store import RedisThrottleStore, record_policy_event
from ari_agent.metrics import REGISTRY


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_unreachable_redis_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    store = RedisThrottleStore(f"redis://127.0.0.1:{free_port()}/0", MemoryStore(clock), timeout_s=0.2, retry_s=5,
                               clock=clock)
    caplog.set_level(logging.WARNING, logger="ari_agent.policy")
    throttle = Throttle(store, ThrottleRules(verify_failures_per_caller=2))
    guard = throttle.guard("call-1")
    assert guard.before_verification("+15550001111", {"customer_id": "C-1"}) is None
    assert guard.verification_failed("+15550001111") is None
    trip = guard.verification_failed("+15550001111")
    assert trip is not None and trip.rule == "verification_caller"
    # a new call (same process) is still locked out, Redis or not
    assert throttle.guard("call-2").before_verification("+15550001111", {"customer_id": "C-9"}) is not None
    assert store.degraded and store.outages == 1
    warnings = [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1 and "failing closed" in warnings[0]
    clock.t += 6  # after retry_s, Redis is tried again (and found down again: one more warning)
    assert store.count(throttle.key("verify-fail", "nobody")) == 0
    assert store.outages == 2
    store.close()


def test_policy_event_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("ari_agent_policy_events_total",
                                         {"kind": "throttle", "rule": "unknown_lookups"}) or 0.0

    before = count()
    caplog.set_level(logging.WARNING, logger="ari_agent.policy")
    record_policy_event(Trip("unknown_lookups", "policy", "throttle unknown_lookups: 3 lookups", "call-7",
                             "caller:0123abcd", 3, 3))
    assert count() == before + 1
    line = caplog.records[-1].getMessage()
    assert "policy event: throttle unknown_lookups tripped call=call-7 subject=caller:0123abcd" in line
