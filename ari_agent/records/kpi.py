"""KPIs from call records: the business view and the engineering view. Pure functions, no I/O.

``compute_kpis(records, start, end, costs)`` scores the calls that started in ``[start, end)``;
``records`` may also hold calls from the 7 days either side (the store's ``kpi_window`` fetches
them), because whether a call was resolved at first contact depends on calls after it.

Definitions (docs/evaluation.md has them too):

- containment: calls that ended without a transfer to a person, of all calls;
- first-contact resolution (FCR): calls that no later call repeated (same hashed caller, a same
  intent, within 7 days: ``CallRecord.repeat_of``), of all calls;
- average handling time: call duration; automated (not transferred) apart from transferred, and for
  transferred calls the time with a person where the ACD reported it (``human_handle_s``);
- transfer rate by reason: transferred calls per reason, of all calls;
- transfer correctness: of the transferred calls someone labelled (evaluation, QA), those right;
- repeat-call rate: calls that repeat an earlier one, of all calls;
- cost per resolved call: telephony + compute per minute of every call, plus a person's time per
  minute on transferred calls (reported, else the configured assumption), over the calls resolved
  at first contact (FCR and not abandoned); against a human-only baseline when one is configured;
- SLA adherence (``SlaTargets``, set like the cost inputs): of the calls with at least one measured
  target, those that met every target that applies to them. Two targets:
  - the agent's answer: its first prompt began within ``answer_s`` of the call reaching the agent
    (``CallRecord.answer_s``; live calls);
  - a person's answer after a transfer: a person answered within the queue's target
    (``queue_answer_s``, or ``per_queue[queue]``), as the ACD reported it (``human_answered``,
    ``human_wait_s``; ``records.acd``); a caller who gave up in the queue missed it; transfers the
    ACD reported nothing about are not counted either way (``sla_queue_reported`` says how many were);
  each is also given on its own (``sla_agent_answer``, ``sla_queue_answer``, per queue);
- engineering: latency p50/p95 per stage (nearest rank), tool failure rate (overall, per tool),
  transfer loops (a transferred call repeating a call that was also transferred), policy alerts
  per rule, recognition no-match rate: caller utterances the agent did not understand
  (``no_match_turns``), of the utterances it heard (``heard``, schema 2 on; records without them,
  such as text-mode evaluations and calls from before schema 2, count in neither).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ari_agent.records.model import CallRecord


@dataclass(frozen=True)
class CostInputs:
    telephony_per_min: float = 0.0
    compute_per_min: float = 0.0
    human_per_min: float = 0.0
    human_minutes_assumed: float = 6.0  # a person's time on a transferred call when the ACD reports none
    baseline_minutes: float | None = None  # human-only operation: minutes of a person per call
    currency: str = "USD"


@dataclass(frozen=True)
class SlaTargets:
    answer_s: float = 3.0  # the agent's first prompt began within this many seconds of the call's arrival
    queue_answer_s: float = 20.0  # a person answered a transferred call within this (the classic 80/20's 20 s)
    per_queue: Mapping[str, float] = field(default_factory=dict)  # queue -> its own answer target

    def queue_target_s(self, queue: str | None) -> float:
        return self.per_queue.get(queue or "", self.queue_answer_s)


@dataclass
class Kpis:
    start: dt.datetime
    end: dt.datetime
    calls: int
    # business
    containment: float | None = None
    fcr: float | None = None
    aht_s: float | None = None
    aht_automated_s: float | None = None
    aht_transferred_s: float | None = None
    aht_human_s: float | None = None
    transfer_rate: float | None = None
    transfer_rate_by_reason: dict[str, float] = field(default_factory=dict)
    transfer_correctness: float | None = None
    transfer_labelled: int = 0
    repeat_call_rate: float | None = None
    total_cost: float = 0.0
    resolved_calls: int = 0
    cost_per_resolved_call: float | None = None
    baseline_cost: float | None = None
    savings_vs_baseline: float | None = None
    sla_adherence: float | None = None
    sla_calls_measured: int = 0
    sla_agent_answer: float | None = None
    sla_agent_measured: int = 0
    sla_queue_answer: float | None = None
    sla_queue_reported: int = 0
    sla_queue_by_queue: dict[str, float] = field(default_factory=dict)
    per_intent: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    # engineering
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> {p50, p95, n}
    tool_calls: int = 0
    tool_failure_rate: float | None = None
    tool_failure_by_tool: dict[str, float] = field(default_factory=dict)
    transfer_loops: int = 0
    policy_alerts: dict[str, int] = field(default_factory=dict)
    heard_turns: int = 0
    no_match_turns: int = 0
    no_match_rate: float | None = None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def compute_kpis(records: Sequence[CallRecord], start: dt.datetime, end: dt.datetime,
                 costs: CostInputs = CostInputs(), *, intent: str | None = None,
                 sla: SlaTargets | None = None) -> Kpis:
    """The KPIs of the calls that started in [start, end) (about ``intent``, when given)."""
    calls = [r for r in records if start <= r.started_at < end and (intent is None or intent in r.intents)]
    by_id = {r.call_id: r for r in records}
    repeated = {r.repeat_of for r in records if r.repeat_of is not None}
    k = Kpis(start, end, len(calls))
    n = len(calls)
    if n == 0:
        return k
    transferred = [r for r in calls if r.outcome == "transferred"]
    contained = [r for r in calls if r.outcome != "transferred"]
    k.containment = len(contained) / n
    first_contact = [r for r in calls if r.call_id not in repeated]
    k.fcr = len(first_contact) / n
    k.aht_s = _mean([d for r in calls if (d := r.duration_s) is not None])
    k.aht_automated_s = _mean([d for r in contained if (d := r.duration_s) is not None])
    k.aht_transferred_s = _mean([d for r in transferred if (d := r.duration_s) is not None])
    k.aht_human_s = _mean([r.human_handle_s for r in transferred if r.human_handle_s is not None])
    k.transfer_rate = len(transferred) / n
    reasons = Counter(r.transfer_reason or "unknown" for r in transferred)
    k.transfer_rate_by_reason = {reason: c / n for reason, c in sorted(reasons.items())}
    labelled = [r for r in transferred if r.transfer_correct is not None]
    k.transfer_labelled = len(labelled)
    k.transfer_correctness = _rate(sum(bool(r.transfer_correct) for r in labelled), len(labelled))
    k.repeat_call_rate = sum(r.repeat_of is not None for r in calls) / n

    minutes = sum((r.duration_s or 0.0) for r in calls) / 60
    human_minutes = sum((r.human_handle_s / 60 if r.human_handle_s is not None else costs.human_minutes_assumed)
                        for r in transferred)
    k.total_cost = minutes * (costs.telephony_per_min + costs.compute_per_min) + human_minutes * costs.human_per_min
    k.resolved_calls = sum(r.outcome in ("resolved", "transferred") for r in first_contact)
    k.cost_per_resolved_call = k.total_cost / k.resolved_calls if k.resolved_calls else None
    if costs.baseline_minutes is not None:
        k.baseline_cost = n * costs.baseline_minutes * (costs.human_per_min + costs.telephony_per_min)
        k.savings_vs_baseline = k.baseline_cost - k.total_cost
    _service_level(k, calls, sla or SlaTargets())

    intents: dict[str, list[CallRecord]] = {}
    for r in calls:
        for name in dict.fromkeys(r.intents or ["(none)"]):
            intents.setdefault(name, []).append(r)
    k.per_intent = {name: {"calls": len(rs), "containment": sum(r.outcome != "transferred" for r in rs) / len(rs),
                           "fcr": sum(r.call_id not in repeated for r in rs) / len(rs)}
                    for name, rs in sorted(intents.items())}

    stages: dict[str, list[float]] = {}
    for r in calls:
        for stage, values in r.stage_ms.items():
            stages.setdefault(stage, []).extend(values)
    k.latency_ms = {s: {"p50": percentile(v, 50), "p95": percentile(v, 95), "n": float(len(v))}
                    for s, v in sorted(stages.items()) if v}
    tools = [t for r in calls for t in r.tool_calls]
    k.tool_calls = len(tools)
    k.tool_failure_rate = _rate(sum(not t.ok for t in tools), len(tools))
    per_tool: dict[str, list[bool]] = {}
    for t in tools:
        per_tool.setdefault(t.name, []).append(t.ok)
    k.tool_failure_by_tool = {name: oks.count(False) / len(oks) for name, oks in sorted(per_tool.items())}
    k.transfer_loops = sum(1 for r in transferred if r.repeat_of is not None
                           and (earlier := by_id.get(r.repeat_of)) is not None and earlier.outcome == "transferred")
    k.policy_alerts = dict(sorted(Counter(e.split(":", 1)[0].strip() for r in calls for e in r.policy_events).items()))
    k.heard_turns = sum(len(r.heard) for r in calls)
    k.no_match_turns = sum(min(r.no_match_turns, len(r.heard)) for r in calls)
    k.no_match_rate = _rate(k.no_match_turns, k.heard_turns)
    return k


def agent_answer_met(r: CallRecord, sla: SlaTargets) -> bool | None:
    """Whether the agent's first prompt began within the target; None when the record has no answer time."""
    return None if r.answer_s is None else r.answer_s <= sla.answer_s


