"""The per-turn CPU benchmark runs and reports what it promises (figures: see the closing note)."""

from __future__ import annotations

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.devtools.bench_engine import TARGET_P95_MS, engine_turn_benchmark


def test_engine_turn_benchmark(demo_map: IntentMap, classifier: IntentClassifier) -> None:
    result = engine_turn_benchmark(60, intent_map=demo_map, classifier=classifier)
    assert result["turns"] == 60 and result["conversations"] >= 10
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["max_ms"]
    assert result["target_p95_ms"] == TARGET_P95_MS
    assert result["meets_target"] == (result["p95_ms"] <= TARGET_P95_MS)
    assert result["p95_ms"] < 250  # a sanity bound only: shared CI cores are noisy
