"""NLU benchmark: accuracy per kind, out-of-scope hand-off, latency and load time, both paths.

``run_nlu_benchmark(map_path, testset_path)`` returns a JSON-able dict (wired into
``ari-agent bench nlu``); ``python -m ari_agent.devtools.bench_nlu [MAP] [TESTSET]`` prints it.

Test set format (JSON lines): ``{"text": ..., "intent": name | null, "kind": "clean" | "disfluent" |
"asr_garbled" | "multi" | "oos", "also": [names]?}``; ``intent`` is null for out-of-scope items and,
for ``multi`` items, the request spoken first.

``scaling_report`` (``ari-agent bench nlu --map FILE --test FILE``) adds, for any map: the plain
embedding + logistic-regression baseline in the same run, accuracy against the number of intents
(random subsets, fixed seed) and examples per intent (the first k), and engine CPU per turn with a
classifier of the demo intents plus the map's intents, padded to ``--engine-intents`` intents.
The map may be a full intent map or an NLU-only YAML: ``intents: [{name, examples, keywords}]``.
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
from ari_agent.conversation.nlu.interface import Classification, IntentClassifier, IntentSpec

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"
DEFAULT_MAP = PACKAGE_DATA / "demo-intent-map.yaml"
NLU_DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "nlu"
DEFAULT_TESTSET = NLU_DATA / "demo_testset.jsonl"
CONTACT_CENTRE_MAP = NLU_DATA / "contact_centre_map.yaml"
CONTACT_CENTRE_TESTSET = NLU_DATA / "contact_centre_testset.jsonl"


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


# ---------------------------------------------------------------------- scaling to many intents


def _in_scope_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": report["accuracy"],
        "in_scope_accuracy": report["in_scope_accuracy"],
        "oos_handed_off_rate": report["oos_handed_off_rate"],
        "in_scope_wrongly_rejected": report["false_rejection_rate"],
    }


class EmbeddingLogisticBaseline:
    """The reference point: MiniLM embeddings + multinomial logistic regression on the examples.

    Out of scope when the top probability is under a threshold set by 3-fold cross-validation on
    the training examples: the 5th percentile of held-out top probabilities (95 % kept).
    """

    def __init__(self, specs: Sequence[IntentSpec], encoder: MiniLmEncoder) -> None:
        import numpy as np

        from ari_agent.conversation.nlu.head import HEAD_L2, HEAD_STEPS, fit_softmax
        from ari_agent.conversation.nlu.normalise import normalise_transcript

        self.names = tuple(s.name for s in specs)
        self.encoder = encoder
        self._norm = normalise_transcript
        texts = [normalise_transcript(e) for s in specs for e in s.examples]
        owner = np.array([i for i, s in enumerate(specs) for _ in s.examples], dtype=np.int64)
        x = encoder.encode(texts)
        position = np.zeros(len(owner), dtype=np.int64)
        for k in range(len(specs)):
            idx = np.flatnonzero(owner == k)
            position[idx] = np.arange(len(idx))
        held_top: list[float] = []
        for f in range(3):
            held = position % 3 == f
            if held.any() and not held.all():
                head = fit_softmax(x[~held], owner[~held], len(specs), l2=HEAD_L2, steps=HEAD_STEPS)
                held_top += [float(v) for v in head.probs(x[held]).max(axis=1)]
        self.threshold = float(np.percentile(held_top, 5)) if held_top else 0.0
        self.head = fit_softmax(x, owner, len(specs), l2=HEAD_L2, steps=HEAD_STEPS)

    def classify(self, text: str) -> Classification:
        norm = self._norm(text)
        if not norm:
            return Classification(None, 0.0, ())
        probs = self.head.probs(self.encoder.encode([norm])[0])
        best = int(probs.argmax())
        ranked = tuple((self.names[i], float(probs[i])) for i in probs.argsort()[::-1])
        intent = self.names[best] if probs[best] >= self.threshold else None
        return Classification(intent, float(probs[best]), ranked)


def _argmax_accuracy(classifier: IntentClassifier, items: Sequence[LabelledUtterance]) -> float:
    """In-scope accuracy of the best-ranked intent, rejection off."""
    scored = [i for i in items if i.intent is not None]
    hits = sum(r[0][0] == i.intent for i in scored if i.text.strip() and (r := classifier.classify(i.text).ranked))
    return round(hits / max(len(scored), 1), 4)


def _padded_specs(specs: Sequence[IntentSpec], target: int) -> list[IntentSpec]:
    """``specs`` extended to ``target`` intents by reworded copies (timing only, not accuracy)."""
    out = list(specs)
    round_no = 0
    while len(out) < target and specs:
        round_no += 1
        for spec in specs:
            if len(out) >= target:
                break
            prefix = ("well", "right so", "okay then", "listen")[round_no % 4]
            out.append(IntentSpec(f"{spec.name}__copy{round_no}", tuple(f"{prefix} {e}" for e in spec.examples),
                                  spec.keywords))
    return out


def scaling_report(
    map_path: Path | str,
    testset_path: Path | str,
    *,
    intent_counts: Sequence[int] = (10, 30, 60),
    example_counts: Sequence[int] = (3, 5, 10),
    engine_intents: int = 150,
    engine_turns: int = 300,
    seed: int = 7,
) -> dict[str, Any]:
    """Accuracy, out-of-scope hand-off and CPU per turn of the classifier on one map, with the
    embedding + logistic-regression baseline, and how both move with intents and examples."""
    import random

    from ari_agent.conversation.nlu.encoder import load_encoder

    specs = load_intent_specs(map_path)
    items = load_testset(testset_path)
    try:
        encoder = load_encoder()
    except EncoderUnavailable as exc:
        return {"skipped": str(exc)}
    kinds = dict(sorted(Counter(i.kind for i in items).items()))
    report: dict[str, Any] = {"map": str(map_path), "testset": str(testset_path), "intents": len(specs),
                              "items": len(items), "items_by_kind": kinds}
    start = time.perf_counter()
    full = build_classifier(specs, embeddings=True)
    report["build_s"] = round(time.perf_counter() - start, 2)
    cal = full.calibration
    report["classifier"] = {
        "head": "softmax" if full.head is not None else "similarity",
        "head_threshold": full.head_threshold if full.head is not None else None,
        "calibration": None if cal is None else {
            "cv_accuracy_head": round(cal.cv_accuracy_head, 4),
            "cv_accuracy_similarity": round(cal.cv_accuracy_similarity, 4),
            "cv_anchor_rejection": round(cal.cv_anchor_rejection, 4),
            "threshold": cal.threshold,
        },
    }
    full_eval = evaluate(full, items)  # timed: nothing memoised
    report["classifier"].update(_in_scope_summary(full_eval))
    report["classifier"]["accuracy_by_kind"] = full_eval["accuracy_by_kind"]
    report["classifier"]["latency_ms"] = full_eval["latency_ms"]
    report["classifier"]["confusion_pairs"] = full_eval["confusion_pairs"][:8]
    baseline = EmbeddingLogisticBaseline(specs, encoder)
    base_eval = evaluate(baseline, items)
    report["baseline_embedding_lr"] = {**_in_scope_summary(base_eval), "threshold": round(baseline.threshold, 4),
                                       "in_scope_accuracy_no_rejection": _argmax_accuracy(baseline, items)}

    def subset_figures(sub_specs: list[IntentSpec]) -> dict[str, Any]:
        names = {s.name for s in sub_specs}
        sub_items = [i for i in items if i.intent is None or i.intent in names]
        clf = build_classifier(sub_specs, embeddings=True)
        clf.memoise_queries = True  # the same texts again and again: accuracy only, not timed
        ours = evaluate(clf, sub_items)
        base = EmbeddingLogisticBaseline(sub_specs, encoder)
        return {"intents": len(sub_specs), "examples_per_intent": max(len(s.examples) for s in sub_specs),
                "head": "softmax" if clf.head is not None else "similarity",
                "in_scope_accuracy": ours["in_scope_accuracy"], "oos_handed_off_rate": ours["oos_handed_off_rate"],
                "in_scope_wrongly_rejected": ours["false_rejection_rate"],
                "baseline_in_scope_accuracy": base_eval_subset(base, sub_items),
                # Both with rejection off (best-ranked intent): the two hand off very different shares
                # of out-of-scope requests, so this compares the rankings themselves.
                "in_scope_accuracy_no_rejection": _argmax_accuracy(clf, sub_items),
                "baseline_in_scope_accuracy_no_rejection": _argmax_accuracy(base, sub_items)}

    def base_eval_subset(base: EmbeddingLogisticBaseline, sub_items: list[LabelledUtterance]) -> float:
        return float(evaluate(base, sub_items)["in_scope_accuracy"])

    rng = random.Random(seed)
    by_intents = []
    for n in sorted({c for c in intent_counts if c < len(specs)}):
        by_intents.append(subset_figures(sorted(rng.sample(list(specs), n), key=lambda s: s.name)))
    by_intents.append({"intents": len(specs), "in_scope_accuracy": report["classifier"]["in_scope_accuracy"],
                       "oos_handed_off_rate": report["classifier"]["oos_handed_off_rate"],
                       "in_scope_wrongly_rejected": report["classifier"]["in_scope_wrongly_rejected"],
                       "baseline_in_scope_accuracy": report["baseline_embedding_lr"]["in_scope_accuracy"]})
    report["accuracy_vs_intents"] = by_intents
    by_examples = []
    for k in sorted(set(example_counts)):
        sub = [IntentSpec(s.name, s.examples[:k], s.keywords) for s in specs]
        by_examples.append(subset_figures(sub))
    report["accuracy_vs_examples_per_intent"] = by_examples
    report["engine_turn"] = engine_cpu_with_map(specs, engine_intents, engine_turns)
    report["classify_cpu_ms"] = classify_cpu(specs, items, engine_intents)
    return report


def classify_cpu(specs: Sequence[IntentSpec], items: Sequence[LabelledUtterance], n_intents: int,
                 sample: int = 150) -> dict[str, Any]:
    """Process CPU time (not wall time: the machine may be shared) of one ``classify`` call, the
    sentence encoder's forward pass included and nothing memoised, for ``sample`` test utterances,
    at the map's size and padded to ``n_intents`` intents."""
    texts = [i.text for i in items][:: max(1, len(items) // sample)][:sample]
    out: dict[str, Any] = {"utterances": len(texts)}
    for label, sub in (("map", list(specs)), ("padded", _padded_specs(specs, n_intents))):
        clf = build_classifier(sub, embeddings=True)
        for text in texts[:5]:
            clf.classify(text)
        cpu: list[float] = []
        for text in texts:
            start = time.process_time()
            clf.classify(text)
            cpu.append((time.process_time() - start) * 1000.0)
        out[label] = {"intents": len(sub), "p50": round(_percentile(cpu, 0.5), 2),
                      "p95": round(_percentile(cpu, 0.95), 2)}
    return out


def engine_cpu_with_map(specs: Sequence[IntentSpec], engine_intents: int, turns: int) -> dict[str, Any]:
    """CPU per engine turn (demo conversations) with a classifier of the demo intents plus ``specs``,
    padded to ``engine_intents`` intents: classification cost grows with the map, the rest does not."""
    from ari_agent.conversation.intent_map import load_intent_map
    from ari_agent.devtools.bench_engine import engine_turn_benchmark

    demo = load_intent_map()
    demo_specs = demo.nlu_intents()
    taken = {s.name for s in demo_specs}
    extra = [s for s in specs if s.name not in taken]
    all_specs = demo_specs + _padded_specs(extra, max(engine_intents - len(demo_specs), len(extra)))
    start = time.perf_counter()
    classifier = build_classifier(all_specs, embeddings=True)
    built = time.perf_counter() - start
    result = engine_turn_benchmark(turns, intent_map=demo, classifier=classifier)
    # The same conversations with the demo map's own classifier, in the same run (same machine load):
    # what the larger map adds per turn. The sentence encoder's forward pass dominates both.
    reference = engine_turn_benchmark(turns, intent_map=demo, classifier=build_classifier(demo_specs, embeddings=True))
    result["demo_map_reference"] = {k: reference[k] for k in ("p50_ms", "p95_ms", "mean_ms")}
    result["classifier_intents"] = len(all_specs)
    result["classifier_head"] = "softmax" if classifier.head is not None else "similarity"
    result["classifier_build_s"] = round(built, 2)
    return result


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
