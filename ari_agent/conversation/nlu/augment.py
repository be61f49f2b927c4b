"""Model-free variants of a map's example phrasings, for training the softmax head.

Ten written phrasings per intent are clean sentences; callers are not. Each example gets a few
deterministic variants that look more like what a phone line and a recogniser deliver:

- a carrier phrase around it ("i'm calling because ...", "... please"), which the normaliser keeps;
- a content word dropped (a recogniser that missed it, a caller who swallowed it);
- recogniser-style garbling of its longest words: a word split in two ("account" -> "ac count"),
  a doubled letter single, a soft consonant swapped for its sound-alike ("c" -> "k", "ph" -> "f").

Everything is seeded by the text itself (``zlib.crc32``), so a map always gets the same variants.
Pure: no I/O.

>>> variants("i have lost my debit card", 3)[0] != "i have lost my debit card"
True
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from .lexical import STOP_WORDS

CARRIERS: tuple[tuple[str, str], ...] = (
    ("i am calling because", ""),
    ("i was wondering", ""),
    ("i need some help", ""),
    ("can you help me", ""),
    ("i am ringing about", ""),
    ("", "please"),
    ("", "if that is okay"),
    ("quick question", ""),
)

# Sound-alike rewrites a recogniser makes (applied to one word, first match only).
_SOUND_ALIKES: tuple[tuple[str, str], ...] = (
    ("ph", "f"), ("ck", "k"), ("ee", "ea"), ("ou", "o"), ("ai", "ay"), ("er", "a"), ("tion", "shun"),
    ("c", "k"), ("s", "z"), ("y", "ie"),
)


def _rng(text: str, salt: int) -> random.Random:
    return random.Random(zlib.crc32(f"{salt}:{text}".encode()))


def with_carrier(text: str, rng: random.Random) -> str:
    before, after = CARRIERS[rng.randrange(len(CARRIERS))]
    return " ".join(p for p in (before, text, after) if p)


def drop_word(words: list[str], rng: random.Random) -> list[str]:
    content = [i for i, w in enumerate(words) if w not in STOP_WORDS]
    if len(words) < 4 or not content:
        return words
    drop = content[rng.randrange(len(content))]
    return [w for i, w in enumerate(words) if i != drop]


def garble_word(word: str, rng: random.Random) -> str:
    """One recogniser-style error in ``word`` (split, undoubled letter or sound-alike)."""
    choice = rng.randrange(3)
    if choice == 0 and len(word) >= 6:
        cut = rng.randrange(2, len(word) - 2)
        return f"{word[:cut]} {word[cut:]}"
    if choice == 1:
        for i in range(len(word) - 1):
            if word[i] == word[i + 1]:
                return word[:i] + word[i + 1 :]
    for old, new in _SOUND_ALIKES:
        if old in word[1:]:
            at = word.index(old, 1)
            return word[:at] + new + word[at + len(old) :]
    return word


def garble(words: list[str], rng: random.Random, n_words: int = 2) -> list[str]:
    """Garble up to ``n_words`` of the longest content words."""
    ranked = sorted((i for i, w in enumerate(words) if w not in STOP_WORDS and len(w) >= 4),
                    key=lambda i: (-len(words[i]), i))
    targets = set(ranked[:n_words])
    return [garble_word(w, rng) if i in targets else w for i, w in enumerate(words)]


def variants(text: str, n: int = 3) -> list[str]:
    """Up to ``n`` distinct variants of a normalised phrasing (never the phrasing itself)."""
    words = text.split()
    if not words:
        return []
    out: list[str] = []
    makers: tuple[Callable[[random.Random], str], ...] = (
        lambda r: " ".join(garble(words, r)),
        lambda r: with_carrier(" ".join(drop_word(words, r)), r),
        lambda r: with_carrier(" ".join(garble(words, r, 1)), r),
        lambda r: " ".join(drop_word(garble(words, r, 1), r)),
        lambda r: with_carrier(text, r),
    )
    for salt, make in enumerate(makers):
        if len(out) >= n:
            break
        candidate = make(_rng(text, salt))
        if candidate != text and candidate not in out:
            out.append(candidate)
    return out
