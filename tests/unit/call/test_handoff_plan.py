"""Handoff planning (queue check → target, loop prevention, what the caller hears) and the handoff
context (short redacted variables, the full record): pure logic."""

from __future__ import annotations

import json

from ari_agent.call.handoff_context import compact_json, handoff_record, handoff_variables, transcript_from_log
from ari_agent.call.handoff_plan import announcement, candidates, plan_handoff, tried_queues, wait_words
from ari_agent.config import HandoffConfig, HandoffQueueConfig
from ari_agent.telephony.ami_events import QueueSummary

CFG = HandoffConfig(queues={
    "billing": HandoffQueueConfig(team="billing", fallback="support", max_wait_s=300),
    "support": HandoffQueueConfig(team="support", fallback="overflow", max_wait_s=600),
    "overflow": HandoffQueueConfig(fallback="billing", announce=False),  # a cycle: must not loop
})


def q(name: str, logged_in: int = 1, available: int = 1, callers: int = 0, hold: int = 0) -> QueueSummary:
    return QueueSummary(name, logged_in, available, callers, hold, 0, 0)


def test_candidates_follow_fallbacks_without_cycles() -> None:
    assert candidates(CFG, "billing") == ["billing", "support", "overflow"]
    assert candidates(CFG, "unknown") == ["unknown"]


def test_available_queue_is_used() -> None:
    plan = plan_handoff(CFG, "billing", {"billing": q("billing"), "support": q("support")})
    assert plan.target == "billing" and plan.checked and not plan.rerouted and plan.wait_s == 0


def test_empty_or_paused_queue_gives_way_to_the_fallback() -> None:
    for summary, why in ((q("billing", logged_in=0, available=0), "no_members"),
                         (q("billing", available=0, callers=1, hold=30), "none_available"),
                         (None, "no_such_queue")):
        plan = plan_handoff(CFG, "billing", {"billing": summary, "support": q("support")})
        assert plan.target == "support" and plan.rerouted and plan.why == why, (summary, plan)


def test_wait_over_the_limit_gives_way() -> None:
    slow = q("billing", logged_in=3, available=1, callers=4, hold=400)
    plan = plan_handoff(CFG, "billing", {"billing": slow, "support": q("support", available=2, callers=2, hold=100)})
    assert plan.target == "support" and plan.why == "wait_over_limit" and plan.wait_s == 100


def test_no_good_queue_is_exhausted_never_an_empty_queue() -> None:
    empty = {n: q(n, logged_in=0, available=0) for n in ("billing", "support", "overflow")}
    plan = plan_handoff(CFG, "billing", empty)
    assert plan.exhausted and plan.target == CFG.exhausted_extension
    assert announcement(CFG, plan) == "I'm sorry, all of our teams are busy right now."


def test_ami_unreachable_goes_to_the_intended_queue_unchecked() -> None:
    plan = plan_handoff(CFG, "billing", None)
    assert plan.target == "billing" and not plan.checked and not plan.exhausted
    assert announcement(CFG, plan) == "I'm putting you through to our billing team."
    partial = plan_handoff(CFG, "billing", {"billing": q("billing", available=0)})  # AMI failed after one
    assert partial.target == "support" and not partial.checked


def test_loop_prevention_skips_queues_already_tried() -> None:
    plan = plan_handoff(CFG, "support", {"overflow": q("overflow"), "billing": q("billing")}, tried=["support"])
    assert plan.target == "overflow" and plan.why == "already_tried" and plan.skipped == ("support",)
    every = plan_handoff(CFG, "support", None, tried=["support", "overflow", "billing"])
    assert every.exhausted
    off = HandoffConfig(queues=CFG.queues, loop_prevention=False)
    assert plan_handoff(off, "support", {"support": q("support")}, tried=["support"]).target == "support"
    assert tried_queues(" support,,billing ,") == ("support", "billing")


def test_announcements() -> None:
    busy = {"billing": q("billing", available=1, callers=3, hold=130), "support": q("support")}
    plan = plan_handoff(CFG, "billing", busy)
    assert announcement(CFG, plan) == "I'm putting you through to our billing team; the wait is about two minutes."
    rerouted = plan_handoff(CFG, "billing", {"billing": q("billing", available=0), "support": q("support")})
    assert announcement(CFG, rerouted) == ("Our billing team can't take calls right now, so I'm putting you "
                                           "through to our support team; someone should answer shortly.")
    quiet = plan_handoff(CFG, "overflow", {"overflow": q("overflow")})
    assert announcement(CFG, quiet) is None
    assert wait_words(30) == "under a minute" and wait_words(60) == "about one minute"
    assert wait_words(3600) == "about 60 minutes"


