"""Fixtures shared by the unit tests of several layers: the demo intent map and a lexical classifier."""

from __future__ import annotations

import pytest

from ari_agent.conversation.intent_map import IntentMap, load_intent_map
from ari_agent.conversation.nlu import IntentClassifier, build_classifier


@pytest.fixture(scope="session")
def demo_map() -> IntentMap:
    return load_intent_map()


@pytest.fixture(scope="session")
def classifier(demo_map: IntentMap) -> IntentClassifier:
    # lexical only: builds in ~0.1 s and needs no model files (the chat end-to-end test uses the default)
    return build_classifier(demo_map.nlu_intents(), embeddings=False)
