"""Throttles across calls (conversation/throttle.py): the counters and lock-outs on an in-memory store
with a fake clock, and the engine's hooks against a fake back office (the attack of issue 11:
7 wrong postcodes over 4 calls then the right one; order numbers enumerated across calls)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.throttle import (
    MemoryStore,
    Throttle,
    ThrottleRules,
    Trip,
    account_of,
    caller_subject,
)
from ari_agent.seam import Action, CallStarted, CallTool, Event, Hangup, ToolResult, Transfer, Utterance

ATTACKER = "+447700900123"
ORDERS = {"4567": {"status": "shipped", "carrier": "UPS", "eta": "2026-03-12"}}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def back_office(call: CallTool) -> ToolResult:
    """The demo back office's answers, in memory: C-1001 lives at SW1A 1AA; one order exists."""
    if call.name == "verify_identity":
        ok = call.args.get("customer_id") == "C-1001" and call.args.get("postcode") == "SW1A1AA"
        return ToolResult(call.call_id, True, {"verified": ok, "level": "basic" if ok else "none",
                                               "customer_id": "C-1001" if ok else None})
    if call.name == "lookup_order":
        order = ORDERS.get(str(call.args.get("order_number")))
        if order is None:
            return ToolResult(call.call_id, False, {}, error="not_found")
        return ToolResult(call.call_id, True, order)
    if call.name == "get_appointment":
        return ToolResult(call.call_id, True, {"appointment_id": "A-100", "date": "2026-03-07", "time": "10:30",
                                               "description": "boiler service", "status": "booked"})
    return ToolResult(call.call_id, True, {"status": "confirmed"})


class Call:
    """One phone call to the engine: utterances in, tools answered by ``back_office``."""

    def __init__(self, engine: ConversationEngine, caller_id: str = ATTACKER) -> None:
        self.engine = engine
        self.tools: list[CallTool] = []
        self.said: list[str] = []
        self.end: Action | None = None
        self.feed(CallStarted(caller_id=caller_id))

    def feed(self, event: Event) -> None:
        pending: list[Event] = [event]
        while pending:
            for action in self.engine.handle(pending.pop()):
                if isinstance(action, CallTool):
                    self.tools.append(action)
                    pending.append(back_office(action))
                elif isinstance(action, (Transfer, Hangup)):
                    self.end = action
                elif hasattr(action, "text"):
                    self.said.append(action.text)

    def say(self, *lines: str) -> Call:
        for line in lines:
            if self.engine.ended:
                break
            self.feed(Utterance(line))
        return self

    @property
    def verified(self) -> bool:
        return self.engine.verified != "none"

    @property
    def transfer(self) -> Transfer:
        assert isinstance(self.end, Transfer), self.end
        return self.end


def brute_force_calls(make: Callable[[], ConversationEngine]) -> list[Call]:
    """7 wrong postcodes over 4 calls (2 per call, the per-call limit), then the right one in call 4."""
    calls = []
    for n in range(4):
        call = Call(make()).say("I want to confirm my appointment", "1001", "EH1 1YZ")
        if n < 3:
            call.say("1001", "M1 1AE")
        else:
            call.say("1001", "SW1A 1AA")
        calls.append(call)
    return calls


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def trips() -> list[Trip]:
    return []


@pytest.fixture
def throttle(clock: Clock, trips: list[Trip]) -> Throttle:
    return Throttle(MemoryStore(clock), ThrottleRules(), on_trip=trips.append)


def test_without_throttle_the_brute_force_across_calls_succeeds(make_engine: Callable[..., ConversationEngine]) \
        -> None:
    """The attack as reported: the per-call limit alone lets the 8th guess through in call 4."""
    calls = brute_force_calls(lambda: make_engine())
    assert [c.transfer.reason for c in calls[:3]] == ["verification_failed"] * 3
    assert calls[3].verified
    assert sum(1 for c in calls for t in c.tools if t.name == "verify_identity") == 8


def test_brute_force_across_calls_is_locked_out(make_engine: Callable[..., ConversationEngine], throttle: Throttle,
                                                trips: list[Trip]) -> None:
    calls = brute_force_calls(lambda: make_engine(throttle=throttle))
    verify_calls = [sum(1 for t in c.tools if t.name == "verify_identity") for c in calls]
    assert verify_calls == [2, 1, 0, 0]  # the 3rd failure locks; later calls never reach the check
    assert not any(c.verified for c in calls)
    for call in calls[1:]:
        assert call.transfer.reason == "verification_failed"
        assert "throttle verification_" in call.transfer.context["reason"]
    assert [t.rule for t in trips] == ["verification_caller", "verification_caller", "verification_caller"]
    assert all(ATTACKER not in t.subject and ATTACKER not in t.detail for t in trips)


def test_account_is_locked_against_many_caller_ids(make_engine: Callable[..., ConversationEngine],
                                                   throttle: Throttle, trips: list[Trip]) -> None:
    """Spoofed caller IDs do not help: the account claimed is counted too."""
    for n in range(3):
        Call(make_engine(throttle=throttle), caller_id=f"+44770090{n:04d}").say(
            "I want to confirm my appointment", "1001", "EH1 1YZ")
    honest = Call(make_engine(throttle=throttle), caller_id="+15551230001").say(
        "I want to confirm my appointment", "1001", "SW1A 1AA")
    assert not honest.verified
    assert honest.transfer.reason == "verification_failed"
    assert trips[-1].rule == "verification_account"
    assert not any(t.name == "verify_identity" for t in honest.tools)


