"""A live call's facts (event log, engine notes, stage profiles) become its call record."""

from __future__ import annotations

import datetime as dt

from ari_agent.records.call_facts import CallFacts, build_record, hangup_outcome, outcome_of, tool_calls_of
from ari_agent.records.model import CallerHasher

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HASH = CallerHasher("test-salt-1234")


def facts(ended_by: str, events: list[dict[str, object]], notes: list[str], **kw: object) -> CallFacts:
    return CallFacts("call-1", T0, T0 + dt.timedelta(seconds=42), "+15551230001", ended_by, events=events,
                     notes=notes, **kw)  # type: ignore[arg-type]


ORDER_EVENTS: list[dict[str, object]] = [
    {"t": 0.1, "kind": "say", "text": "Hello"},
    {"t": 3.0, "kind": "heard", "text": "where is my order", "confidence": 0.9},
    {"t": 5.0, "kind": "dtmf", "digits": "4567"},
    {"t": 5.1, "kind": "tool", "name": "lookup_order", "args": {"order_number": "4567"}},
    {"t": 5.4, "kind": "tool_result", "ok": True, "error": None},
    {"t": 9.0, "kind": "heard", "text": "my card is 4111 1111 1111 1111 thanks", "confidence": 0.8},
    {"t": 9.5, "kind": "hangup", "reason": "caller_goodbye"},
]


def test_a_served_call_the_agent_ends_is_resolved_with_its_tools_turns_and_stages() -> None:
    r = build_record(facts("agent", ORDER_EVENTS, ["request: order_status", "order_number=4567",
                                                    "lookup_order ok", "completed order_status",
                                                    "request: order_status"],
                           turn_profiles=[{"stt_final": 40.0, "engine": 45.0, "tool": None},
                                          {"stt_final": 60.0, "engine": None, "tool": 300.0}]),
                     HASH, "v1")
    assert r.outcome == "resolved" and r.intents == ["order_status"] and r.turns == 3
    assert r.caller_hash == HASH.hash("+1 555 123 0001") and "5551230001" not in str(r)
    assert [(t.name, t.ok, t.ms) for t in r.tool_calls] == [("lookup_order", True, 300.0)]
    assert r.stage_ms == {"stt_final": [40.0, 60.0], "engine": [45.0], "tool": [300.0]}
    assert r.heard[0] == "where is my order" and "4111" not in r.heard[1] and "[CARD]" in r.heard[1]
    assert r.config_version == "v1" and r.source == "call" and r.duration_s == 42.0
    assert r.answer_s == 0.1  # the greeting began 0.1 s after the call reached the agent


def test_outcomes() -> None:
    assert outcome_of(facts("handoff", [], [], handoff_queue="billing", handoff_reason="restricted")) == "transferred"
    assert outcome_of(facts("caller", ORDER_EVENTS, ["completed order_status"])) == "caller_hung_up"
    assert outcome_of(facts("error", [], [])) == "error"
    assert outcome_of(facts("agent", [], [])) == "open"  # no conversation (greet_and_listen)
    assert hangup_outcome("caller_goodbye", ["request: hours"]) == "caller_hung_up"  # left before being served
    assert hangup_outcome("caller_goodbye", ["caller declined confirm_appointment"]) == "resolved"
    assert hangup_outcome("max_turns_goodbye", []) == "resolved"
    r = build_record(facts("handoff", [], ["request: bill_payment", "not understood: 'blah'",
                                           "policy stopped unlock_account: not verified"],
                           handoff_queue="billing", handoff_reason="restricted"), HASH, "v1")
    assert (r.transfer_queue, r.transfer_reason, r.no_match_turns) == ("billing", "restricted", 1)
    assert r.policy_events == ["policy: unlock_account: not verified"]
    assert r.answer_s is None  # the agent never spoke (no service-level figure, rather than a made-up one)


def test_a_tool_without_a_result_is_a_failure() -> None:
    calls = tool_calls_of([{"t": 1.0, "kind": "tool", "name": "lookup_order"},
                           {"t": 2.0, "kind": "tool", "name": "lookup_order"},
                           {"t": 2.5, "kind": "tool_result", "ok": False, "error": "backend_error"},
                           {"t": 3.0, "kind": "tool", "name": "verify_identity"}])
    assert [(c.name, c.ok, c.error) for c in calls] == [("lookup_order", False, "no_result"),
                                                        ("lookup_order", False, "backend_error"),
                                                        ("verify_identity", False, "no_result")]
    assert calls[1].ms == 500.0
