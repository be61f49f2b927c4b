"""The closest UK postcode to a recogniser's approximate transcript of a spelled one.

Whisper on a phone line writes a spelled postcode as a mix of typed chunks, letter names, homophones
and near-miss NATO words (measured on the phone set): "S1 to Fg." (S one, two F G), "M23 for QR."
(M two three, four Q R), "and one nine GU." (N one, nine G U), "Lima Sierra 1 for Delta Uenki.",
"Bravo 3 3 8 and go hotel." (... eight Tango Hotel), "P0138X" (P O one, three A X). The strict
reading (:func:`~ari_agent.conversation.slots.letters.parse_letters`) takes none of these or takes the
wrong thing ("S1T0FG": "to" as the letters T, O).

:func:`closest_uk_postcode` reads each word (or two words run together, "and go" -> "tango") in
every way it may have been meant, each way with a cost: a letter, digit, letter name or typed chunk
costs nothing, a homophone ("to" -> 2, "for" -> 4, "and" -> N) or a confusable character (8 / A,
0 / O) a little, a NATO word misheard (by spelling similarity) more, a carrier word ("my postcode
is") nothing to skip, any other word a lot to skip. A search over these readings (pruned to prefixes
of the UK shapes and postcode areas, with the letters each position allows: ``ari_agent.uk_postcodes``)
gives the cheapest valid postcode; none when
the cheapest costs more than :data:`MAX_COST` (this was not a postcode) or two different postcodes
tie (the caller is asked again).
"""

from __future__ import annotations

import difflib
import re
from typing import Final

from ari_agent.conversation.slots.letters import LETTER_NAMES, NATO
from ari_agent.conversation.slots.words import normalise
from ari_agent.uk_postcodes import could_start, is_postcode

Reading = tuple[str, float]

MAX_COST: Final = 2.0
NATO_SIMILARITY: Final = 0.5  # difflib ratio from which a word may be a misheard NATO word ("uenki" ~ "yankee")
_DIGIT_WORDS: Final = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                       "six": "6", "seven": "7", "eight": "8", "nine": "9"}
# Words whisper writes for a spoken letter or digit, with what they may stand for.
_HOMOPHONES: Final[dict[str, tuple[str, ...]]] = {
    "to": ("2",), "too": ("2",), "for": ("4",), "fore": ("4",), "won": ("1",), "ate": ("8", "A"),
    "and": ("N",), "an": ("N",), "in": ("N",), "am": ("M",), "yes": ("S",), "is": ("S",), "us": ("S",),
    "easy": ("EC",), "tv": ("TV",), "okay": ("OK",), "eighty": ("AT",), "hey": ("A",), "day": ("A",),
    "be": ("B",), "we": ("W",), "oh": ("O", "0"), "o": ("O", "0"), "you": ("U",), "are": ("R",),
}
# Words that carry nothing in a postcode answer.
_CARRIERS: Final = frozenset("my the postcode post code zip is it's its it that's thats as in letter please "
                             "thank thanks uh um er erm so".split())
_NATO_WORDS: Final = tuple(NATO)
# Characters a typed chunk may hold for another: "P0138X" is P O 1 3 A X.
_CONFUSABLE: Final[dict[str, tuple[Reading, ...]]] = {"0": (("O", 0.1),), "O": (("0", 0.1),), "8": (("A", 0.5),),
                                                      "A": (("8", 0.5),)}
_WORD: Final = re.compile(r"[a-z0-9']+")



def closest_uk_postcode(text: str) -> str | None:
    """The cheapest valid UK postcode reading of ``text`` ("SW1A1AA"), or None (see the module docstring)."""
    words = _as_in(_WORD.findall(normalise(text).lower().replace("x-ray", "xray")))
    if not words or len(words) > 16:
        return None
    best: list[dict[str, float]] = [{} for _ in range(len(words) + 1)]
    best[0][""] = 0.0
    for i in range(len(words)):
        for prefix, cost in best[i].items():
            for span in (1, 2):
                if i + span > len(words):
                    continue
                for chars, extra in _readings(words[i : i + span]):
                    code = prefix + chars
                    total = cost + extra
                    if total <= MAX_COST and could_start(code) and total < best[i + span].get(code, MAX_COST + 1):
                        best[i + span][code] = total
    # a 0 right after a one-letter area ("P0...") is no district: such an "oh" was the letter O
    done = sorted((cost + (0.2 if code[1] == "0" else 0.0), code) for code, cost in best[-1].items()
                  if is_postcode(code))
    if not done or (len(done) > 1 and done[1][0] - done[0][0] < 1e-9):
        return None
    return done[0][1]


