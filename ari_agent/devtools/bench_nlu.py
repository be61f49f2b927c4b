"""NLU benchmark: accuracy per kind, out-of-scope hand-off, latency and load time, both paths.

``run_nlu_benchmark(map_path, testset_path)`` returns a JSON-able dict (wired into
``ari-agent bench nlu``); ``python -m ari_agent.devtools.bench_nlu [MAP] [TESTSET]`` prints it.

Test set format (JSON lines): ``{"text": ..., "intent": name | null, "kind": "clean" | "disfluent" |
"asr_garbled" | "multi" | "oos", "also": [names]?}``; ``intent`` is null for out-of-scope items and,
for ``multi`` items, the request spoken first.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ari_agent.conversation.nlu.classifier import COMBINED_PARAMS, HybridIntentClassifier, build_classifier
from ari_agent.conversation.nlu.encoder import EncoderUnavailable, MiniLmEncoder, default_model_dir
from ari_agent.conversation.nlu.interface import IntentClassifier, IntentSpec

PACKAGE_DATA = Path(__file__).resolve().parents[2] / "data"
DEFAULT_MAP = PACKAGE_DATA / "demo-intent-map.yaml"
DEFAULT_TESTSET = Path(__file__).resolve().parents[3] / "tests" / "data" / "nlu" / "demo_testset.jsonl"


@dataclass(frozen=True)
class LabelledUtterance:
    text: str
    intent: str | None
    kind: str
    also: tuple[str, ...] = field(default=())


def load_intent_specs(map_path: Path | str) -> list[IntentSpec]:
    """Intent names, examples and keywords from an intent-map YAML file (other fields ignored)."""
    data = yaml.safe_load(Path(map_path).read_text(encoding="utf-8"))
    specs: list[IntentSpec] = []
    for entry in data.get("intents") or []:
        specs.append(
            IntentSpec(
                name=str(entry["name"]),
                examples=tuple(str(e) for e in entry.get("examples") or ()),
                keywords=tuple(str(k) for k in entry.get("keywords") or ()),
            )
        )
    return specs


def load_testset(path: Path | str) -> list[LabelledUtterance]:
    items: list[LabelledUtterance] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        items.append(LabelledUtterance(raw["text"], raw.get("intent"), raw["kind"], tuple(raw.get("also") or ())))
    return items


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(classifier: IntentClassifier, items: Sequence[LabelledUtterance]) -> dict[str, Any]:
    """Accuracy figures and per-utterance latency of one classifier on a test set."""
    for item in items[:5]:  # warm-up
        classifier.classify(item.text)
    per_kind: dict[str, list[bool]] = defaultdict(list)
    confusions: Counter[tuple[str, str]] = Counter()
    latencies: list[float] = []
    errors: list[dict[str, Any]] = []
    in_scope = oos = false_reject = handed_off = also_hit = also_total = also_spurious = 0
    for item in items:
        start = time.perf_counter()
        result = classifier.classify(item.text)
        latencies.append((time.perf_counter() - start) * 1000.0)
        ok = result.intent == item.intent
        per_kind[item.kind].append(ok)
        if item.intent is None:
            oos += 1
            handed_off += result.intent is None
        else:
            in_scope += 1
            false_reject += result.intent is None
            expected_also = set(item.also)
            also_total += len(expected_also)
            also_hit += len(expected_also & set(result.also_mentioned))
            also_spurious += len(set(result.also_mentioned) - expected_also)
        if not ok:
            confusions[(item.intent or "OOS", result.intent or "OOS")] += 1
            errors.append(
                {
                    "text": item.text,
                    "kind": item.kind,
                    "gold": item.intent,
                    "got": result.intent,
                    "confidence": result.confidence,
                }
            )
    n = len(items)
    correct = sum(sum(v) for v in per_kind.values())
    return {
        "items": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "accuracy_by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(per_kind.items())},
        "in_scope_accuracy": round(sum(sum(v) for k, v in per_kind.items() if k != "oos") / max(in_scope, 1), 4),
        "oos_handed_off_rate": round(handed_off / oos, 4) if oos else None,
        "false_rejection_rate": round(false_reject / in_scope, 4) if in_scope else None,
        "also_mentioned_recall": round(also_hit / also_total, 4) if also_total else None,
        "also_mentioned_spurious": also_spurious,
        "confusion_pairs": [{"gold": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common(12)],
        "latency_ms": {"p50": round(_percentile(latencies, 0.5), 3), "p95": round(_percentile(latencies, 0.95), 3)},
        "errors": errors,
    }


def run_nlu_benchmark(map_path: Path | str = DEFAULT_MAP, testset_path: Path | str = DEFAULT_TESTSET) -> dict[str, Any]:
    """Evaluate the lexical-only and the combined (lexical + embeddings) paths on a test set."""
    specs = load_intent_specs(map_path)
    items = load_testset(testset_path)
    report: dict[str, Any] = {
        "map": str(map_path),
        "testset": str(testset_path),
        "intents": len(specs),
        "items": len(items),
        "items_by_kind": dict(sorted(Counter(i.kind for i in items).items())),
    }
    start = time.perf_counter()
    lexical = build_classifier(specs, embeddings=False)
    lexical_load_s = time.perf_counter() - start
    lexical_report = evaluate(lexical, items)
    lexical_report["load_s"] = round(lexical_load_s, 4)
    report["lexical"] = lexical_report
    model_dir = default_model_dir()
    if model_dir is None:
        report["combined"] = {"skipped": "sentence encoder weights not installed"}
        return report
    try:
        # Cold: a fresh encoder (weights read from disk, nothing memoised), then the classifier
        # built on it (examples and anchors embedded).
        start = time.perf_counter()
        encoder = MiniLmEncoder(model_dir)
        encoder_load_s = time.perf_counter() - start
        combined = HybridIntentClassifier(specs, encoder=encoder, params=COMBINED_PARAMS)
        cold_load_s = time.perf_counter() - start
    except EncoderUnavailable as exc:
        report["combined"] = {"skipped": str(exc)}
        return report
    combined_report = evaluate(combined, items)
    combined_report["load_s"] = round(cold_load_s, 4)
    combined_report["encoder_load_s"] = round(encoder_load_s, 4)
    start = time.perf_counter()
    HybridIntentClassifier(specs, encoder=encoder, params=COMBINED_PARAMS)
    combined_report["rebuild_s_warm_encoder"] = round(time.perf_counter() - start, 4)
    report["combined"] = combined_report
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    map_path = Path(args[0]) if args else DEFAULT_MAP
    testset = Path(args[1]) if len(args) > 1 else DEFAULT_TESTSET
    report = run_nlu_benchmark(map_path, testset)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
