"""Where a text to be spoken may be cut, so a slow voice can play its first clause while it renders the rest.

Pure text rules, no I/O. A text is cut into sentences (after ``. ? !``), each sentence after its clause
punctuation (``, ; :`` followed by a space, so "1,000" and "10:30" stay whole), and a piece still longer
than ``long_words`` words before a conjunction ("..., and it should arrive on Thursday"). Pieces of fewer
than ``min_words`` words are joined to the next one of the same sentence (the last to the one before):
a voice needs some context for its prosody, and a one-word clause costs a synthesis call for little audio.
Joined back with single spaces, the clauses are the text's words in their order.
"""

from __future__ import annotations

import re

MIN_CLAUSE_WORDS = 3
LONG_CLAUSE_WORDS = 10  # a piece longer than this (without punctuation to cut at) is cut before a conjunction
CONJUNCTIONS = frozenset({"and", "but", "or", "so", "because", "which", "while", "although", "though",
                          "unless", "until", "whereas"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a prompt: synthesised and played one by one (the first plays while the rest render)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _at_conjunctions(words: list[str], min_words: int, long_words: int) -> list[list[str]]:
    """``words`` cut before conjunctions while the piece is longer than ``long_words``; both sides of a
    cut keep ``min_words`` words at least."""
    if len(words) <= long_words:
        return [words]
    for i in range(min_words, len(words) - min_words + 1):
        if words[i].lower() in CONJUNCTIONS:
            return [words[:i], *_at_conjunctions(words[i:], min_words, long_words)]
    return [words]


def _merge_short(pieces: list[list[str]], min_words: int) -> list[list[str]]:
    merged: list[list[str]] = []
    pending: list[str] = []
    for piece in pieces:
        pending = pending + piece
        if len(pending) >= min_words:
            merged.append(pending)
            pending = []
    if pending:
        if merged:
            merged[-1] = merged[-1] + pending
        else:
            merged.append(pending)
    return merged


def sentence_clauses(sentence: str, min_words: int = MIN_CLAUSE_WORDS,
                     long_words: int = LONG_CLAUSE_WORDS) -> list[str]:
    """One sentence's clauses ("Sure, I can check on your order." stays whole; a long sentence is cut)."""
    pieces: list[list[str]] = []
    for part in _CLAUSE_END.split(sentence.strip()):
        words = part.split()
        if words:
            pieces.extend(_at_conjunctions(words, min_words, long_words))
    return [" ".join(p) for p in _merge_short(pieces, min_words)]


def split_clauses(text: str, min_words: int = MIN_CLAUSE_WORDS, long_words: int = LONG_CLAUSE_WORDS) -> list[str]:
    """The clauses of ``text``, sentence by sentence, in order (never merged across a sentence end)."""
    return [c for s in split_sentences(text) for c in sentence_clauses(s, min_words, long_words)]