def spelled_code_in(text: str) -> bool:
    """``text`` could be a code spelled and misheard: it has a digit, a digit word, a NATO word or two
    one-character words ("S-t-a-b-a", "and one one eighty", "h11 yz"); not "I don't know it", "it's on my
    letter". A recogniser's transcript that is none of these is words, taken as the caller said them."""
    words = _WORD.findall(normalise(text).lower())
    return (any(c.isdigit() for c in text) or any(w in _DIGIT_WORDS or w in NATO for w in words)
            or sum(len(w) == 1 for w in words) >= 2)


def _as_in(words: list[str]) -> list[str]:
    """"s as in sugar" -> "s" (the example word's first letter: it is heard better than the letter)."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 3 < len(words) and words[i + 1 : i + 3] in (["as", "in"], ["is", "in"]) and words[i + 3].isalpha():
            example = words[i + 3]
            out.append((NATO.get(example) or example[0]).lower())
            i += 4
            continue
        out.append(words[i])
        i += 1
    return out


def _readings(span: list[str]) -> list[Reading]:
    """What one word (or two run together) may stand for, each with its cost."""
    if len(span) == 2:
        if span[0] == "double" and span[1] != "you":  # "double A" (but "double you" is W)
            return [(c + c, cost) for c, cost in _readings(span[1:]) if len(c) == 1 and c.isalpha()]
        joined = (span[0] + span[1]).replace("'", "")
        if joined in NATO:
            return [(NATO[joined], 0.0)]
        return [(NATO[w], 0.4 + (1 - r)) for w, r in _nato_like(joined, 3)]
    w = span[0]
    out: list[Reading] = []
    if w in _CARRIERS:
        out.append(("", 0.0))
    if w in NATO:
        out.append((NATO[w], 0.0))
    if w in _DIGIT_WORDS:
        out.append((_DIGIT_WORDS[w], 0.0))
    if w in LETTER_NAMES and len(w) > 1:
        out.append((LETTER_NAMES[w], 0.0))
    for alt in _HOMOPHONES.get(w, ()):
        out.append((alt.upper(), 0.3))
    if w.isalnum() and (len(w) <= 4 or any(c.isdigit() for c in w)) and len(w) <= 8:
        word_like = w in _HOMOPHONES or w in _CARRIERS  # "to" is the digit 2 more often than the letters T, O
        out.extend((r, cost + (0.5 if word_like else 0.0)) for r, cost in _typed(w))
    if not out or w not in NATO:
        out.extend((NATO[n], 0.4 + (1 - r)) for n, r in _nato_like(w))
    out.append(("", 1.0 if w not in _CARRIERS else 0.0))
    return out


def _typed(word: str) -> list[Reading]:
    """A typed chunk ("sw1a", "1bb", "p0138x") character by character; 0/O and 8/A may be either."""
    readings: list[Reading] = [("", 0.0)]
    for c in word.upper():
        alts = [(c, 0.0), *_CONFUSABLE.get(c, ())]
        readings = [(r + a, cost + extra) for r, cost in readings for a, extra in alts]
    return readings


def _nato_like(word: str, min_length: int = 4) -> list[tuple[str, float]]:
    """NATO words spelled like ``word`` (a mishearing: "uenki", "delphin", "julia"), with the similarity."""
    if len(word) < min_length or not word.isalpha():
        return []
    out = []
    for nato in _NATO_WORDS:
        ratio = difflib.SequenceMatcher(None, word, nato).ratio()
        if ratio >= NATO_SIMILARITY:
            out.append((nato, ratio))
    return out
