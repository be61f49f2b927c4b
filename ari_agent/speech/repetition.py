"""Whisper's repetition loops, cut out of a transcript: "Yes. Yes. Yes. Yes", "1 1 4 7. 1 1 4 7.",
"Now now now now now".

A small decoder that has written what it heard often writes it again until the token cap stops it
(measured on the phone set: "yeah" -> "Yeah. Yeah. Yeah. …", "one one four seven" -> "1 1 4 7. 1 1 4 7.").
The slot parsers then see two numbers, or a yes/no answer that is not one. :func:`collapse_repeats`
keeps the first copy:

- a sentence (cut at '.', '?' or '!') equal to the one before it, word for word (case and punctuation
  aside), is dropped; so is an unfinished last sentence that is only the start of the one before
  (the cap cut it). A caller who really says a thing twice meant it once;
- a run of the same word three or more times in a row ("now now now now") is kept once, unless the
  word holds a digit: "5 5 5 1" is a number;
- a group of two or more words repeated three or more times in a row without punctuation
  ("3 4 3 4 3 4 3 4") is kept once. Twice is left alone: "1 2 1 2" can be a number;
- after such a run (a word or a group three times or more), an unfinished copy of it that ends the
  sentence is the token cap's cut, not words: "8 4 5 6 8 4 5 6 8 4 5 6 8" is "8 4 5 6".
"""

from __future__ import annotations

import re
from typing import Final

_SENTENCE: Final = re.compile(r"[^.?!]+[.?!]*")
_STRIP: Final = re.compile(r"[^\w']+")


def _key(chunk: str) -> tuple[str, ...]:
    return tuple(w for w in (_STRIP.sub("", w).lower() for w in chunk.split()) if w)


def collapse_repeats(text: str) -> str:
    """``text`` with its repetition loops cut (see the module docstring); unchanged when it has none."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    kept: list[str] = []
    last: tuple[str, ...] = ()
    for k, sentence in enumerate(sentences):
        key = _key(sentence)
        if not key:
            continue
        finished = sentence[-1] in ".?!"
        if key == last or (k == len(sentences) - 1 and not finished and last[: len(key)] == key):
            continue
        kept.append(_collapse_words(sentence))
        last = key
    return " ".join(kept)


def _collapse_words(sentence: str) -> str:
    words = sentence.split()
    keys = [_STRIP.sub("", w).lower() for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(1, len(words) // 3 + 1):
            unit = keys[i : i + size]
            if len(unit) < size or (size == 1 and any(c.isdigit() for c in unit[0])) or not all(unit):
                continue
            times = 1
            while keys[i + times * size : i + (times + 1) * size] == unit:
                times += 1
            if times >= 3:
                out.extend(words[i : i + size])
                i += times * size
                rest = keys[i:]
                if rest and len(rest) < size and unit[: len(rest)] == rest:
                    i = len(words)  # the cap cut the next copy short
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)
