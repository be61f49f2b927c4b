"""One evaluation run: suites loaded, every scenario played and judged, figures and gate computed.

``evaluate(paths, ...)`` is what ``ari-agent eval`` calls; the report writers and the gate read
its ``RunResult``. ``results.json`` (``RunResult.to_json``) is also what ``--baseline`` reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.errors import AriAgentError
from ari_agent.evaluation.gate import GateFailure, check_baseline, check_thresholds
from ari_agent.evaluation.judge import Verdict, judge
from ari_agent.evaluation.metrics import Metrics, by_intent, compute
from ari_agent.evaluation.scenario import Suite, load_suite
from ari_agent.evaluation.text_runner import TextModeRunner
from ari_agent.records.model import CallerHasher, CallRecord, ToolCallRecord, version_hash

if TYPE_CHECKING:
    from ari_agent.evaluation.speech_figures import SpeechFigures

# Evaluation records use their own salt: their caller ids are test numbers, never real callers'.
EVAL_SALT = "ari-agent-evaluation"


@dataclass
class SuiteResult:
    suite: Suite
    map_path: Path
    config_version: str
    verdicts: list[Verdict]
    metrics: Metrics
    per_intent: dict[str, Metrics]
    gate_failures: list[GateFailure] = field(default_factory=list)
    speech: SpeechFigures | None = None  # audio mode: latency, WER, per voice
    text_metrics: Metrics | None = None  # audio mode: the same scenarios' text-mode figures (speech's cost)


@dataclass
class RunResult:
    mode: str
    started_at: dt.datetime
    suites: list[SuiteResult]
    classifier: str
    kill_switch: bool = False

    @property
    def gate_failures(self) -> list[GateFailure]:
        return [f for s in self.suites if s.suite.spec.gated for f in s.gate_failures]

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "started_at": self.started_at.isoformat(), "classifier": self.classifier,
            "kill_switch": self.kill_switch,
            "suites": {s.suite.name: {
                "file": str(s.suite.path), "map": str(s.map_path), "config_version": s.config_version,
                "gated": s.suite.spec.gated, "scenarios": s.metrics.scenarios, "passed": s.metrics.passed,
                "metrics": s.metrics.figures,
                "per_intent": {k: {"scenarios": m.scenarios, **m.figures} for k, m in s.per_intent.items()},
                "gate_failures": [str(f) for f in s.gate_failures],
                "failed_scenarios": {v.scenario.id: v.failures for v in s.verdicts if not v.passed},
                **({"speech": s.speech.to_json()} if s.speech is not None else {}),
                **({"text_mode": {"scenarios": s.text_metrics.scenarios, "passed": s.text_metrics.passed,
                                  "metrics": s.text_metrics.figures}} if s.text_metrics is not None else {}),
            } for s in self.suites},
        }


def load_baseline(path: str | Path) -> dict[str, dict[str, float | None]]:
    """Per suite, the metrics of an earlier run's ``results.json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {name: dict(s["metrics"]) for name, s in data["suites"].items()}
    except OSError as exc:
        raise AriAgentError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AriAgentError(f"{path}: not an ari-agent eval results.json (no suites/<name>/metrics)") from None


ClassifierFactory = Callable[[IntentMap], IntentClassifier]


