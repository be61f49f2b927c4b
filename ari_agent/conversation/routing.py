"""Which intent an utterance asks for: the map's regular-expression ``patterns`` first (exact,
business-owned overrides), then the classifier (which also decides out of scope).

Two guards around the classifier, because similarity is blind to them: a request the caller negates
("I don't want to reschedule") is not asked for, and a change the map cannot make is not answered by an
intent that only reads ("cancel my order 4567" is not an order status; "change my address" is not the
store's address): an intent without a write step whose own phrasings never use the caller's change verb
is out of scope for that utterance, so the caller is clarified or handed to a person."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.words import joined, tokens

# A clause in which the caller says they do not want something.
_NEGATED_WANT = re.compile(
    r"\b(?:do\s*n[o']?t|dont|did\s*n[o']?t|never|not|no\s+need\s+to)\s+(?:really\s+)?(?:want|need|wish|mean|trying)\b",
    re.I)
_CLAUSES = re.compile(r"[,.;!?]+|\s+but\s+", re.I)
# Verbs of a change to the caller's own record or order.
# Dates and times are slot values, not what is asked for: "move it to next Friday at 10 am" drew the
# embedding towards "i need a hotel room for friday" (an out-of-domain anchor). When the classifier
# rejects an utterance that names a date or time, it gets one more try with them said generically.
_WHEN = re.compile(
    r"\b(?:(?:on|for|to|this|next|coming)\s+)*(?:mon|tues|wednes|thurs|fri|satur|sun)day\b"
    r"|\b(?:today|tomorrow|tonight)\b"
    r"|\b(?:at\s+)?\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|o'?clock)?(?=\W|$)(?!\s*(?:pounds|quid|%))",
    re.I)
CHANGE_VERBS = frozenset({"cancel", "change", "update", "close", "delete", "remove", "stop", "amend", "edit",
                          "modify", "alter", "terminate", "replace"})


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
        # The change verbs each read-only intent's own phrasings use (none for most).
        self.read_only_verbs: dict[str, frozenset[str]] = {}
        for i in intent_map.intents:
            if intent_map.writes(i):
                continue
            words = {w for phrase in (*i.examples, *i.keywords) for w in tokens(phrase)}
            self.read_only_verbs[i.name] = frozenset(words & CHANGE_VERBS)

    def route(self, text: str) -> Route:
        wanted = _without_negated_wants(text)
        if not wanted:
            return Route(None, 0.0, by="negated")
        norm = joined(wanted)
        for name, pattern in self.patterns:
            if pattern.search(wanted) or pattern.search(norm):
                return Route(name, 1.0, by="pattern")
        c = self.classifier.classify(wanted)
        if c.intent is None and _WHEN.search(wanted):
            c = self.classifier.classify(_generic_when(wanted))
        intent = c.intent if c.intent in self.enabled else None
        if intent is not None and intent in self.read_only_verbs:
            asked = set(tokens(wanted)) & CHANGE_VERBS
            if asked and not asked & self.read_only_verbs[intent]:
                return Route(None, 0.0, by="unsupported change")
        also = tuple(n for n in c.also_mentioned if n in self.enabled and n != intent)
        return Route(intent, c.confidence if intent else 0.0, also)


def _without_negated_wants(text: str) -> str:
    """The text without the clauses that say what the caller does not want ("" when that is all)."""
    if not _NEGATED_WANT.search(text):
        return text
    kept = [c.strip() for c in _CLAUSES.split(text) if c.strip() and not _NEGATED_WANT.search(c)]
    return ", ".join(kept)


def _generic_when(text: str) -> str:
    """``text`` with its dates and times said generically ("next Friday at 10 am" -> "another day")."""
    generic = _WHEN.sub(" ", text)
    return re.sub(r"\s+", " ", generic).strip() + " another day"
