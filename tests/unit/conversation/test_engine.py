"""Dialogue-manager behaviour that scenarios do not show well: invariants, policy, edge events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap, parse_intent_map
from ari_agent.conversation.nlu import Classification
from ari_agent.conversation.policy import Policy, Violation
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Dtmf,
    Event,
    Hangup,
    Listen,
    Say,
    Timeout,
    ToolResult,
    Transfer,
    Utterance,
)
from ari_agent.speech.clauses import split_sentences

from .conftest import DATA

Make = Callable[..., ConversationEngine]


@dataclass
class StubClassifier:
    """Deterministic routing for logic tests: substring -> intent."""

    table: dict[str, str]
    also: tuple[str, ...] = ()

    def classify(self, text: str) -> Classification:
        for needle, intent in self.table.items():
            if needle in text.lower():
                return Classification(intent, 0.99, ((intent, 0.99),), self.also)
        return Classification(None, 0.0, ())


def _kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def _start(engine: ConversationEngine, *texts: str) -> list[Action]:
    out = engine.handle(CallStarted(caller_id="+15551230001"))
    for t in texts:
        out = engine.handle(Utterance(t))
    return out


# ------------------------------------------------------------------ invariants


EVENTS = st.one_of(
    st.sampled_from([
        Utterance("where is my order"), Utterance("four five six seven"), Utterance("yes"), Utterance("no"),
        Utterance("I want to reschedule my appointment to Friday at 2 pm"), Utterance("1001"),
        Utterance("SW1A 1AA"), Utterance("repeat that"), Utterance("what are your hours"),
        Utterance("gibberish words here"), Utterance("never mind"), Utterance(""), Dtmf("4567#"), Dtmf("1"),
        Timeout("silence"), Timeout("tool"), BargeIn(""), BargeIn("Thanks for calling"),
        Utterance("please unlock my account"), Utterance("April 12th 1985"),
    ]),
    st.text(max_size=40).map(Utterance),
)


@given(st.lists(st.tuples(EVENTS, st.booleans(), st.booleans()), max_size=14))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_event_sequence_keeps_the_seam_contract(make_engine: Make, steps: list[tuple[Event, bool, bool]]) -> None:
    engine = make_engine()
    actions = engine.handle(CallStarted())
    for event, tool_ok, answer_tool in steps:
        calls = [a for a in actions if isinstance(a, CallTool)]
        if calls and answer_tool:
            actions = engine.handle(ToolResult(calls[-1].call_id, tool_ok, {}, None if tool_ok else "backend_error"))
        else:
            actions = engine.handle(event)
        _check_turn(engine, actions)


def _check_turn(engine: ConversationEngine, actions: list[Action]) -> None:
    ends = [a for a in actions if isinstance(a, (Transfer, Hangup))]
    if ends:
        assert actions[-1] is ends[0] and len(ends) == 1, actions  # an ending action comes last, once
        assert engine.ended
    listens = [a for a in actions if isinstance(a, Listen)]
    if listens:
        assert actions[-1] is listens[0] and len(listens) == 1  # a turn ends listening, once
        assert len(actions) == 1 or isinstance(actions[-2], Say)  # a barge-in answers with a bare Listen
    if engine.ended:
        assert not listens and not any(isinstance(a, CallTool) for a in actions)
    for a in actions:
        if isinstance(a, Transfer):
            assert a.queue in ("support", "billing") and a.reason
            assert {"intent", "summary", "verified_identity", "reason"} <= set(a.context)


def test_events_after_the_end_do_nothing(make_engine: Make) -> None:
    engine = make_engine()
    out = _start(engine, "representative")
    assert isinstance(out[-1], Transfer)
    for event in (Utterance("hello?"), Dtmf("1"), Timeout("silence"), BargeIn("x"), CallStarted()):
        assert engine.handle(event) == []


def test_a_second_call_started_is_ignored(make_engine: Make) -> None:
    engine = make_engine()
    engine.handle(CallStarted())
    assert engine.handle(CallStarted()) == []


def test_an_utterance_before_call_started_is_answered(make_engine: Make) -> None:
    out = make_engine().handle(Utterance("what are your opening hours"))
    assert any(isinstance(a, Say) and "We're open" in a.text for a in out)


def test_the_hours_answer_is_among_the_lines_start_up_renders_ahead(make_engine: Make, demo_map: IntentMap) -> None:
    out = make_engine().handle(Utterance("what are your opening hours"))
    said = [s for a in out if isinstance(a, Say) for s in split_sentences(a.text)]
    ahead = {s for line in demo_map.spoken_lines() for s in split_sentences(line)}
    hours = [s for s in said if "open" in s]
    assert hours and set(hours) <= ahead, (hours, said)  # played from memory, not synthesised on the call


# ------------------------------------------------------------------ tools


def test_stale_and_foreign_tool_results_are_ignored(make_engine: Make) -> None:
    engine = make_engine()
    call = _start(engine, "where is my order", "4567")[-1]
    assert isinstance(call, CallTool)
    assert engine.handle(ToolResult("someone-else", True, {"status": "shipped"})) == []
    assert engine.handle(Utterance("hello?")) == []  # a tool is running: the caller waits
    assert engine.handle(Utterance("never mind")) == []  # the request cannot be dropped under a running tool
    assert engine.handle(Utterance("repeat that")) == []
    assert engine.handle(Timeout("silence")) == []
    out = engine.handle(ToolResult(call.call_id, True, {"status": "shipped", "eta": "2026-03-12"}))
    assert any(isinstance(a, Say) and "shipped" in a.text for a in out)
    assert engine.handle(ToolResult(call.call_id, True, {"status": "shipped"})) == []  # answered already


def test_call_tool_carries_budget_key_and_correlation(make_engine: Make) -> None:
    engine = make_engine(call_id="call-42")
    call = _start(engine, "where is my order", "4567")[-1]
    assert isinstance(call, CallTool)
    assert call.budget_ms == 700 and call.call_id == "call-42-t1"
    assert call.idempotency_key == idempotency_key("call-42", "order_status",
                                                   {"tool": "lookup_order", "order_number": "4567"})


def test_idempotency_key_function_is_injected_and_stable(make_engine: Make) -> None:
    seen: list[tuple[str, str, dict[str, object]]] = []

    def key(call_id: str, intent: str, slots: object) -> str:
        seen.append((call_id, intent, dict(slots)))  # type: ignore[call-overload]
        return "k-1"

    engine = make_engine(idempotency_key=key)
    call = _start(engine, "where is my order", "4567")[-1]
    assert isinstance(call, CallTool) and call.idempotency_key == "k-1"
    assert seen == [("test-call", "order_status", {"tool": "lookup_order", "order_number": "4567"})]
    assert idempotency_key("c", "i", {"a": 1, "b": 2}) == idempotency_key("c", "i", {"b": 2, "a": 1})


def test_write_needs_a_confirmation_the_caller_heard(make_engine: Make) -> None:
    engine = make_engine()
    _start(engine, "I need to reschedule my appointment to Friday at 2 pm", "1001")
    verify = engine.handle(Utterance("SW1A 1AA"))[-1]
    assert isinstance(verify, CallTool)
    read = engine.handle(ToolResult(verify.call_id, True, {"verified": True, "level": "basic",
                                                           "customer_id": "C-1001"}))[-1]
    assert isinstance(read, CallTool) and read.name == "get_appointment"
    out = engine.handle(ToolResult(read.call_id, True, {"appointment_id": "A-1", "date": "2026-03-07",
                                                        "time": "10:30", "description": "visit"}))
    assert isinstance(out[-1], Listen) and out[-1].expect.kind == "yes_no"
    assert engine.handle(Dtmf("9")) and engine.state.phase == "confirm"  # an unknown key: asked again
    out = engine.handle(Dtmf("1"))  # 1 = yes
    assert isinstance(out[-1], CallTool) and out[-1].name == "reschedule_appointment"


# ------------------------------------------------------------------ policy and kill switch


def _rule(violation: Violation | None) -> str | None:
    return violation.rule if violation is not None else None


def test_policy_rules(demo_map: IntentMap) -> None:
    policy = Policy(demo_map)
    reschedule = demo_map.intent("appointment_reschedule")
    unlock = demo_map.intent("account_unlock")
    bill = demo_map.intent("bill_payment")
    assert reschedule is not None and unlock is not None and bill is not None
    assert _rule(policy.check_tool_call(reschedule, "unlock_account", verified="strong", confirmed=True)) == "allowlist"
    assert _rule(policy.check_tool_call(reschedule, "get_appointment", verified="none", confirmed=False)) == \
        "verification"
    assert policy.check_tool_call(reschedule, "get_appointment", verified="basic", confirmed=False) is None
    assert _rule(policy.check_tool_call(reschedule, "reschedule_appointment", verified="basic",
                                  confirmed=False)) == "confirmation"
    assert policy.check_tool_call(reschedule, "reschedule_appointment", verified="basic", confirmed=True) is None
    assert _rule(policy.check_tool_call(unlock, "unlock_account", verified="basic", confirmed=True)) == "verification"
    assert policy.check_tool_call(unlock, "verify_identity", verified="none", confirmed=False) is None
    assert _rule(policy.check_tool_call(bill, "faq", verified="strong", confirmed=True)) == "restricted"
    policy.kill_switch = True
    assert _rule(policy.check_tool_call(reschedule, "get_appointment", verified="basic", confirmed=False)) == \
        "kill_switch"


def test_kill_switch_every_turn_ends_in_transfer(make_engine: Make) -> None:
    engine = make_engine(kill_switch=True)
    out = engine.handle(CallStarted())
    assert _kinds(out) == ["Say", "Transfer"]
    assert isinstance(out[-1], Transfer) and out[-1].reason == "kill_switch" and out[-1].queue == "support"


def test_kill_switch_mid_call_before_a_tool_result(make_engine: Make) -> None:
    engine = make_engine()
    call = _start(engine, "where is my order", "4567")[-1]
    assert isinstance(call, CallTool)
    engine.kill_switch = True
    out = engine.handle(ToolResult(call.call_id, True, {"status": "shipped"}))
    assert _kinds(out) == ["Say", "Transfer"] and not any(isinstance(a, (Listen, CallTool)) for a in out)
    assert isinstance(out[-1], Transfer) and out[-1].context["intent"] == "order_status"


# ------------------------------------------------------------------ handoffs and their context


def test_transfer_context_names_intent_summary_identity_reason(make_engine: Make) -> None:
    engine = make_engine()
    _start(engine, "please unlock my account", "1002", "M1 1AE")
    verify = engine.handle(Utterance("September 30th 1990"))[-1]
    assert isinstance(verify, CallTool) and verify.args["date_of_birth"] == "1990-09-30"
    engine.handle(ToolResult(verify.call_id, True, {"verified": True, "level": "full", "customer_id": "C-1002"}))
    out = engine.handle(Utterance("actually can I speak to an agent"))
    transfer = out[-1]
    assert isinstance(transfer, Transfer) and transfer.queue == "support" and transfer.reason == "caller_request"
    ctx = transfer.context
    assert ctx["intent"] == "account_unlock"
    assert ctx["verified_identity"] == "strong (customer C-1002)"
    assert "identity verified (strong)" in ctx["summary"]
    assert ctx["reason"] == "the caller asked for a person"
    assert ctx["identity.customer_id"] == "C-1002"
    assert ctx["caller_id"] == "+15551230001"


def test_max_turns_hands_off(make_engine: Make, demo_map: IntentMap) -> None:
    engine = make_engine()
    engine.handle(CallStarted())
    out: list[Action] = []
    for _ in range(demo_map.spec.limits.max_turns + 1):
        out = engine.handle(Utterance("repeat that"))
        if engine.ended:
            break
    assert isinstance(out[-1], Transfer) and out[-1].reason == "max_turns"


def test_max_call_timeout_hands_off(make_engine: Make) -> None:
    engine = make_engine()
    _start(engine, "where is my order")
    out = engine.handle(Timeout("max_call"))
    assert isinstance(out[-1], Transfer) and out[-1].reason == "max_duration"


def test_zero_key_asks_for_the_operator(make_engine: Make) -> None:
    engine = make_engine()
    engine.handle(CallStarted())
    out = engine.handle(Dtmf("0"))
    assert isinstance(out[-1], Transfer) and out[-1].reason == "caller_request"


def test_low_recogniser_confidence_is_not_understood(demo_map: IntentMap, make_engine: Make) -> None:
    m = IntentMap(demo_map.spec.model_copy(update={"limits": demo_map.spec.limits.model_copy(
        update={"min_confidence": 0.5})}), demo_map.tools)
    engine = make_engine(intent_map=m)
    engine.handle(CallStarted())
    out = engine.handle(Utterance("where is my order", confidence=0.2))
    assert any(isinstance(a, Say) and "didn't catch" in a.text for a in out)


def test_after_hours_and_anonymous_exclusions(classifier: object) -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "tools:\n",
        "business_hours:\n  days: {mon: \"09:00-17:00\"}\n  spoken: \"Mondays 9 to 5\"\n"
        "exclusions: {conditions: [after_hours]}\ntools:\n", 1,
    ).replace("    tools: [lookup_order]",
              "    exclusions: {conditions: [anonymous_caller]}\n    tools: [lookup_order]")
    m = parse_intent_map(text, "m.yaml")
    stub = StubClassifier({"order": "order_status"})
    closed = ConversationEngine(m, stub, call_id="c", now=datetime(2026, 3, 4, 20, 0))  # a Wednesday night
    closed.handle(CallStarted(caller_id="+1555"))
    out = closed.handle(Utterance("where is my order"))
    assert isinstance(out[-1], Transfer) and out[-1].reason == "after_hours"
    assert out[-1].context["after_hours"] == "true"
    anonymous = ConversationEngine(m, stub, call_id="c", now=datetime(2026, 3, 2, 10, 0))  # Monday morning
    anonymous.handle(CallStarted(caller_id="anonymous"))
    out = anonymous.handle(Utterance("where is my order"))
    assert isinstance(out[-1], Transfer) and out[-1].reason == "exclusion"


# ------------------------------------------------------------------ barge-in, repeat, several requests


@pytest.mark.parametrize(
    ("heard", "answered"),
    [("", False), ("I'll move your", False), ("What day would you like", False),
     ("What day would you like to move", True), ("What day would you like to move it to?", True)],
)
def test_barge_in_question_heard(make_engine: Make, heard: str, answered: bool) -> None:
    engine = make_engine()
    _start(engine, "I need to reschedule my appointment", "1001")
    verify = engine.handle(Utterance("SW1A 1AA"))[-1]
    assert isinstance(verify, CallTool)
    out = engine.handle(ToolResult(verify.call_id, True, {"verified": True, "level": "basic",
                                                          "customer_id": "C-1001"}))
    assert isinstance(out[-2], Say) and out[-2].text == "What day would you like to move it to?"
    listen = engine.handle(BargeIn(heard))
    assert isinstance(listen[0], Listen) and listen[0].expect.kind == ("date" if answered else "open")
    out = engine.handle(Utterance("Friday"))
    asked_time = any(isinstance(a, Say) and "what time" in a.text.lower() for a in out)
    assert asked_time is answered
    if not answered:  # the question is asked again, not counted as a failed answer
        assert isinstance(out[-2], Say) and out[-2].text == "What day would you like to move it to?"
        assert engine.attempts == 0


def test_repeat_replays_the_whole_last_prompt(make_engine: Make) -> None:
    engine = make_engine()
    first = _start(engine, "where is my order")
    again = engine.handle(Utterance("sorry, what?"))
    assert [a for a in again if isinstance(a, Say)] == [a for a in first if isinstance(a, Say)]
    assert again[-1] == first[-1]


def test_also_mentioned_requests_follow(demo_map: IntentMap) -> None:
    stub = StubClassifier({"hours": "faq_hours"}, also=("faq_address",))
    engine = ConversationEngine(demo_map, stub, call_id="c")
    engine.handle(CallStarted())
    out = engine.handle(Utterance("what are your hours and where are you"))
    assert any(isinstance(a, Say) and "We're open" in a.text for a in out)
    assert isinstance(out[-1], CallTool) and out[-1].name == "faq"


def test_patterns_route_before_the_classifier(classifier: object) -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "    slots:\n", "    patterns: ['\\border\\s+\\d{4}']\n    slots:\n", 1)
    m = parse_intent_map(text, "m.yaml")
    engine = ConversationEngine(m, StubClassifier({}), call_id="c")
    engine.handle(CallStarted())
    out = engine.handle(Utterance("order 4567"))
    assert isinstance(out[-1], CallTool) and out[-1].args == {"order_number": "4567"}


def test_state_view(make_engine: Make) -> None:
    engine = make_engine()
    _start(engine, "where is my order")
    state = engine.state
    assert (state.phase, state.intent, state.verified, state.turns, state.ended) == (
        "slot", "order_status", "none", 1, False)
    assert engine.latency_budget_ms == 1000


def test_the_postcode_question_carries_the_record_lookup_for_the_customer_named(make_engine: Make,
                                                                                demo_map: IntentMap) -> None:
    """verification.record: the identity postcode turn says which record to fetch (the call layer fetches it
    and checks the audio against it); the dialogue itself calls no extra tool and notes nothing of it."""
    engine = make_engine()
    out = _start(engine, "I want to confirm my appointment")
    first = next(a for a in out if isinstance(a, Listen))
    assert first.expect.slot == "customer_number" and first.expect.record_lookup is None
    out = engine.handle(Utterance("1001"))
    listen = next(a for a in out if isinstance(a, Listen))
    assert listen.expect.slot == "postcode" and listen.expect.code_format == "uk_postcode"
    query = listen.expect.record_lookup
    assert query is not None and query.tool == "identity_record" and query.result_field == "postcode"
    assert dict(query.args) == {"customer_id": "C-1001"}
    assert not any(isinstance(a, CallTool) for a in out) and listen.expect.on_record is None
    assert "C-1001" not in repr(listen)  # kept out of logs and traces
    # another customer number on the second attempt: the lookup names that one
    verify = engine.handle(Utterance("M1 1AE"))[-1]
    assert isinstance(verify, CallTool) and verify.name == "verify_identity"
    engine.handle(ToolResult(verify.call_id, True, {"verified": False, "level": "none"}))
    out = engine.handle(Utterance("1002"))
    listen = next(a for a in out if isinstance(a, Listen))
    query = listen.expect.record_lookup
    assert query is not None and dict(query.args) == {"customer_id": "C-1002"}
    # the kill switch: no lookup leaves the engine (the turn is transferred anyway)
    engine.kill_switch = True
    assert engine.policy.check_tool_call(demo_map.intent("appointment_confirm"), "identity_record",  # type: ignore[arg-type]
                                         verified="none", confirmed=False) is not None


def _postcode_answers(engine: ConversationEngine, *off_record: bool) -> list[Action]:
    """Answers to the identity postcode question, each read back (heard unsure) and refused."""
    _start(engine, "I want to confirm my appointment")
    engine.handle(Utterance("1001"))
    assert engine.question.kind == "identity" and engine.question.slot is not None
    out: list[Action] = []
    for off in off_record:
        out = engine.handle(Utterance("N11 8EA", 0.5, unsure=True, off_record=off))
        assert engine.question.kind == "read_back"
        out = engine.handle(Utterance("no"))
    return out


def test_an_identity_code_never_on_the_record_is_a_failed_verification(make_engine: Make) -> None:
    """Every answer's audio was checked against the record and none says the code on it: the code was never
    read, but it is known not to be the caller's. A failed verification, not a slot the agent could not fill."""
    out = _postcode_answers(make_engine(), True, True, True)
    transfer = out[-1]
    assert isinstance(transfer, Transfer) and transfer.reason == "verification_failed"
    assert not any(isinstance(a, CallTool) and a.name == "verify_identity" for a in out)


