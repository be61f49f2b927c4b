"""The KPI report as Markdown (the quarterly scorecard) or CSV (one ``view,metric,key,value`` row
per figure, for a spreadsheet). Pure text formatting of ``records.kpi.Kpis``."""

from __future__ import annotations

import csv
import io

from ari_agent.records.kpi import CostInputs, Kpis, SlaTargets


def rows(k: Kpis, costs: CostInputs) -> list[tuple[str, str, str, str]]:
    """(view, metric, key, value) for every figure; value "" when not measured."""
    out: list[tuple[str, str, str, str]] = []

    def add(view: str, metric: str, value: float | int | None, key: str = "") -> None:
        out.append((view, metric, key, "" if value is None else (f"{value:.4f}" if isinstance(value, float)
                                                                  else str(value))))

    add("business", "calls", k.calls)
    add("business", "containment", k.containment)
    add("business", "first_contact_resolution", k.fcr)
    add("business", "aht_s", k.aht_s)
    add("business", "aht_automated_s", k.aht_automated_s)
    add("business", "aht_transferred_s", k.aht_transferred_s)
    add("business", "aht_human_s", k.aht_human_s)
    add("business", "transfer_rate", k.transfer_rate)
    for reason, rate in k.transfer_rate_by_reason.items():
        add("business", "transfer_rate_by_reason", rate, reason)
    add("business", "transfer_correctness", k.transfer_correctness)
    add("business", "transfer_labelled", k.transfer_labelled)
    add("business", "repeat_call_rate", k.repeat_call_rate)
    add("business", "total_cost", k.total_cost, costs.currency)
    add("business", "resolved_calls", k.resolved_calls)
    add("business", "cost_per_resolved_call", k.cost_per_resolved_call, costs.currency)
    add("business", "baseline_cost", k.baseline_cost, costs.currency)
    add("business", "savings_vs_baseline", k.savings_vs_baseline, costs.currency)
    add("business", "sla_adherence", k.sla_adherence)
    add("business", "sla_calls_measured", k.sla_calls_measured)
    add("business", "sla_agent_answer", k.sla_agent_answer)
    add("business", "sla_agent_measured", k.sla_agent_measured)
    add("business", "sla_queue_answer", k.sla_queue_answer)
    add("business", "sla_queue_reported", k.sla_queue_reported)
    for queue, rate in k.sla_queue_by_queue.items():
        add("business", "sla_queue_answer_by_queue", rate, queue)
    for intent, figures in k.per_intent.items():
        for name, value in figures.items():
            add("business", f"intent_{name}", value, intent)
    for stage, latency in k.latency_ms.items():
        add("engineering", "latency_p50_ms", latency["p50"], stage)
        add("engineering", "latency_p95_ms", latency["p95"], stage)
    add("engineering", "tool_calls", k.tool_calls)
    add("engineering", "tool_failure_rate", k.tool_failure_rate)
    for tool, rate in k.tool_failure_by_tool.items():
        add("engineering", "tool_failure_rate_by_tool", rate, tool)
    add("engineering", "transfer_loops", k.transfer_loops)
    for rule, count in k.policy_alerts.items():
        add("engineering", "policy_alerts", count, rule)
    add("engineering", "heard_turns", k.heard_turns)
    add("engineering", "no_match_turns", k.no_match_turns)
    add("engineering", "no_match_rate", k.no_match_rate)
    return out


def to_csv(k: Kpis, costs: CostInputs) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["view", "metric", "key", "value"])
    w.writerows(rows(k, costs))
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None, unit: str = "") -> str:
    return "–" if v is None else f"{v:.2f}{unit}"


def to_markdown(k: Kpis, costs: CostInputs, sla: SlaTargets | None = None) -> str:
    c = costs.currency
    sla = sla or SlaTargets()
    queue_targets = ", ".join([f"{sla.queue_answer_s:g} s"] + [f"{q} {t:g} s" for q, t in sla.per_queue.items()])
    lines = [f"# Call KPIs {k.start:%Y-%m-%d} to {k.end:%Y-%m-%d} (end exclusive)", "",
             f"{k.calls} calls.", "", "## Business view", "", "| KPI | value |", "|---|---|",
             f"| containment | {_pct(k.containment)} |",
             f"| first-contact resolution (no repeat within 7 days) | {_pct(k.fcr)} |",
             f"| average handling time | {_num(k.aht_s, ' s')} |",
             f"| AHT automated / transferred | {_num(k.aht_automated_s, ' s')} / {_num(k.aht_transferred_s, ' s')} |",
             f"| AHT with a person (reported) | {_num(k.aht_human_s, ' s')} |",
             f"| transfer rate | {_pct(k.transfer_rate)} |",
             f"| transfer correctness (labelled: {k.transfer_labelled}) | {_pct(k.transfer_correctness)} |",
             f"| repeat-call rate | {_pct(k.repeat_call_rate)} |",
             f"| total cost | {_num(k.total_cost)} {c} |",
             f"| cost per resolved call ({k.resolved_calls} resolved) | {_num(k.cost_per_resolved_call)} {c} |"]
    if k.baseline_cost is not None:
        lines += [f"| human-only baseline cost | {_num(k.baseline_cost)} {c} |",
                  f"| savings vs baseline | {_num(k.savings_vs_baseline)} {c} |"]
    lines += [f"| SLA adherence (calls meeting every target; measured: {k.sla_calls_measured}) "
              f"| {_pct(k.sla_adherence)} |",
              f"| SLA: agent's first prompt within {sla.answer_s:g} s (measured: {k.sla_agent_measured}) "
              f"| {_pct(k.sla_agent_answer)} |",
              f"| SLA: a person answered a transfer within target ({queue_targets}; reported: "
              f"{k.sla_queue_reported}) | {_pct(k.sla_queue_answer)} |"]
    lines += [f"| SLA: a person answered within target: {q} | {_pct(v)} |" for q, v in k.sla_queue_by_queue.items()]
    lines += ["", "### Transfers by reason", "", "| reason | share of calls |", "|---|---|"]
    lines += [f"| {r} | {_pct(v)} |" for r, v in k.transfer_rate_by_reason.items()] or ["| – | – |"]
    lines += ["", "### Per intent", "", "| intent | calls | containment | FCR |", "|---|---|---|---|"]
    lines += [f"| {i} | {f['calls']} | {_pct(_f(f['containment']))} | {_pct(_f(f['fcr']))} |"
              for i, f in k.per_intent.items()]
    lines += ["", "## Engineering view", "", "| stage | p50 ms | p95 ms | n |", "|---|---|---|---|"]
    lines += [f"| {s} | {f['p50']:.1f} | {f['p95']:.1f} | {int(f['n'])} |" for s, f in k.latency_ms.items()] \
        or ["| – | – | – | – |"]
    lines += ["", "| KPI | value |", "|---|---|", f"| tool calls | {k.tool_calls} |",
              f"| tool failure rate | {_pct(k.tool_failure_rate)} |"]
    lines += [f"| tool failure rate: {t} | {_pct(v)} |" for t, v in k.tool_failure_by_tool.items()]
    lines += [f"| transfer loops | {k.transfer_loops} |",
              f"| recognition no-match rate ({k.no_match_turns} of {k.heard_turns} utterances) "
              f"| {_pct(k.no_match_rate)} |"]
    lines += [f"| policy alerts: {rule} | {n} |" for rule, n in k.policy_alerts.items()] or ["| policy alerts | 0 |"]
    return "\n".join(lines) + "\n"


def _f(v: float | int | None) -> float | None:
    return None if v is None else float(v)
