"""Spelled letters: "a b c", "a as in alpha", NATO words ("bravo charlie"), letter names as a
recogniser writes them ("bee", "see", "double you", "zed"); alphanumeric codes typed or written by a
recogniser with or without spaces ("SW1A1AA", "sw1a 1aa", "S-W-1-A-1-A-A."); postcodes checked
against a country's format (``parse_postcode``).

In "<letter> as in <word>" the word wins: recognisers get "bravo" right more often than "bee".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Literal

from ari_agent import spoken_words
from ari_agent.conversation.slots.digits import parse_digits
from ari_agent.conversation.slots.words import normalise, tokens
from ari_agent.uk_postcodes import is_postcode

PostcodeFormat = Literal["any", "uk", "us"]

NATO: dict[str, str] = {
    **{w.replace("-", ""): chr(ord("A") + i) for i, w in enumerate(spoken_words.NATO_ALPHABET)},  # "xray"
    "alfa": "A", "fox": "F", "juliett": "J", "whisky": "W",  # spellings and short forms callers use
}
LETTER_NAMES: dict[str, str] = {
    **{chr(c): chr(c).upper() for c in range(ord("a"), ord("z") + 1)},
    "ay": "A", "eh": "A", "bee": "B", "be": "B", "cee": "C", "see": "C", "sea": "C", "dee": "D",
    "ee": "E", "ef": "F", "eff": "F", "gee": "G", "aitch": "H", "haitch": "H", "eye": "I", "jay": "J",
    "kay": "K", "el": "L", "ell": "L", "em": "M", "en": "N", "oh": "O", "pee": "P", "cue": "Q",
    "queue": "Q", "are": "R", "ar": "R", "ess": "S", "tee": "T", "tea": "T", "you": "U", "vee": "V",
    "ex": "X", "why": "Y", "zed": "Z", "zee": "Z",
}
_SKIP = frozenset("as in for like is it's its it the letter letters then and um uh capital my postcode post zip "
                  "code number that's thats sure okay ok".split())


_DIGIT_WORDS = {w: str(v) for v, w in enumerate(spoken_words.DIGITS)}
_TYPED_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ']*$")
_MIXED_WORD = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+\b")  # "SW1A", "1AA", "m11ae"
_COURTESY = re.compile(r"\b(?:thank you|thanks|please|cheers)\b", re.IGNORECASE)  # "..., thank you": not "U"
_SPOKEN = frozenset(_DIGIT_WORDS) | frozenset(NATO) | frozenset(w for w in LETTER_NAMES if len(w) > 1)


def _typed_chunk(word: str) -> bool:
    """A piece of a typed code: it holds a digit ("SW1A", "1AA") or is a short run of letters that is
    no spoken letter or digit ("SW" yes; "one", "bee", "alpha" no: those are spelling)."""
    if any(c.isdigit() for c in word):
        return True
    return word.isalpha() and len(word) <= 4 and word.lower() not in _SPOKEN


def parse_letters(
    text: str, min_length: int = 1, max_length: int = 64, *, allow_digits: bool = False
) -> str | None:
    """The letters spelled in ``text`` (upper case), or None when they do not fit the length.

    With ``allow_digits`` (codes such as postcodes: "S W one A one A A") digits count too, and a
    typed code with letters and digits, spaced or not ("SW1A 1AA", "sw1a1aa", "M1 1AE"), is taken
    as it is. "oh" is the letter O (``parse_postcode`` reads it as a zero where the format wants one).
    """
    norm = _COURTESY.sub(" ", normalise(text))
    raw = re.sub(r"[.,!?;:\-/]", " ", norm).strip()
    if allow_digits and _TYPED_CODE.match(raw):
        kept = [w for w in raw.split() if w.lower() not in _SKIP]
        compact = "".join(kept).upper()
        if (kept and all(_typed_chunk(w) for w in kept) and any(c.isdigit() for c in compact)
                and any(c.isalpha() for c in compact) and min_length <= len(compact) <= max_length):
            return compact
    if allow_digits:  # "S W one A, 1AA": a word of letters and digits is spelled character by character
        norm = _MIXED_WORD.sub(lambda m: " ".join(m.group()), norm)
    words = tokens(norm.lower().replace("x-ray", "xray").replace("x ray", "xray"))
    out: list[str] = []
    i = 0
    n = len(words)
    while i < n:
        w = words[i]
        if w == "double" and i + 1 < n and words[i + 1] in ("you", "u"):
            out.append("W")
            i += 2
            continue
        if w == "double" and i + 1 < n and (words[i + 1] in LETTER_NAMES or words[i + 1] in NATO):
            letter = NATO.get(words[i + 1]) or LETTER_NAMES[words[i + 1]]
            out.extend([letter, letter])
            i += 2
            continue
        if (w in LETTER_NAMES or w in NATO) and i + 3 < n and words[i + 1] == "as" and words[i + 2] in ("in", "for"):
            example = words[i + 3]
            out.append(NATO.get(example) or example[0].upper())
            i += 4
            continue
        if (w in LETTER_NAMES or w in NATO) and i + 2 < n and words[i + 1] == "for" and words[i + 2].isalpha():
            example = words[i + 2]
            out.append(NATO.get(example) or example[0].upper())
            i += 3
            continue
        if allow_digits and (w in _DIGIT_WORDS or w.isdigit()):
            out.append(_DIGIT_WORDS.get(w, w))
        elif w in NATO:
            out.append(NATO[w])
        elif w in LETTER_NAMES and w not in _SKIP:
            out.append(LETTER_NAMES[w])
        elif w in _SKIP:
            pass
        else:
            return None  # a word that is no letter: this was not spelling
        i += 1
    result = "".join(out)
    return result if min_length <= len(result) <= max_length else None


def spoken_letters(letters: str) -> str:
    return " ".join(letters)


# ------------------------------------------------------------------ postcodes

_US_ZIP = re.compile(r"^[0-9]{5}(?:[0-9]{4})?$")
_ANY_CODE = re.compile(r"^[A-Z0-9]{2,10}$")
_SWAP = {"O": "0", "0": "O"}  # "oh" is said for both


def parse_postcode(text: str, fmt: PostcodeFormat = "any", min_length: int = 2, max_length: int = 10) -> str | None:
    """The postcode in ``text`` in the canonical form tools take: upper case, no spaces ("SW1A1AA",
    "M11AE"; a US ZIP "12345" or "123456789"), or None when what was heard is not one in ``fmt``.

    Typed, written by a recogniser, or spelled ("S W one A one A A"); for ``uk`` the cheapest valid
    reading of an approximate transcript first (:func:`~ari_agent.conversation.slots.postcode_reading.
    closest_uk_postcode`: homophones, misheard NATO words), else the strict one, where an O heard where
    the format needs a digit is a zero and a zero where it needs a letter is an O ("SW1A OAA" ->
    "SW1A0AA"), when exactly one reading fits.
    """
    if fmt == "uk":
        from ari_agent.conversation.slots.postcode_reading import closest_uk_postcode  # it builds on this module

        closest = closest_uk_postcode(text)  # "S1 to Fg." -> S12FG, where the strict reading gives S1T0FG
        if closest is not None:
            return closest
    lo, hi = (5, 7) if fmt == "uk" else (5, 9) if fmt == "us" else (min_length, max_length)
    code = parse_letters(text, lo, hi, allow_digits=True)
    if code is None and fmt == "us":
        code = parse_digits(text, 5, 9)  # a ZIP is just digits: "nine oh two one oh"
    if code is None:
        return None
    if fmt == "uk":
        return _one_reading(code, uk_postcode)
    if fmt == "us":
        return _one_reading(code, lambda c: _US_ZIP.match(c) is not None)
    return code if _ANY_CODE.match(code) else None


def uk_postcode(code: str) -> bool:
    """A whole UK postcode: its shape, letters and area (``ari_agent.uk_postcodes``), or GIR 0AA."""
    return code == "GIR0AA" or is_postcode(code)


def _one_reading(code: str, fits: Callable[[str], bool]) -> str | None:
    if fits(code):
        return code
    spots = [i for i, c in enumerate(code) if c in _SWAP]
    if not spots or len(spots) > 4:
        return None
    found = set()
    for flips in itertools.product((False, True), repeat=len(spots)):
        chars = list(code)
        for i, flip in zip(spots, flips, strict=True):
            if flip:
                chars[i] = _SWAP[chars[i]]
        candidate = "".join(chars)
        if fits(candidate):
            found.add(candidate)
    return found.pop() if len(found) == 1 else None


def spoken_postcode(code: str, fmt: PostcodeFormat = "any") -> str:
    """How the agent reads a postcode back: "S W 1 A, 1 A A" (UK: outward and inward codes apart)."""
    if fmt == "uk" and len(code) >= 5:
        return f"{spoken_letters(code[:-3])}, {spoken_letters(code[-3:])}"
    return spoken_letters(code)
