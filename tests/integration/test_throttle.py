"""Throttles across calls on a real redis-server, with the real demo back office (``ari-agent backend``)
and the real tool runner: the attacks of issue 11 replayed as separate calls, each with its own store
connection (as separate agent processes would be), before and after the throttle.

- brute force: 7 wrong postcodes over 4 calls, then the right one;
- enumeration: order numbers guessed across calls, a found order between the misses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap, load_intent_map
from ari_agent.conversation.nlu import IntentClassifier, build_classifier
from ari_agent.conversation.throttle import MemoryStore, Throttle, ThrottleRules, Trip
from ari_agent.governance.throttle_store import RedisThrottleStore, record_policy_event
from ari_agent.integrations.runner import ToolRunner
from ari_agent.metrics import REGISTRY
from ari_agent.seam import Action, CallStarted, CallTool, Event, Hangup, Say, Transfer, Utterance

from .conftest_redis import RedisServer, demo_backend, redis_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration
ATTACKER = "+447700900123"


@pytest.fixture(scope="module")
def demo() -> tuple[IntentMap, IntentClassifier]:
    m = load_intent_map()
    return m, build_classifier(m.nlu_intents(), embeddings=False)


class Call:
    """One phone call: the caller's lines in, tools run against the demo backend."""

    def __init__(self, engine: ConversationEngine, runner: ToolRunner) -> None:
        self.engine, self.runner = engine, runner
        self.tools: list[CallTool] = []
        self.said: list[str] = []
        self.end: Action | None = None

    async def feed(self, event: Event) -> None:
        pending: list[Event] = [event]
        while pending:
            for action in self.engine.handle(pending.pop()):
                if isinstance(action, CallTool):
                    self.tools.append(action)
                    pending.append(await self.runner.run(action))
                elif isinstance(action, (Transfer, Hangup)):
                    self.end = action
                elif isinstance(action, Say):
                    self.said.append(action.text)

    async def run(self, caller_id: str, *lines: str) -> Call:
        await self.feed(CallStarted(caller_id=caller_id))
        for line in lines:
            if self.engine.ended:
                break
            await self.feed(Utterance(line))
        return self

    @property
    def reason(self) -> str:
        return self.end.context["reason"] if isinstance(self.end, Transfer) else ""




def _policy_events(rule: str) -> float:
    return REGISTRY.get_sample_value("ari_agent_policy_events_total", {"kind": "throttle", "rule": rule}) or 0.0


async def _brute_force(demo: tuple[IntentMap, IntentClassifier], backend: str, redis_url: str | None,
                       trips: list[Trip]) -> list[Call]:
    m, classifier = demo
    calls = []
    async with ToolRunner(m.tools_config, base_url=backend) as runner:
        for n in range(4):
            throttle = None
            if redis_url is not None:
                def on_trip(t: Trip) -> None:
                    trips.append(t)
                    record_policy_event(t)

                throttle = Throttle(RedisThrottleStore(redis_url, MemoryStore()), ThrottleRules(), on_trip=on_trip)
            engine = ConversationEngine(m, classifier, call_id=f"brute-{n}", throttle=throttle)
            last = ("1001", "SW1A 1AA") if n == 3 else ("1001", "M1 1AE")
            calls.append(await Call(engine, runner).run(ATTACKER, "I want to confirm my appointment", "1001",
                                                        "EH1 1YZ", *last))
    return calls


