"""Whether a caller sounds fed up, from what they say: the map's frustration phrases, asking for a
person again and again ("agent! agent!"), or saying "that's not what I said" more than the map allows.

Pure, one tracker per call (``FrustrationTracker.heard`` for every final utterance). A frustrated
caller goes to a person at once with condition ``frustration``, so the human knows the mood before
they say hello.

A raised voice (the call layer's ``Utterance.raised_db``: this turn against the caller's median of
their earlier turns, ``media/loudness.py``) is never a cue on its own (people speak up on a bad line,
or move closer to the phone): at ``frustration.raised_voice_db`` or more it counts the cue said in the
same turn twice, so a shouted "agent!" or a shouted "that's not what I said" is enough at once.
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


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class FrustrationTracker:
    def __init__(self, spec: FrustrationSpec) -> None:
        self.spec = spec
        self.person_requests = 0
        self.not_understood = 0

    def raised(self, raised_db: float | None) -> bool:
        """Whether a turn ``raised_db`` over the caller's median is a clearly raised voice."""
        limit = self.spec.raised_voice_db
        return bool(limit) and raised_db is not None and raised_db >= limit

    def heard(self, text: str, *, raised_db: float | None = None) -> str | None:
        """Why the caller counts as frustrated after ``text`` (the handoff's detail), or None.
        ``raised_db``: how much louder than usual it was said (None: not measured)."""
        phrase = contains_phrase(text, self.spec.phrases)
        if phrase is not None:
            return f"caller said '{phrase}'"
        loud = self.raised(raised_db)
        voice = f", the last in a raised voice (+{raised_db:.0f} dB)" if loud else ""
        asked = person_requests(text)
        if asked:
            self.person_requests += asked + (1 if loud else 0)
            if self.person_requests >= self.spec.person_requests:
                return f"asked for a person {_times(self.person_requests - (1 if loud else 0))}{voice}"
        if contains_phrase(text, self.spec.not_understood_phrases) is not None:
            self.not_understood += 1 + (1 if loud else 0)
            if self.not_understood >= self.spec.not_understood:
                return f"said the agent misunderstood {_times(self.not_understood - (1 if loud else 0))}{voice}"
        return None
