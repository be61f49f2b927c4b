"""KPIs computed from hand-built records whose answers are known; the report command on a real DB."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.records.kpi import CostInputs, SlaTargets, compute_kpis, percentile
from ari_agent.records.model import CallRecord, ToolCallRecord
from ari_agent.records.store import CallRecordStore, add_all

D = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # window: March 2nd to 9th
END = D + dt.timedelta(days=7)


def call(call_id: str, day: float, minutes: float, outcome: str, intents: list[str], **kw: object) -> CallRecord:
    start = D + dt.timedelta(days=day)
    return CallRecord(call_id=call_id, started_at=start, ended_at=start + dt.timedelta(minutes=minutes),
                      outcome=outcome, intents=intents, **kw)  # type: ignore[arg-type]


RECORDS = [
    call("before", -2, 1, "transferred", ["order_status"], transfer_reason="tool_error"),  # context only
    call("a", 0, 2, "resolved", ["order_status"], stage_ms={"stt": [10.0, 20.0, 30.0, 40.0]},
         tool_calls=[ToolCallRecord("lookup_order", True), ToolCallRecord("lookup_order", False, "backend_error")]),
    call("b", 1, 4, "transferred", ["account_unlock"], transfer_queue="support", transfer_reason="verification_failed",
         transfer_correct=True, human_handle_s=300.0, stage_ms={"stt": [50.0]}),
    call("c", 1.5, 1, "transferred", ["order_status"], transfer_reason="tool_error", repeat_of="before",
         transfer_correct=False, policy_events=["unverified: lookup before verify", "disclosure: said x"]),
    call("d", 2, 3, "resolved", ["order_status"], repeat_of="a", tool_calls=[ToolCallRecord("verify_identity", True)]),
    call("e", 3, 2, "caller_hung_up", [], policy_events=["unverified: again"]),
    call("after", 9, 1, "resolved", ["faq_hours"], repeat_of="e"),  # after the window: repeats e
]


def test_business_view_has_the_known_answers() -> None:
    costs = CostInputs(telephony_per_min=0.01, compute_per_min=0.01, human_per_min=1.0, human_minutes_assumed=6,
                       baseline_minutes=5)
    k = compute_kpis(RECORDS, D, END, costs)
    assert k.calls == 5
    assert k.containment == pytest.approx(3 / 5)
    assert k.fcr == pytest.approx(3 / 5)  # a (repeated by d) and e (repeated by "after") are not FCR
    assert k.repeat_call_rate == pytest.approx(2 / 5)  # c, d
    assert k.aht_s == pytest.approx(60 * (2 + 4 + 1 + 3 + 2) / 5)
    assert k.aht_automated_s == pytest.approx(60 * (2 + 3 + 2) / 3)
    assert k.aht_transferred_s == pytest.approx(60 * (4 + 1) / 2)
    assert k.aht_human_s == pytest.approx(300.0)
    assert k.transfer_rate == pytest.approx(2 / 5)
    assert k.transfer_rate_by_reason == pytest.approx({"tool_error": 0.2, "verification_failed": 0.2})
    assert k.transfer_labelled == 2 and k.transfer_correctness == pytest.approx(0.5)
    # cost: 12 call minutes x 0.02 + (5 reported + 6 assumed) person minutes x 1.0 = 11.24
    assert k.total_cost == pytest.approx(12 * 0.02 + 11.0)
    assert k.resolved_calls == 3  # b, c, d: first contact and not abandoned
    assert k.cost_per_resolved_call == pytest.approx(11.24 / 3)
    assert k.baseline_cost == pytest.approx(5 * 5 * 1.01)
    assert k.savings_vs_baseline == pytest.approx(25.25 - 11.24)
    assert k.per_intent["order_status"] == pytest.approx({"calls": 3, "containment": 2 / 3, "fcr": 2 / 3})


def test_engineering_view_has_the_known_answers() -> None:
    k = compute_kpis(RECORDS, D, END)
    assert k.latency_ms["stt"] == {"p50": 30.0, "p95": 50.0, "n": 5.0}
    assert k.tool_calls == 3 and k.tool_failure_rate == pytest.approx(1 / 3)
    assert k.tool_failure_by_tool == pytest.approx({"lookup_order": 0.5, "verify_identity": 0.0})
    assert k.transfer_loops == 1  # c repeats "before", and both were transferred
    assert k.policy_alerts == {"disclosure": 1, "unverified": 2}


def test_an_empty_window_measures_nothing() -> None:
    k = compute_kpis(RECORDS, D + dt.timedelta(days=30), D + dt.timedelta(days=31))
    assert k.calls == 0 and k.containment is None and k.fcr is None and k.cost_per_resolved_call is None


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5.0], 95) == 5.0
    assert percentile(list(map(float, range(1, 101))), 95) == 95.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def stored(tmp_path: Path, records: list[CallRecord]) -> str:
    """The URL of a new SQLite records database holding ``records``."""
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    store = CallRecordStore(url)
    add_all(store, records)
    store.close()
    return url


def test_kpi_report_reads_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = stored(tmp_path, RECORDS)
    argv = ["kpi", "report", "--db", url, "--from", "2026-03-02", "--to", "2026-03-09", "--human-per-min", "1",
            "--telephony-per-min", "0.01", "--compute-per-min", "0.01", "--baseline-minutes", "5"]
    assert main(argv) == 0
    md = capsys.readouterr().out
    assert "5 calls." in md and "| containment | 60.0% |" in md and "| transfer loops | 1 |" in md
    assert "| savings vs baseline | 14.01 USD |" in md
    assert main([*argv, "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    got = {(r["metric"], r["key"]): r["value"] for r in table}
    assert got[("first_contact_resolution", "")] == "0.6000"
    assert got[("transfer_rate_by_reason", "tool_error")] == "0.2000"
    assert got[("latency_p95_ms", "stt")] == "50.0000"


def test_kpi_report_refuses_bad_arguments_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    assert main(["kpi", "report", "--db", url, "--from", "2026-03-09", "--to", "2026-03-02"]) == 2
    assert "--to (2026-03-02) must be after --from (2026-03-09)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["kpi", "report", "--db", url, "--from", "March", "--to", "2026-03-02"])
    assert "not a date (YYYY-MM-DD): 'March'" in capsys.readouterr().err


# The service level and recognition figures: answers known by hand (targets: agent 3 s, queues 20 s, billing 30 s).
SLA = SlaTargets(answer_s=3.0, queue_answer_s=20.0, per_queue={"billing": 30.0})
SLA_RECORDS = [
    call("s1", 0, 2, "resolved", ["order_status"], answer_s=1.2, heard=["where is my order", "uh", "yes"],
         no_match_turns=1),
    call("s2", 0.5, 2, "resolved", ["order_status"], answer_s=4.0, heard=["mumble"], no_match_turns=1),
    call("s3", 1, 5, "transferred", ["account_unlock"], transfer_queue="support", answer_s=0.8,
         human_answered=True, human_wait_s=15.0, heard=["locked out"]),
    call("s4", 1.5, 5, "transferred", ["bill_payment"], transfer_queue="billing", answer_s=1.0,
         human_answered=True, human_wait_s=25.0, heard=[]),
    call("s5", 2, 3, "transferred", ["account_unlock"], transfer_queue="support", answer_s=1.0,
         human_answered=False, human_wait_s=40.0),  # the caller gave up in the queue
    call("s6", 2.5, 3, "transferred", ["account_unlock"], transfer_queue="support", answer_s=None),  # unreported
    call("s7", 3, 1, "resolved", ["faq_hours"], no_match_turns=2),  # no recognition data (text eval, schema 1)
]


def test_sla_adherence_has_the_known_answers() -> None:
    k = compute_kpis(SLA_RECORDS, D, END, sla=SLA)
    assert k.sla_agent_measured == 5 and k.sla_agent_answer == pytest.approx(4 / 5)  # s2 took 4 s
    assert k.sla_queue_reported == 3 and k.sla_queue_answer == pytest.approx(2 / 3)  # s5 abandoned
    assert k.sla_queue_by_queue == pytest.approx({"billing": 1.0, "support": 0.5})
    assert k.sla_calls_measured == 5 and k.sla_adherence == pytest.approx(3 / 5)  # s1, s3, s4 met every target
    strict = compute_kpis(SLA_RECORDS, D, END, sla=SlaTargets(answer_s=5.0, queue_answer_s=20.0))
    assert strict.sla_queue_answer == pytest.approx(1 / 3) and strict.sla_agent_answer == 1.0  # billing at 20 s
    assert strict.sla_adherence == pytest.approx(3 / 5)  # s1 s2 s3
    assert compute_kpis(RECORDS, D, END).sla_adherence is None  # nothing measured: no figure, not 0 %


def test_recognition_no_match_rate_counts_heard_utterances_only() -> None:
    k = compute_kpis(SLA_RECORDS, D, END, sla=SLA)
    assert (k.no_match_turns, k.heard_turns) == (2, 5) and k.no_match_rate == pytest.approx(2 / 5)  # s7 not counted
    assert compute_kpis(SLA_RECORDS, D, END, intent="order_status").no_match_rate == pytest.approx(2 / 4)
    assert compute_kpis(RECORDS, D, END).no_match_rate is None


def test_kpi_report_gives_the_sla_and_no_match_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = stored(tmp_path, SLA_RECORDS)
    argv = ["kpi", "report", "--db", url, "--from", "2026-03-02", "--to", "2026-03-09", "--answer-target-s", "3",
            "--queue-answer-target-s", "20", "--queue-target", "billing=30"]
    assert main(argv) == 0
    md = capsys.readouterr().out
    assert "| SLA adherence (calls meeting every target; measured: 5) | 60.0% |" in md
    assert "| SLA: agent's first prompt within 3 s (measured: 5) | 80.0% |" in md
    assert "| SLA: a person answered a transfer within target (20 s, billing 30 s; reported: 3) | 66.7% |" in md
    assert "| SLA: a person answered within target: support | 50.0% |" in md
    assert "| recognition no-match rate (2 of 5 utterances) | 40.0% |" in md
    assert main([*argv, "--format", "csv"]) == 0
    got = {(r["view"], r["metric"], r["key"]): r["value"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert got[("business", "sla_adherence", "")] == "0.6000"
    assert got[("business", "sla_queue_answer_by_queue", "billing")] == "1.0000"
    assert got[("engineering", "no_match_rate", "")] == "0.4000"
    assert main(argv[:-2]) == 0  # billing's own target gone: its 25 s wait misses the 20 s one
    assert "| SLA adherence (calls meeting every target; measured: 5) | 40.0% |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*argv, "--queue-target", "billing"])
    assert "expected QUEUE=SECONDS, got 'billing'" in capsys.readouterr().err