def test_lock_out_ends_after_its_window(make_engine: Callable[..., ConversationEngine], throttle: Throttle,
                                        clock: Clock) -> None:
    brute_force_calls(lambda: make_engine(throttle=throttle))
    clock.t += throttle.rules.lockout_s + 1
    call = Call(make_engine(throttle=throttle)).say("I want to confirm my appointment", "1001", "SW1A 1AA")
    assert call.verified


def test_enumeration_across_calls_is_stopped(make_engine: Callable[..., ConversationEngine], throttle: Throttle,
                                             trips: list[Trip]) -> None:
    """Misses interleaved with a found order (which reset the per-call recovery) still add up."""
    guesses = [["1111", "4567"], ["1112", "4567"], ["1113", "4567"], ["1114"]]
    calls = [Call(make_engine(throttle=throttle)).say("where is my order", *g, "where is my order") for g in guesses]
    heard = [sum("has shipped" in s for s in c.said) for c in calls]
    assert heard == [1, 1, 0, 0]  # call 3: the 3rd miss hands off before 4567 is looked up
    assert calls[2].transfer.reason == "policy" and "enumeration" in calls[2].transfer.context["reason"]
    assert calls[3].transfer.reason == "policy" and not calls[3].tools  # locked caller: no lookup at all
    assert [t.rule for t in trips] == ["unknown_lookups", "caller_locked"]


def test_enumeration_without_throttle_leaks_every_order(make_engine: Callable[..., ConversationEngine]) -> None:
    guesses = [["1111", "4567"], ["1112", "4567"], ["1113", "4567"], ["1114", "4567"]]
    calls = [Call(make_engine()).say("where is my order", *g) for g in guesses]
    assert [sum("has shipped" in s for s in c.said) for c in calls] == [1, 1, 1, 1]


def test_many_found_lookups_are_enumeration_too(throttle: Throttle, trips: list[Trip]) -> None:
    guard = throttle.guard("c1")
    results = [guard.lookup_result(ATTACKER, found=True) for _ in range(throttle.rules.lookups_per_caller + 1)]
    assert results[:-1] == [None] * throttle.rules.lookups_per_caller
    assert results[-1] is not None and results[-1].rule == "lookups"


def test_call_rate_per_caller(make_engine: Callable[..., ConversationEngine], clock: Clock, trips: list[Trip]) -> None:
    throttle = Throttle(MemoryStore(clock), ThrottleRules(calls_per_caller_per_hour=2), on_trip=trips.append)
    calls = [Call(make_engine(throttle=throttle)) for _ in range(3)]
    assert [c.end for c in calls[:2]] == [None, None]
    assert calls[2].transfer.reason == "policy" and "calls from this caller ID" in calls[2].transfer.context["reason"]
    clock.t += 3601
    assert Call(make_engine(throttle=throttle)).end is None
    # anonymous callers are not counted for the call rate (they cannot be told apart)
    assert all(Call(make_engine(throttle=throttle), caller_id="anonymous").end is None for _ in range(4))


def test_memory_store_windows(clock: Clock) -> None:
    store = MemoryStore(clock)
    assert [store.incr("k", 10) for _ in range(3)] == [1, 2, 3]
    clock.t += 9.9
    assert store.count("k") == 3
    clock.t += 0.2
    assert store.count("k") == 0 and store.incr("k", 10) == 1
    store.lock("l", 5)
    assert store.locked("l")
    clock.t += 5.1
    assert not store.locked("l")


def test_subjects_are_hashed_and_anonymous_shared() -> None:
    assert caller_subject("+447700900123") == caller_subject(" +447700900123 ")
    assert "7700900123" not in caller_subject("+447700900123")
    assert caller_subject("") == caller_subject("Anonymous") == caller_subject("restricted") == "caller:anonymous"
    assert account_of({"customer_id": "C-1001", "postcode": "X"}) == "C-1001"
    assert account_of({"postcode": "X"}) is None


def test_no_throttle_is_the_default(make_engine: Callable[..., ConversationEngine]) -> None:
    assert make_engine().guard is None




def test_postcodes_off_the_record_count_as_failed_checks(make_engine: Callable[..., ConversationEngine],
                                                         throttle: Throttle, trips: list[Trip]) -> None:
    """By voice, a postcode checked against the record and not on it is read back, and a refused read-back
    reaches no verify call. Without counting those, a caller could guess postcodes by voice past the lock-out:
    each call ending on answers all off the record counts as a failed check."""
    def guessing() -> Call:
        call = Call(make_engine(throttle=throttle)).say("I want to confirm my appointment", "1001")
        for _ in range(3):
            call.feed(Utterance("N11 8EA", 0.5, unsure=True, off_record=True))
            call.say("no")
        return call

    calls = [guessing() for _ in range(3)]
    assert [c.transfer.reason for c in calls] == ["verification_failed"] * 3
    assert not any(t.name == "verify_identity" for c in calls for t in c.tools)
    assert "throttle verification_" in calls[2].transfer.context["reason"]
    assert [t.rule for t in trips] == ["verification_caller"]
    honest = Call(make_engine(throttle=throttle)).say("I want to confirm my appointment", "1001", "SW1A 1AA")
    assert not honest.verified  # locked: the right code is no longer checked from this caller
