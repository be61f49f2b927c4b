"""The release gate: does a run meet its suite's thresholds, and has it regressed from a baseline?

Pure. A threshold is ``{min: X}`` or ``{max: X}`` on a metric (metrics.py); a metric that was not
measured (``None``) fails a threshold set on it, because a gate that cannot see must not pass. A
baseline is the ``results.json`` of an earlier run: a metric worse than the baseline by more than
the suite's ``tolerance`` fails (``policy_violations`` and ``mean_turns``: lower is better).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ari_agent.evaluation.metrics import Metrics
from ari_agent.evaluation.scenario import HIGHER_IS_BETTER, GateSpec


@dataclass(frozen=True)
class GateFailure:
    suite: str
    metric: str
    detail: str

    def __str__(self) -> str:
        return f"{self.suite}: {self.metric} {self.detail}"


def check_thresholds(suite: str, gate: GateSpec, metrics: Metrics) -> list[GateFailure]:
    out: list[GateFailure] = []
    for name, bound in gate.thresholds.items():
        value = metrics.get(name)
        if value is None:
            out.append(GateFailure(suite, name, "was not measured (nothing to score)"))
        elif bound.min is not None and value < bound.min:
            out.append(GateFailure(suite, name, f"{value:.3f} < min {bound.min:g}"))
        elif bound.max is not None and value > bound.max:
            out.append(GateFailure(suite, name, f"{value:.3f} > max {bound.max:g}"))
    return out


def check_baseline(suite: str, tolerance: float, metrics: Metrics,
                   baseline: Mapping[str, float | None]) -> list[GateFailure]:
    out: list[GateFailure] = []
    for name, before in baseline.items():
        now = metrics.get(name)
        if before is None or now is None:
            continue
        worse = (before - now) if name in HIGHER_IS_BETTER else (now - before)
        # counts (policy_violations) regress by any increase; rates by more than the tolerance
        scale = 1.0 if name in HIGHER_IS_BETTER else max(before, 1.0)
        allowed = 0.0 if name == "policy_violations" else tolerance * scale
        if worse > allowed + 1e-9:
            out.append(GateFailure(suite, name, f"regressed: {now:.3f} vs baseline {before:.3f} "
                                                f"(tolerance {allowed:g})"))
    return out
