"""Whether a caller sounds fed up, from what they say: the map's frustration phrases, asking for a
person again and again ("agent! agent!"), or saying "that's not what I said" more than the map allows.

Pure, one tracker per call (``FrustrationTracker.heard`` for every final utterance). A frustrated
caller goes to a person at once with condition ``frustration``, so the human knows the mood before
they say hello. Raised voice is not judged here: the engine sees text only (see docs/handoff.md).
"""

from __future__ import annotations

from ari_agent import spoken_words
from ari_agent.conversation.commands import Command, contains_phrase, detect_command
from ari_agent.conversation.intent_map import FrustrationSpec
from ari_agent.conversation.slots.words import tokens

_PERSON_WORDS = frozenset((*spoken_words.PERSON_TITLES, "human", "person"))


def person_requests(text: str) -> int:
    """How many times ``text`` asks for a person ("agent, agent, get me a human" -> 3; "can I pay in
    person" -> 0: no request for a person at all)."""
    if detect_command(text) is not Command.HUMAN:
        return 0
    return max(1, sum(1 for w in tokens(text) if w in _PERSON_WORDS))


class FrustrationTracker:
    def __init__(self, spec: FrustrationSpec) -> None:
        self.spec = spec
        self.person_requests = 0
        self.not_understood = 0

    def heard(self, text: str) -> str | None:
        """Why the caller counts as frustrated after ``text`` (the handoff's detail), or None."""
        phrase = contains_phrase(text, self.spec.phrases)
        if phrase is not None:
            return f"caller said '{phrase}'"
        asked = person_requests(text)
        if asked:
            self.person_requests += asked
            if self.person_requests >= self.spec.person_requests:
                return f"asked for a person {self.person_requests} times"
        if contains_phrase(text, self.spec.not_understood_phrases) is not None:
            self.not_understood += 1
            if self.not_understood >= self.spec.not_understood:
                return f"said the agent misunderstood {self.not_understood} times"
        return None
