"""Which intent an utterance asks for: the map's regular-expression ``patterns`` first (exact,
business-owned overrides), then the classifier (which also decides out of scope)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.words import joined


@dataclass(frozen=True)
class Route:
    intent: str | None  # None: out of scope
    confidence: float
    also_mentioned: tuple[str, ...] = ()
    by: str = "classifier"  # or "pattern"


class IntentRouter:
    def __init__(self, intent_map: IntentMap, classifier: IntentClassifier) -> None:
        self.classifier = classifier
        self.enabled = {i.name for i in intent_map.intents if i.enabled}
        self.patterns = [
            (i.name, re.compile(p, re.IGNORECASE)) for i in intent_map.intents if i.enabled for p in i.patterns
        ]

    def route(self, text: str) -> Route:
        norm = joined(text)
        for name, pattern in self.patterns:
            if pattern.search(text) or pattern.search(norm):
                return Route(name, 1.0, by="pattern")
        c = self.classifier.classify(text)
        intent = c.intent if c.intent in self.enabled else None
        also = tuple(n for n in c.also_mentioned if n in self.enabled and n != intent)
        return Route(intent, c.confidence if intent else 0.0, also)
