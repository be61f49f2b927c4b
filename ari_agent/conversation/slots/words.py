"""Word-level tokenisation of transcripts for the slot parsers.

Recognisers and typists write the same thing many ways: "Forty-Two", "forty two", "42", "4,2",
"４２" (full width), "٤٢" (Arabic-Indic). ``normalise`` folds those to one form first (Unicode NFKC,
every script's decimal digits to ASCII 0-9, dashes to '-', curly quotes to straight ones), so a digit
a parser accepts is one a tool accepts. ``tokens`` then lowercases, splits hyphens and slashes,
strips punctuation (keeping apostrophes inside words and the ':' / '/' of clock times and dates) and
returns the words in order.
"""

from __future__ import annotations

import re
import unicodedata

_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"), "-")
_QUOTES = dict.fromkeys(map(ord, "\u2018\u2019\u201b\u2032\u02bc"), "'") | dict.fromkeys(
    map(ord, "\u201c\u201d\u201f\u2033"), '"')


def normalise(text: str) -> str:
    """``text`` in one canonical spelling for parsing: NFKC ("ＳＷ１" -> "SW1", "ﬁ" -> "fi"), decimal
    digits of any script as ASCII ("٤٥٦٧", "४५६७" -> "4567"), dashes as '-' and quotes as ' / "."""
    folded = unicodedata.normalize("NFKC", text)
    if not folded.isascii():
        folded = "".join(_ascii_digit(c) for c in folded).translate(_DASHES).translate(_QUOTES)
    return folded


def _ascii_digit(c: str) -> str:
    if c.isascii() or not c.isdecimal():
        return c
    return str(unicodedata.decimal(c))

_TOKEN = re.compile(r"\d+(?::\d+|/\d+(?:/\d+)?)?(?:st|nd|rd|th|am|pm|a\.m\.|p\.m\.)?|[a-z]+(?:'[a-z]+)?")

FILLERS = frozenset("um umm uh uhh uhm er erm err ah eh hmm hm mm mmm mhm like so well okay ok".split())


def tokens(text: str) -> list[str]:
    """Lowercase words and numerals of ``text`` in spoken order."""
    lowered = normalise(text).lower().replace("-", " ")
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
