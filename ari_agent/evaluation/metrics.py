"""The figures of a run, per suite and per intent, from the verdicts. Pure.

- ``pass_rate``: scenarios whose every check held and that broke no policy;
- ``intent_success``: of the scenarios that name intents, those where the intents were recognised
  *and* the call ended as expected (the request was served, or handed to the right place);
- ``intent_recognition``: of those, the intents were recognised (in order);
- ``outcome_accuracy``: the call ended as expected (resolved / transferred / caller hung up);
- ``transfer_correctness``: of the calls that were, or should have been, transferred, those sent
  to the right queue for the right reason;
- ``containment``: calls that ended without a transfer to a person;
- ``policy_violations``: calls that broke at least one policy (judge.py);
- ``mean_turns``: caller turns per call.

A rate with nothing to measure (no transfers expected or made) is ``None``, not 1.0: an empty
denominator proves nothing, and the gate treats it as "not measured".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ari_agent.evaluation.judge import Verdict

NO_INTENT = "(none)"


@dataclass(frozen=True)
class Metrics:
    scenarios: int
    passed: int
    figures: dict[str, float | None]

    def get(self, name: str) -> float | None:
        return self.figures.get(name)


def compute(verdicts: Sequence[Verdict]) -> Metrics:
    n = len(verdicts)
    named = [v for v in verdicts if v.scenario.expect.intents]
    recognised = [v for v in named if _ok(v, "intents")]
    success = [v for v in recognised if _ok(v, "outcome") and _ok(v, "transfer", default=True)]
    transfers = [v for v in verdicts if v.check("transfer") is not None]
    figures: dict[str, float | None] = {
        "pass_rate": _rate(sum(v.passed for v in verdicts), n),
        "intent_success": _rate(len(success), len(named)),
        "intent_recognition": _rate(len(recognised), len(named)),
        "outcome_accuracy": _rate(sum(_ok(v, "outcome") for v in verdicts), n),
        "transfer_correctness": _rate(sum(_ok(v, "transfer") for v in transfers), len(transfers)),
        "containment": _rate(sum(v.trace.outcome != "transferred" for v in verdicts), n),
        "policy_violations": float(sum(bool(v.violations) for v in verdicts)),
        "mean_turns": (sum(v.trace.turns for v in verdicts) / n) if n else None,
    }
    return Metrics(n, sum(v.passed for v in verdicts), figures)


def by_intent(verdicts: Iterable[Verdict]) -> dict[str, Metrics]:
    """Metrics per expected intent (a scenario naming two intents counts for both)."""
    groups: dict[str, list[Verdict]] = {}
    for v in verdicts:
        for name in v.scenario.expect.intents or (NO_INTENT,):
            groups.setdefault(name, []).append(v)
    return {name: compute(vs) for name, vs in sorted(groups.items())}


def _ok(v: Verdict, check: str, *, default: bool = False) -> bool:
    c = v.check(check)
    return default if c is None else c.ok


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None
