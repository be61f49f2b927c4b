"""One of a closed list of choices, by value, by synonym, or by position ("the second one")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ari_agent.conversation.slots.words import tokens

_POSITIONS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}


def parse_choice(text: str, choices: Mapping[str, Sequence[str]]) -> str | None:
    """The value of the choice named in ``text``; ``choices`` maps each value to its synonyms.

    A phrase inside a longer matched phrase of another choice does not count ("late morning" beats
    "morning"); if two different choices are still named, none is returned (the caller must pick).
    """
    words = tokens(text)
    padded = f" {' '.join(words)} "
    found: list[tuple[str, str]] = []  # (phrase, value)
    for value, synonyms in choices.items():
        for phrase in (value, *synonyms):
            p = " ".join(tokens(phrase))
            if p and f" {p} " in padded:
                found.append((p, value))
    kept = {
        value
        for phrase, value in found
        if not any(other_v != value and f" {phrase} " in f" {other} " for other, other_v in found)
    }
    if len(kept) == 1:
        return kept.pop()
    if kept:
        return None
    keys = list(choices)
    for w in words:
        if w in _POSITIONS and ("one" in words or "option" in words or len(words) <= 3):
            idx = _POSITIONS[w]
            if -len(keys) <= idx < len(keys):
                return keys[idx]
    return None
