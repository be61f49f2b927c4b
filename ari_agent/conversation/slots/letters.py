"""Spelled letters: "a b c", "a as in alpha", NATO words ("bravo charlie"), letter names as a
recogniser writes them ("bee", "see", "double you", "zed").

In "<letter> as in <word>" the word wins: recognisers get "bravo" right more often than "bee".
"""

from __future__ import annotations

import re

from ari_agent import spoken_words
from ari_agent.conversation.slots.words import tokens

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
_TYPED_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ]*$")


def parse_letters(
    text: str, min_length: int = 1, max_length: int = 64, *, allow_digits: bool = False
) -> str | None:
    """The letters spelled in ``text`` (upper case), or None when they do not fit the length.

    With ``allow_digits`` (codes such as postcodes: "S W one A one A A") digits count too, and a
    typed code with letters and digits ("SW1A 1AA") is taken as it is. "oh" is the letter O.
    """
    raw = re.sub(r"[.,!?]", " ", text).strip()
    if allow_digits and _TYPED_CODE.match(raw):
        kept = [w for w in raw.split() if w.lower() not in _SKIP]
        compact = "".join(kept).upper()
        if (kept and all(len(w) <= 4 for w in kept) and any(c.isdigit() for c in compact)
                and any(c.isalpha() for c in compact) and min_length <= len(compact) <= max_length):
            return compact
    words = tokens(text.lower().replace("x-ray", "xray").replace("x ray", "xray"))
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
