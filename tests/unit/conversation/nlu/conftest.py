"""Shared fixtures for the NLU tests: the demo intent map and the NLU test/dev splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.conversation.nlu import HybridIntentClassifier, IntentSpec, build_classifier
from ari_agent.conversation.nlu.encoder import default_model_dir
from ari_agent.devtools.bench_nlu import LabelledUtterance, load_intent_specs, load_testset

REPO = Path(__file__).resolve().parents[4]
DEMO_MAP = REPO / "ari_agent" / "data" / "demo-intent-map.yaml"
TESTSET = REPO / "tests" / "data" / "nlu" / "demo_testset.jsonl"
DEVSET = REPO / "tests" / "data" / "nlu" / "dev.jsonl"

needs_encoder = pytest.mark.skipif(default_model_dir() is None, reason="all-MiniLM-L6-v2 weights not installed")


@pytest.fixture(scope="session")
def demo_specs() -> list[IntentSpec]:
    return load_intent_specs(DEMO_MAP)


@pytest.fixture(scope="session")
def testset() -> list[LabelledUtterance]:
    return load_testset(TESTSET)


@pytest.fixture(scope="session")
def devset() -> list[LabelledUtterance]:
    return load_testset(DEVSET)


@pytest.fixture(scope="session")
def lexical_classifier(demo_specs: list[IntentSpec]) -> HybridIntentClassifier:
    return build_classifier(demo_specs, embeddings=False)


@pytest.fixture(scope="session")
def combined_classifier(demo_specs: list[IntentSpec]) -> HybridIntentClassifier:
    if default_model_dir() is None:
        pytest.skip("all-MiniLM-L6-v2 weights not installed")
    return build_classifier(demo_specs, embeddings=True)