def test_after_the_conversations_own_line_only_what_it_could_not_know_is_said() -> None:
    """The caller has just heard "Let me connect you with a colleague who can help.": no second line
    saying the same, only the wait, another team or every team busy."""
    free = plan_handoff(CFG, "billing", {"billing": q("billing", available=1, callers=0, hold=0)})
    assert free.wait_s == 0 and announcement(CFG, free, told=True) is None
    busy = plan_handoff(CFG, "billing", {"billing": q("billing", available=1, callers=3, hold=130)})
    assert announcement(CFG, busy, told=True) == "The wait is about two minutes."
    rerouted = plan_handoff(CFG, "billing", {"billing": q("billing", available=0), "support": q("support")})
    assert announcement(CFG, rerouted, told=True) == announcement(CFG, rerouted)
    assert announcement(CFG, plan_handoff(CFG, "billing", None), told=True) is None  # unchecked: nothing new
    empty = {n: q(n, logged_in=0, available=0) for n in ("billing", "support", "overflow")}
    assert announcement(CFG, plan_handoff(CFG, "billing", empty), told=True) == announcement(
        CFG, plan_handoff(CFG, "billing", empty))
    again = plan_handoff(CFG, "billing", {"support": q("support")}, tried=["billing"])  # back from billing
    assert again.target == "support" and again.why == "already_tried"
    assert announcement(CFG, again, told=True) is None
    assert wait_words(3600) == "about 60 minutes"


def test_variables_are_short_redacted_and_inherited() -> None:
    ctx = {"intent": "card_payment", "summary": "caller read card 4111 1111 1111 1111; wants refund",
           "verified_identity": "basic (customer C42)", "caller_id": "+441234567890",
           "slot.card": "4111111111111111", "slot.order_number": "4567"}
    v = handoff_variables("caller_request", ctx, call_id="call-1", tried=["billing", "billing"])
    assert all(k.startswith("__ARI_AGENT_") for k in v)
    assert "4111" not in json.dumps(v) and "[CARD]" in v["__ARI_AGENT_SUMMARY"]
    assert json.loads(v["__ARI_AGENT_SLOTS"]) == {"card": "[CARD]", "order_number": "4567"}
    assert v["__ARI_AGENT_CALL_ID"] == "call-1" and v["__ARI_AGENT_CONTEXT_KEY"] == "ari-agent:handoff:call-1"
    assert v["__ARI_AGENT_TRIED"] == "billing" and "__ARI_AGENT_CALLER_ID" not in v
    assert v["__ARI_AGENT_VERIFIED"] == "basic (customer C42)" and v["__ARI_AGENT_REASON"] == "caller_request"


def test_compact_json_drops_what_does_not_fit_instead_of_cutting() -> None:
    text = compact_json({"a": "x" * 10, "b": "y" * 500, "c": "z"}, 60)
    assert json.loads(text) == {"a": "x" * 10, "c": "z"}


def test_record_and_transcript_are_redacted() -> None:
    log = [{"kind": "say", "text": "What's your card number?"},
           {"kind": "heard", "text": "four one one one one one one one one one one one one one one one"},
           {"kind": "dtmf", "digits": "1234"}, {"kind": "heard", "text": " "}, {"kind": "tool"}, "junk",
           {"kind": "say", "text": 5}]
    transcript = transcript_from_log(log)  # type: ignore[arg-type]
    assert [t["who"] for t in transcript] == ["agent", "caller", "caller"]
    assert "[CARD]" in transcript[1]["text"]
    rec = handoff_record("call-1", "support", "caller_request", {"intent": "x", "summary": "email jo@example.com"},
                         caller_number="5551234", transcript=transcript, requested_queue="billing",
                         rerouted_because="none_available", now=1.0)
    assert rec["summary"] == "email [EMAIL]" and rec["requested_queue"] == "billing" and rec["stored_at"] == 1.0
    assert rec["caller_id"] == "5551234" and rec["verification"] == "none"


def test_a_destination_that_is_not_a_queue_is_neither_checked_nor_announced() -> None:
    for where in ("voicemail", "callback", "takeover"):
        plan = plan_handoff(CFG, where, {where: None})  # AMI would say "no such queue"
        assert plan.target == where and not plan.rerouted and not plan.exhausted and not plan.checked
        assert announcement(CFG, plan) is None