async def evaluate(
    suite_paths: Sequence[str | Path],
    classifier_for: ClassifierFactory,
    *,
    map_override: Path | None = None,
    force_kill_switch: bool = False,
    baseline: dict[str, dict[str, float | None]] | None = None,
    today: dt.date | None = None,
    on_scenario: Callable[[Suite, Verdict], None] | None = None,
    on_record: Callable[[CallRecord], object] | None = None,
    classifier_name: str = "default",
) -> RunResult:
    suites = [load_suite(p) for p in suite_paths]  # all files checked before anything runs
    maps: dict[Path, tuple[IntentMap, IntentClassifier, str]] = {}
    result = RunResult("text", dt.datetime.now(dt.UTC), [], classifier_name, force_kill_switch)
    hasher = CallerHasher(EVAL_SALT)
    for suite in suites:
        map_path = (map_override or suite.map_path() or DEMO_MAP_PATH).resolve()
        if map_path not in maps:
            intent_map = load_intent_map(map_path)
            maps[map_path] = (intent_map, classifier_for(intent_map), version_hash(map_path.read_bytes()))
        intent_map, classifier, version = maps[map_path]
        check_against_map(suite, intent_map)
        day = today or suite.spec.today or dt.date.today()
        runner = TextModeRunner(intent_map, classifier, today=day, force_kill_switch=force_kill_switch)
        verdicts: list[Verdict] = []
        for sc in suite.spec.scenarios:
            trace = await runner.run(sc)
            v = judge(sc, trace, intent_map)
            verdicts.append(v)
            if on_scenario is not None:
                on_scenario(suite, v)
            if on_record is not None:
                on_record(to_record(v, hasher, version, run_id=result.started_at.strftime("%Y%m%dT%H%M%S%f")))
        result.suites.append(suite_result(suite, map_path, version, verdicts, baseline))
    return result


def suite_result(suite: Suite, map_path: Path, version: str, verdicts: list[Verdict],
                 baseline: dict[str, dict[str, float | None]] | None) -> SuiteResult:
    """A suite's figures and gate verdict from its scenarios' verdicts (either mode)."""
    metrics = compute(verdicts)
    sr = SuiteResult(suite, map_path, version, verdicts, metrics, by_intent(verdicts))
    sr.gate_failures = check_thresholds(suite.name, suite.spec.gate, metrics)
    if baseline is not None and suite.name in baseline:
        sr.gate_failures += check_baseline(suite.name, suite.spec.gate.tolerance, metrics, baseline[suite.name])
    return sr


def check_against_map(suite: Suite, intent_map: IntentMap) -> None:
    """Scenario expectations that name intents, queues or tools the map does not have are typos."""
    intents = {i.name for i in intent_map.intents}
    queues = set(intent_map.spec.queues)
    tools = set(intent_map.tools)
    for i, sc in enumerate(suite.spec.scenarios):
        exp = sc.expect
        for j, name in enumerate(exp.intents):
            if name not in intents:
                raise suite.error(("scenarios", i, "expect", "intents", j),
                                  f"no intent '{name}' in {intent_map.source}")
        if exp.queue is not None and exp.queue not in queues:
            raise suite.error(("scenarios", i, "expect", "queue"), f"no queue '{exp.queue}' in {intent_map.source}")
        for key in ("tools", "forbidden_tools"):
            for j, name in enumerate(getattr(exp, key)):
                if name not in tools:
                    raise suite.error(("scenarios", i, "expect", key, j), f"no tool '{name}' in {intent_map.source}")


def to_record(v: Verdict, hasher: CallerHasher, config_version: str, *, run_id: str) -> CallRecord:
    """The call record of one evaluated call (``source: eval``; the transfer labelled by the scenario)."""
    t = v.trace
    transfer = v.check("transfer")
    return CallRecord(
        call_id=f"eval-{run_id}-{t.scenario_id}", started_at=t.started_at, ended_at=t.ended_at,
        caller_hash=hasher.hash(v.scenario.caller_id), intents=list(dict.fromkeys(t.intents)),
        outcome=t.outcome if t.outcome in ("resolved", "transferred", "caller_hung_up") else "open",
        transfer_queue=t.queue, transfer_reason=t.reason,
        transfer_correct=transfer.ok if transfer is not None and t.outcome == "transferred" else None,
        turns=t.turns, stage_ms=t.stage_ms,
        tool_calls=[ToolCallRecord(c.name, c.ok, c.error, round(c.ms, 3)) for c in t.tools],
        policy_events=list(v.violations), config_version=config_version, source="eval",
    )
