"""Digit strings as callers say them: "four five six seven", "double two", "triple five", "oh" for
zero, pairs ("forty five sixty seven"), numerals mixed with words ("45 six 7"), and DTMF.

A transcript may hold several runs of digits ("I ordered 2 things, order 4567"): ``digit_runs``
lists them and ``parse_digits`` picks the one that fits the slot's length.
"""

from __future__ import annotations

import re

from ari_agent.conversation.slots.numbers import TEENS, TENS, UNITS, read_cardinal
from ari_agent.conversation.slots.words import tokens

DIGIT_WORDS: dict[str, str] = {
    **{w: str(v) for w, v in UNITS.items()},
    "oh": "0", "o": "0", "nought": "0", "naught": "0", "nil": "0",
}
# Recogniser confusions, trusted only between two digits ("four five for seven").
_HOMOPHONES: dict[str, str] = {"to": "2", "too": "2", "for": "4", "fore": "4", "won": "1", "ate": "8"}
_REPEATS: dict[str, int] = {"double": 2, "triple": 3, "treble": 3}
# Words a caller says inside a digit string that carry nothing.
_GLUE = frozenset("uh um umm er erm hmm dash hyphen space then".split())
# Where a recogniser ends a sentence ("7 7 4 2. 7 7 7 4 2."): a full stop not inside a number.
_SENTENCE_END = re.compile(r"[.?!]+(?!\d)")


def _is_digitish(word: str) -> bool:
    return word.isdigit() or word in DIGIT_WORDS or word in TEENS or word in TENS or word in _REPEATS


def digit_runs(text: str) -> list[str]:
    """Every run of spoken digits in ``text``, in order, as digit strings."""
    words = tokens(text)
    runs: list[str] = []
    cur = ""
    i = 0
    n = len(words)

    def flush() -> None:
        nonlocal cur
        if cur:
            runs.append(cur)
        cur = ""

    while i < n:
        w = words[i]
        if w.isdigit():
            cur += w
            i += 1
        elif w in _REPEATS and i + 1 < n and (words[i + 1] in DIGIT_WORDS or words[i + 1] in _HOMOPHONES
                                               or (words[i + 1].isdigit() and len(words[i + 1]) == 1)):
            nxt = words[i + 1]
            d = DIGIT_WORDS.get(nxt) or _HOMOPHONES.get(nxt) or nxt
            cur += d * _REPEATS[w]
            i += 2
        elif w in TEENS or w in TENS or (w in UNITS and i + 1 < n and words[i + 1] in ("hundred", "thousand")):
            got = read_cardinal(words, i)
            assert got is not None
            cur += str(got[0])
            i = got[1]
        elif w in DIGIT_WORDS:
            cur += DIGIT_WORDS[w]
            i += 1
        elif w in _HOMOPHONES and cur and i + 1 < n and _is_digitish(words[i + 1]):
            cur += _HOMOPHONES[w]
            i += 1
        elif w in _GLUE and cur and i + 1 < n and _is_digitish(words[i + 1]):
            i += 1
        else:
            flush()
            i += 1
    flush()
    return runs


def parse_digits(text: str, min_length: int = 1, max_length: int = 32) -> str | None:
    """The digit string in ``text`` whose length fits ``min_length..max_length``, or None.

    When one run fits it wins (the longest, then the last, if several do); when none does but all
    runs together fit (a caller who paused with a word between groups) their concatenation wins; else
    a sentence of a recogniser's repeat ("7 7 4 2. 7 7 7 4 2.").
    """
    runs = digit_runs(text)
    fitting = [r for r in runs if min_length <= len(r) <= max_length]
    if fitting:
        best = max(len(r) for r in fitting)
        return [r for r in fitting if len(r) == best][-1]
    together = "".join(runs)
    if len(runs) > 1 and min_length <= len(together) <= max_length:
        return together
    return _one_sentence_fits(text, min_length, max_length)


def _one_sentence_fits(text: str, min_length: int, max_length: int) -> str | None:
    """A recogniser that repeated itself with a slip ("7 7 4 2. 7 7 7 4 2.") wrote the digits as one run
    across its sentences: read each sentence alone, and take the value when exactly one distinct value
    fits and every other sentence's digits hold it (a repeat). Different digits in another sentence
    ("1 2 3 4. 5 6 7.") are more of the number or a correction: no value."""
    sentences = ["".join(digit_runs(s)) for s in _SENTENCE_END.split(text)]
    sentences = [d for d in sentences if d]
    fits = {d for d in sentences if min_length <= len(d) <= max_length}
    if len(sentences) < 2 or len(fits) != 1:
        return None
    value = fits.pop()
    return value if all(value in d for d in sentences) else None


def parse_dtmf(digits: str, min_length: int = 1, max_length: int = 32) -> str | None:
    """Keypad input: '#' ends the entry, '*' starts it over; only 0-9 count."""
    entry = digits.split("#", 1)[0]
    entry = entry.rsplit("*", 1)[-1]
    only = "".join(c for c in entry if c in "0123456789")  # keypad digits only (str.isdigit takes "²", "٤")
    return only if min_length <= len(only) <= max_length else None


def spoken_digits(digits: str) -> str:
    """How the agent reads a digit string back: one digit at a time."""
    return " ".join(digits)
