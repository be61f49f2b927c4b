"""Plain data the NLU takes and gives: intent specifications in, classifications out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IntentSpec:
    """One intent as the classifier sees it: its name, example phrasings and optional keywords."""

    name: str
    examples: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Classification:
    """What the caller asked for.

    ``intent`` is ``None`` when the utterance is out of scope (the engine hands it to a human or
    re-prompts). ``ranked`` lists every in-scope intent, best first, with its score (0..1).
    ``also_mentioned`` names other in-scope intents heard in the same breath, in spoken order.
    """

    intent: str | None
    confidence: float
    ranked: tuple[tuple[str, float], ...]
    also_mentioned: tuple[str, ...] = ()


class IntentClassifier(Protocol):
    def classify(self, text: str) -> Classification: ...