@pytest.mark.parametrize("off_record", [(True, False, True), (False, False, False)])
def test_a_code_answer_not_checked_against_the_record_leaves_it_unfilled(make_engine: Make,
                                                                         off_record: tuple[bool, ...]) -> None:
    """One answer whose check did not run (or found nothing against it): the agent cannot say the caller's
    code is not on record, only that it could not get one."""
    out = _postcode_answers(make_engine(), *off_record)
    transfer = out[-1]
    assert isinstance(transfer, Transfer) and transfer.reason == "slot_unfilled"



def test_a_handoff_after_a_completed_request_carries_what_it_gathered(make_engine: Make) -> None:
    """"Anything else?" -> "a person, please": the screen-pop's slots table showed nothing while the summary
    named order 4567; the request just completed gives the handoff its context fields."""
    engine = make_engine()
    _start(engine, "where is my order")
    lookup = engine.handle(Utterance("4567"))[-1]
    assert isinstance(lookup, CallTool)
    engine.handle(ToolResult(lookup.call_id, True, {"status": "shipped", "eta": "2026-12-10", "carrier": "UPS"}))
    transfer = engine.handle(Utterance("can I talk to a person"))[-1]
    assert isinstance(transfer, Transfer) and transfer.reason == "caller_request"
    assert transfer.context["intent"] == "order_status"
    assert (transfer.context["slot.order_number"], transfer.context["result.status"]) == ("4567", "shipped")
