"""Spoken cardinal and ordinal numbers: "forty-two", "one hundred and five", "twenty first", "5th".

The readers work on token lists (see ``words.tokens``) and return the value and the index just past
the words they consumed, so the digit, date and time parsers can build on them.
"""

from __future__ import annotations

from ari_agent import spoken_words
from ari_agent.conversation.slots.words import tokens

UNITS: dict[str, int] = {w: v for v, w in enumerate(spoken_words.DIGITS)}  # "zero" .. "nine"
TEENS: dict[str, int] = {w: 10 + i for i, w in enumerate(spoken_words.TEENS)}
TENS: dict[str, int] = {
    **{w: 10 * (2 + i) for i, w in enumerate(spoken_words.TENS)},
    "fourty": 40,  # a transcript's misspelling: read here, never listed in a grammar
}
ORDINAL_UNITS: dict[str, int] = {w: 1 + i for i, w in enumerate(spoken_words.ORDINAL_UNITS)}
ORDINAL_TEENS: dict[str, int] = {w: 10 + i for i, w in enumerate(spoken_words.ORDINAL_TEENS)}
ORDINAL_TENS: dict[str, int] = {w: 10 * (2 + i) for i, w in enumerate(spoken_words.ORDINAL_TENS)}
_SCALES: dict[str, int] = {"hundred": 100, "thousand": 1000}
_ORDINAL_SUFFIXES = ("st", "nd", "rd", "th")


def is_number_word(word: str) -> bool:
    return word in UNITS or word in TEENS or word in TENS or word in _SCALES or word.isdigit()


def read_cardinal(words: list[str], i: int) -> tuple[int, int] | None:
    """Read one cardinal number starting at ``words[i]``: (value, next index) or None.

    "forty two" -> 42, "one hundred and five" -> 105, "a thousand" -> 1000, "42" -> 42. Two
    numbers in a row are not merged: "one two" reads 1 and stops before "two".
    """
    n = len(words)
    if i >= n:
        return None
    first = words[i]
    if first.isdigit():
        return int(first), i + 1
    if first == "a" and i + 1 < n and words[i + 1] in _SCALES:
        i += 1
        first = words[i]
    elif not (first in UNITS or first in TEENS or first in TENS):
        return None
    total = 0
    current = 0
    last: str | None = None  # kind of the previous word: unit, teen, tens, scale
    j = i
    while j < n:
        w = words[j]
        if w in UNITS:
            if last in ("unit", "teen"):
                break
            current += UNITS[w]
            last = "unit"
        elif w in TEENS:
            if last in ("unit", "teen", "tens"):
                break
            current += TEENS[w]
            last = "teen"
        elif w in TENS:
            if last in ("unit", "teen", "tens"):
                break
            current += TENS[w]
            last = "tens"
        elif w in _SCALES:
            if last == "scale" and w == "hundred":
                break
            scale = _SCALES[w]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = 0
            last = "scale"
        elif w == "and" and last == "scale" and j + 1 < n and (
            words[j + 1] in UNITS or words[j + 1] in TEENS or words[j + 1] in TENS
        ):
            last = "and"
        else:
            break
        j += 1
    if last == "and":  # never end on a dangling "and"
        j -= 1
    return total + current, j


def read_ordinal(words: list[str], i: int) -> tuple[int, int] | None:
    """Read an ordinal: "fifth", "twenty first", "thirty-first", "5th", "21st"."""
    n = len(words)
    if i >= n:
        return None
    w = words[i]
    if w.endswith(_ORDINAL_SUFFIXES) and w[:-2].isdigit():
        return int(w[:-2]), i + 1
    if w in ORDINAL_UNITS:
        return ORDINAL_UNITS[w], i + 1
    if w in ORDINAL_TEENS:
        return ORDINAL_TEENS[w], i + 1
    if w in ORDINAL_TENS:
        return ORDINAL_TENS[w], i + 1
    if w in TENS and i + 1 < n and words[i + 1] in ORDINAL_UNITS:
        return TENS[w] + ORDINAL_UNITS[words[i + 1]], i + 2
    return None


def parse_number(text: str) -> int | None:
    """The first cardinal number spoken in ``text``, or None."""
    words = tokens(text)
    for i in range(len(words)):
        got = read_cardinal(words, i)
        if got is not None:
            return got[0]
    return None


def parse_ordinal(text: str) -> int | None:
    """The first ordinal spoken in ``text``, or None."""
    words = tokens(text)
    for i in range(len(words)):
        got = read_ordinal(words, i)
        if got is not None:
            return got[0]
    return None