async def test_brute_force_across_calls_before_and_after(
        demo: tuple[IntentMap, IntentClassifier], demo_backend: str, redis_server: str,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    before = await _brute_force(demo, demo_backend, None, [])
    assert before[3].engine.verified == "basic"  # the reported attack: the 8th guess gets in
    assert sum(t.name == "verify_identity" for c in before for t in c.tools) == 8

    caplog.set_level(logging.WARNING, logger="ari_agent.policy")
    counted = _policy_events("verification_caller")
    trips: list[Trip] = []
    after = await _brute_force(demo, demo_backend, redis_server, trips)
    assert [c.engine.verified for c in after] == ["none"] * 4
    assert [sum(t.name == "verify_identity" for t in c.tools) for c in after] == [2, 1, 0, 0]
    for call in after[1:]:
        assert isinstance(call.end, Transfer) and call.end.reason == "verification_failed"
        assert "throttle verification_caller" in call.reason
    assert [t.rule for t in trips] == ["verification_caller"] * 3
    assert _policy_events("verification_caller") == counted + 3
    events = [r.getMessage() for r in caplog.records if r.getMessage().startswith("policy event: throttle")]
    assert len(events) == 3 and all(ATTACKER not in e for e in events)
    # the counters live in Redis, under hashed subjects only
    conn = redis.Redis.from_url(redis_server)
    keys = [k.decode() for k in conn.keys("ari-agent:throttle:*")]
    assert any(k.startswith("ari-agent:throttle:lock-verify:caller:") for k in keys)
    assert any(k.startswith("ari-agent:throttle:lock-verify:account:") for k in keys)
    assert not any("7700900123" in k or "1001" in k for k in keys)
    assert all(conn.ttl(k) > 0 for k in keys)
    conn.close()


async def test_enumeration_across_calls_before_and_after(
        demo: tuple[IntentMap, IntentClassifier], demo_backend: str, redis_server: str) -> None:  # noqa: F811
    m, classifier = demo
    guesses = [["1111", "4567"], ["1112", "7890"], ["1113", "1234"], ["1114", "2468"], ["4567"]]

    async def attack(throttled: bool) -> tuple[list[Call], list[Trip]]:
        trips: list[Trip] = []
        calls = []
        async with ToolRunner(m.tools_config, base_url=demo_backend) as runner:
            for n, g in enumerate(guesses):
                store = RedisThrottleStore(redis_server, MemoryStore())
                throttle = Throttle(store, on_trip=trips.append) if throttled else None
                engine = ConversationEngine(m, classifier, call_id=f"enum-{n}", throttle=throttle)
                calls.append(await Call(engine, runner).run(ATTACKER, "where is my order", *g))
        return calls, trips

    before, _ = await attack(False)
    answered = [sum(s.startswith("Order ") for s in c.said) for c in before]
    assert answered == [1, 1, 1, 1, 1]  # every call hears another order's status

    after, trips = await attack(True)
    answered = [sum(s.startswith("Order ") for s in c.said) for c in after]
    assert answered == [1, 1, 0, 0, 0]
    assert "enumeration" in after[2].reason
    assert all(isinstance(c.end, Transfer) and c.end.reason == "policy" for c in after[2:])
    assert [len(c.tools) for c in after[3:]] == [0, 0]  # a locked caller's calls look nothing up
    assert [t.rule for t in trips] == ["unknown_lookups", "caller_locked", "caller_locked"]


async def test_redis_dying_mid_attack_still_locks_out(demo: tuple[IntentMap, IntentClassifier],
                                                      demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    """Fail closed: the process keeps counting locally when Redis goes away between calls."""
    m, classifier = demo
    server = RedisServer(tmp_path / "redis")
    store = RedisThrottleStore(server.url, MemoryStore(), timeout_s=0.2)
    throttle = Throttle(store)
    try:
        async with ToolRunner(m.tools_config, base_url=demo_backend) as runner:
            first = await Call(ConversationEngine(m, classifier, call_id="d-0", throttle=throttle), runner).run(
                ATTACKER, "I want to confirm my appointment", "1001", "EH1 1YZ", "1001", "M1 1AE")
            server.stop()
            second = await Call(ConversationEngine(m, classifier, call_id="d-1", throttle=throttle), runner).run(
                ATTACKER, "I want to confirm my appointment", "1001", "EH1 1YZ")
            third = await Call(ConversationEngine(m, classifier, call_id="d-2", throttle=throttle), runner).run(
                ATTACKER, "I want to confirm my appointment", "1001", "SW1A 1AA")
    finally:
        server.stop()
        store.close()
    assert first.engine.verify_attempts == 2
    assert store.degraded
    assert "throttle verification_caller" in second.reason
    assert third.engine.verified == "none" and not any(t.name == "verify_identity" for t in third.tools)


def test_counting_is_atomic_across_connections(redis_server: str) -> None:  # noqa: F811
    """Four "agents" (own connections, threads) counting one caller at once: no increment lost, one window."""
    import threading

    stores = [RedisThrottleStore(redis_server, MemoryStore()) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def hammer(store: RedisThrottleStore) -> None:
        barrier.wait()
        for _ in range(250):
            store.incr("ari-agent:throttle:test:caller:x", 600)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn = redis.Redis.from_url(redis_server)
    assert int(conn.get("ari-agent:throttle:test:caller:x") or 0) == 1000
    assert 0 < conn.ttl("ari-agent:throttle:test:caller:x") <= 600
    conn.close()
    for s in stores:
        s.close()
