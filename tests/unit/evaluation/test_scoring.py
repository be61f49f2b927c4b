"""The judge, the figures and the gate on hand-built traces with known answers (pure logic)."""

from __future__ import annotations

import datetime as dt

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.evaluation.gate import check_baseline, check_thresholds
from ari_agent.evaluation.judge import judge
from ari_agent.evaluation.metrics import by_intent, compute
from ari_agent.evaluation.scenario import Bound, Expect, GateSpec, Scenario
from ari_agent.evaluation.trace import CallTrace, ToolCallTrace

T0 = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)


def sc(id: str, **expect: object) -> Scenario:
    return Scenario(id=id, expect=Expect(**expect))  # type: ignore[arg-type]


def tr(id: str, outcome: str, *, intents: list[str] | None = None, tools: list[ToolCallTrace] | None = None,
       queue: str | None = None, reason: str | None = None, turns: int = 2, says: list[str] | None = None) -> CallTrace:
    return CallTrace(id, T0, outcome=outcome, intents=intents or [], tools=tools or [], queue=queue, reason=reason,
                     turns=turns, says=says or [])


def test_a_write_without_verification_or_confirmation_is_a_violation(demo_map: IntentMap) -> None:
    s = sc("x", outcome="resolved", intents=["account_unlock"])
    bad = tr("x", "resolved", intents=["account_unlock"],
             tools=[ToolCallTrace("verify_identity", {}, "account_unlock", ok=True,
                                  data={"verified": True, "level": "basic"}),
                    ToolCallTrace("unlock_account", {}, "account_unlock", ok=True)])
    v = judge(s, bad, demo_map)
    assert not v.passed
    assert any(x.startswith("unverified: unlock_account") for x in v.violations)
    assert any(x.startswith("unconfirmed: unlock_account") for x in v.violations)
    good = tr("x", "resolved", intents=["account_unlock"],
              tools=[ToolCallTrace("verify_identity", {}, "account_unlock", ok=True,
                                   data={"verified": True, "level": "full"}),
                     ToolCallTrace("unlock_account", {}, "account_unlock", ok=True, after_yes_no=True)])
    assert judge(s, good, demo_map).passed


def test_allowlist_kill_switch_forbidden_and_disclosure(demo_map: IntentMap) -> None:
    s = sc("x", outcome="resolved", forbidden_tools=["faq"], never_says=["Jordan"])
    t = tr("x", "resolved", says=["Hello Jordan"],
           tools=[ToolCallTrace("faq", {}, "order_status", ok=True, in_transfer_only_mode=True)])
    rules = sorted(x.split(":")[0] for x in judge(s, t, demo_map).violations)
    assert rules == ["allowlist", "disclosure", "forbidden_tool", "kill_switch"]


def test_transfer_checks_need_queue_and_reason(demo_map: IntentMap) -> None:
    s = sc("x", outcome="transferred", queue="billing", reason="restricted", intents=["bill_payment"])
    assert judge(s, tr("x", "transferred", intents=["bill_payment"], queue="billing", reason="restricted"),
                 demo_map).passed
    wrong_reason = judge(s, tr("x", "transferred", intents=["bill_payment"], queue="billing", reason="no_match"),
                         demo_map)
    c = wrong_reason.check("transfer")
    assert c is not None and not c.ok and "billing/no_match" in c.detail
    unexpected = judge(sc("y", outcome="resolved"), tr("y", "transferred", queue="support", reason="silence"),
                       demo_map)
    assert unexpected.check("transfer") is not None and not unexpected.passed


def test_figures_per_suite_and_per_intent(demo_map: IntentMap) -> None:
    verdicts = [
        judge(sc("a", outcome="resolved", intents=["order_status"]),
              tr("a", "resolved", intents=["order_status"], turns=3), demo_map),
        judge(sc("b", outcome="resolved", intents=["order_status"]),  # recognised but handed off
              tr("b", "transferred", intents=["order_status"], queue="support", reason="tool_error", turns=2),
              demo_map),
        judge(sc("c", outcome="transferred", queue="billing", reason="restricted", intents=["bill_payment"]),
              tr("c", "transferred", intents=["bill_payment"], queue="billing", reason="restricted", turns=1),
              demo_map),
        judge(sc("d", outcome="caller_hung_up"), tr("d", "caller_hung_up", turns=2), demo_map),
    ]
    m = compute(verdicts)
    assert m.scenarios == 4 and m.passed == 3
    assert m.get("intent_recognition") == 1.0
    assert m.get("intent_success") == 2 / 3
    assert m.get("transfer_correctness") == 1 / 2  # b (wrongly transferred) and c
    assert m.get("containment") == 2 / 4
    assert m.get("mean_turns") == 2.0 and m.get("policy_violations") == 0.0
    per = by_intent(verdicts)
    assert set(per) == {"order_status", "bill_payment", "(none)"}
    assert per["order_status"].get("pass_rate") == 0.5 and per["order_status"].get("transfer_correctness") == 0.0
    assert per["(none)"].get("transfer_correctness") is None  # nothing to measure is not 100 %


def test_gate_thresholds_and_baseline(demo_map: IntentMap) -> None:
    v = judge(sc("a", outcome="resolved"), tr("a", "resolved", turns=4), demo_map)
    m = compute([v])
    gate = GateSpec(thresholds={"pass_rate": Bound(min=1.0), "mean_turns": Bound(max=3),
                                "transfer_correctness": Bound(min=1.0)}, tolerance=0.05)
    failures = [str(f) for f in check_thresholds("s", gate, m)]
    assert failures == ["s: mean_turns 4.000 > max 3", "s: transfer_correctness was not measured (nothing to score)"]
    assert check_baseline("s", 0.05, m, {"pass_rate": 1.0, "mean_turns": 3.9, "containment": None}) == []
    worse = [str(f) for f in check_baseline("s", 0.05, m, {"pass_rate": 1.0, "mean_turns": 3.5,
                                                            "policy_violations": -1.0})]
    assert worse[0].startswith("s: mean_turns regressed: 4.000 vs baseline 3.500")
    assert worse[1].startswith("s: policy_violations regressed")