def queue_answer_met(r: CallRecord, sla: SlaTargets) -> bool | None:
    """Whether a person answered the transferred call within its queue's target; None when not a transfer
    or the ACD reported nothing."""
    if r.outcome != "transferred" or r.human_answered is None:
        return None
    return r.human_answered and r.human_wait_s is not None and r.human_wait_s <= sla.queue_target_s(r.transfer_queue)


def _service_level(k: Kpis, calls: Sequence[CallRecord], sla: SlaTargets) -> None:
    agent = [m for r in calls if (m := agent_answer_met(r, sla)) is not None]
    k.sla_agent_measured = len(agent)
    k.sla_agent_answer = _rate(sum(agent), len(agent))
    queued = [(r.transfer_queue or "unknown", m) for r in calls if (m := queue_answer_met(r, sla)) is not None]
    k.sla_queue_reported = len(queued)
    k.sla_queue_answer = _rate(sum(m for _, m in queued), len(queued))
    per_queue: dict[str, list[bool]] = {}
    for queue, met in queued:
        per_queue.setdefault(queue, []).append(met)
    k.sla_queue_by_queue = {q: sum(ms) / len(ms) for q, ms in sorted(per_queue.items())}
    verdicts = [[m for m in (agent_answer_met(r, sla), queue_answer_met(r, sla)) if m is not None] for r in calls]
    measured = [all(v) for v in verdicts if v]
    k.sla_calls_measured = len(measured)
    k.sla_adherence = _rate(sum(measured), len(measured))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None
