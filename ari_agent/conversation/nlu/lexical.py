"""Lexical similarity: TF-IDF over character n-grams, word n-grams and sound-class skeletons.

Character n-grams survive recogniser errors that leave most of a word intact ("shipment" ->
"shipmen"); the sound-class skeleton (consonant classes, vowels dropped: "order" and "older" both
become ``VRTR``) survives homophones and near-homophones; word n-grams reward exact phrasing.
Everything is plain numpy over a vocabulary fixed at build time.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

# Words that carry little meaning on their own; used only by the word-feature block.
STOP_WORDS = frozenset(
    "a an the i me my we our you your it is am are was were be been to of in on at for and or "
    "do does did can could would will shall should this that there here just please so some".split()
)

# Consonant sound classes (after Dolgopolsky): letters that recognisers and phone lines confuse
# map to one symbol; vowels (except a leading one) are dropped.
_SOUND_CLASS: dict[str, str] = {
    **dict.fromkeys("bpfv", "P"),
    **dict.fromkeys("dt", "T"),
    **dict.fromkeys("ckqgx", "K"),
    **dict.fromkeys("szj", "S"),
    **dict.fromkeys("mn", "M"),
    **dict.fromkeys("lr", "R"),
    "w": "W",
    "h": "",
    "y": "",
}


def sound_skeleton(word: str) -> str:
    """Coarse phonetic key: consonant classes, vowels dropped, repeated classes merged.

    "order" and "older" both give ``RTR``; "appointment" and "a point meant" both give ``PMTMT``
    once the words are joined, which is how word-splitting recognition errors are matched.
    """
    word = word.replace("ph", "f").replace("th", "t").replace("sh", "s").replace("ch", "s")
    word = word.replace("ck", "k").replace("wh", "w").replace("gh", "")
    out: list[str] = []
    for ch in word:
        cls = _SOUND_CLASS.get(ch, "" if ch in "aeiou" else ch.upper() if ch.isdigit() else "")
        if cls and (not out or out[-1] != cls):
            out.append(cls)
    return "".join(out)


def _sound_ngrams(words: Sequence[str], lo: int, hi: int) -> Iterable[str]:
    """N-grams over the sound skeleton of the whole utterance, word boundaries removed."""
    stream = "^" + sound_skeleton("".join(words)) + "$"
    for n in range(lo, hi + 1):
        for i in range(len(stream) - n + 1):
            yield stream[i : i + n]


def _char_ngrams(words: Sequence[str], lo: int, hi: int, tag: str) -> Iterable[str]:
    for word in words:
        padded = f" {word} "
        for n in range(lo, hi + 1):
            if len(padded) < n:
                break
            for i in range(len(padded) - n + 1):
                yield tag + padded[i : i + n]


def _word_ngrams(words: Sequence[str]) -> Iterable[str]:
    content = [w for w in words if w not in STOP_WORDS]
    for w in content:
        yield "w:" + w
    for a, b in itertools.pairwise(words):
        yield "b:" + a + " " + b


class FeatureBlock:
    """One TF-IDF block: a feature extractor, its vocabulary and idf weights, and a weight."""

    def __init__(self, name: str, weight: float, corpus: Sequence[Sequence[str]], kind: str) -> None:
        self.name = name
        self.weight = weight
        self.kind = kind
        df: Counter[str] = Counter()
        for words in corpus:
            df.update(set(self.features(words)))
        self.vocab: dict[str, int] = {f: i for i, f in enumerate(sorted(df))}
        n_docs = len(corpus)
        self.idf = np.array([math.log((1 + n_docs) / (1 + df[f])) + 1.0 for f in sorted(df)], dtype=np.float32)
        self.oov_idf = math.log(1 + n_docs) + 1.0

    def features(self, words: Sequence[str]) -> Iterable[str]:
        if self.kind == "char":
            return _char_ngrams(words, 2, 5, "")
        if self.kind == "sound":
            return _sound_ngrams(words, 3, 5)
        return _word_ngrams(words)

    def vector(self, words: Sequence[str]) -> FloatArray:
        """L2-normalised sublinear TF-IDF; unseen features still count towards the norm."""
        vec = np.zeros(len(self.vocab), dtype=np.float32)
        oov_sq = 0.0
        for feat, count in Counter(self.features(words)).items():
            tf = 1.0 + math.log(count)
            idx = self.vocab.get(feat)
            if idx is None:
                oov_sq += (tf * self.oov_idf) ** 2
            else:
                vec[idx] = tf * self.idf[idx]
        norm = math.sqrt(float(vec @ vec) + oov_sq)
        if norm > 0.0:
            vec /= norm
        return vec


class LexicalEncoder:
    """Maps normalised text to a concatenation of weighted, L2-normalised TF-IDF blocks."""

    def __init__(self, corpus: Sequence[str]) -> None:
        tokenised = [text.split() for text in corpus]
        self.blocks = (
            FeatureBlock("char", 0.55, tokenised, "char"),
            FeatureBlock("sound", 0.20, tokenised, "sound"),
            FeatureBlock("word", 0.25, tokenised, "word"),
        )
        total = sum(b.weight for b in self.blocks)
        self._scales = [math.sqrt(b.weight / total) for b in self.blocks]

    def encode(self, text: str) -> FloatArray:
        words = text.split()
        parts = [b.vector(words) * s for b, s in zip(self.blocks, self._scales, strict=True)]
        return np.concatenate(parts)

    def encode_many(self, texts: Sequence[str]) -> FloatArray:
        if not texts:
            dim = sum(len(b.vocab) for b in self.blocks)
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([self.encode(t) for t in texts])
