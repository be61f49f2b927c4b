"""Word-level tokenisation of transcripts for the slot parsers.

Recognisers and typists write the same thing many ways: "Forty-Two", "forty two", "42", "4,2".
``tokens`` lowercases, splits hyphens and slashes, strips punctuation (keeping apostrophes inside
words and the ':' / '/' of clock times and dates) and returns the words in order.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\d+(?::\d+|/\d+(?:/\d+)?)?(?:st|nd|rd|th|am|pm|a\.m\.|p\.m\.)?|[a-z]+(?:'[a-z]+)?")

FILLERS = frozenset("um umm uh uhh uhm er erm err ah eh hmm hm mm mmm mhm like so well okay ok".split())


def tokens(text: str) -> list[str]:
    """Lowercase words and numerals of ``text`` in spoken order."""
    lowered = text.lower().replace("’", "'").replace("-", " ")
    lowered = re.sub(r"(?<=\d),(?=\d{3}\b)", "", lowered)  # 1,000 -> 1000
    out: list[str] = []
    for tok in _TOKEN.findall(lowered):
        out.append(tok.replace(".", ""))
    return out


def joined(text: str) -> str:
    """The tokens of ``text`` joined by single spaces (for phrase matching)."""
    return " ".join(tokens(text))


def contains_phrase(words: list[str], phrase: tuple[str, ...]) -> int:
    """Index of the first occurrence of ``phrase`` in ``words``, or -1."""
    n = len(phrase)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) == phrase:
            return i
    return -1
