"""What a grammar-biased recogniser listens for, built from the engine's :class:`Expectation`.

- Constrained turns (yes/no, digits, numbers, dates, times, menu choices, spelled letters) get a
  closed JSGF grammar (:func:`jsgf_for`). Every grammar also accepts the few commands a caller may
  give at any time ("agent", "repeat that", ...), so "operator" is not forced into "yes".
- The open "how can I help?" turn gets a domain trigram language model in ARPA form
  (:func:`build_domain_lm`): the intent map's example phrases plus generic carrier phrases, smoothed
  with interpolated Kneser-Ney (absolute discounts from the counts of counts), written with backoff
  weights. Callers say things the examples never listed; an n-gram model recombines the pieces.
- Free text gets the recogniser's generic model (:class:`SearchSpec` kind ``"generic"``).

Every word is checked against the pronunciation dictionary (pocketsphinx's ``cmudict-en-us.dict``): a
word the dictionary lacks loads silently and can never be recognised. A missing compound is spelt
from two dictionary words ("postcode" = "post" + "code"); anything else is dropped with a warning
(JSGF: the phrase; LM: the sentence is split at the word).

Pure apart from reading the dictionary file once; :class:`SearchCache` memoises built searches by
content hash (and writes LM files for decoders that load from a path).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from ari_agent.seam import Expectation
from ari_agent.spoken_words import (
    DIGITS,
    MONTHS,
    NATO_ALPHABET,
    ORDINAL_TEENS,
    ORDINAL_TENS,
    ORDINAL_UNITS,
    PERSON_TITLES,
    TEENS,
    TENS,
    UNITS,
    WEEKDAYS,
)

log = logging.getLogger(__name__)

BOS: Final = "<s>"
EOS: Final = "</s>"

# ------------------------------------------------------------------ pronunciation dictionary


def default_dictionary_path() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"


class PronunciationDictionary:
    """Words a recogniser can say, with their pronunciations (phone strings, main one first)."""

    def __init__(self, entries: dict[str, list[str]]) -> None:
        self._prons = entries
        self._extra: dict[str, list[str]] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> PronunciationDictionary:
        return _load_dictionary(str(path or default_dictionary_path()))

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and (word in self._prons or word in self._extra)

    def __len__(self) -> int:
        return len(self._prons) + len(self._extra)

    def phones(self, word: str) -> str | None:
        """The main pronunciation of ``word`` (None if unknown)."""
        prons = self.pronunciations(word)
        return prons[0] if prons else None

    def pronunciations(self, word: str) -> tuple[str, ...]:
        return tuple(self._prons.get(word) or self._extra.get(word) or ())

    def in_cmudict(self, word: str) -> bool:
        return word in self._prons

    def pronounce(self, word: str) -> str | None:
        """Phones for ``word``; a missing compound is spelt from two dictionary words (remembered
        in :attr:`added`). None: not sayable."""
        got = self.phones(word)
        if got is not None:
            return got
        if "'" in word or len(word) < 6:
            return None
        for cut in range(3, len(word) - 2):
            head, tail = self._prons.get(word[:cut]), self._prons.get(word[cut:])
            if head and tail:
                self._extra[word] = [f"{head[0]} {tail[0]}"]
                return self._extra[word][0]
        return None

    @property
    def added(self) -> dict[str, str]:
        """Words spelt from parts by :meth:`pronounce`, with their phones."""
        return {w: p[0] for w, p in self._extra.items()}

    def lexicon(self, words: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(word, pronunciations) for each sayable word, sorted: what a decoder must know."""
        out: dict[str, tuple[str, ...]] = {}
        for word in words:
            if word not in out and self.pronounce(word) is not None:
                out[word] = self.pronunciations(word)
        return tuple(sorted(out.items()))


@functools.lru_cache(maxsize=4)
def _load_dictionary(path: str) -> PronunciationDictionary:
    entries: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                continue
            word = parts[0]
            if word.endswith(")") and "(" in word:  # alternative pronunciation: "read(2)"
                word = word[: word.index("(")]
            entries.setdefault(word, []).append(parts[1].strip())
    return PronunciationDictionary(entries)


# ------------------------------------------------------------------ text to recogniser words

_TOKEN: Final = re.compile(r"[a-z0-9]+(?:['.\-][a-z0-9]+)*\.?")


def words_of(text: str) -> list[str]:
    """Lower-case recogniser words: numerals spelt digit by digit, punctuation dropped ("I'd" kept)."""
    text = text.lower().replace("’", "'").replace("&", " and ")
    text = re.sub(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)", " ", text)  # "9am" -> "9 am"
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        if tok.endswith(".") and tok not in ("a.m.", "p.m."):
            tok = tok[:-1]
        if tok.isdigit():
            out.extend(DIGITS[int(c)] for c in tok)
        elif tok in ("am", "pm") or tok in ("a.m", "p.m"):
            out.append(tok[0] + ".m.")
        else:
            out.append(tok)
    return out


def _sayable(words: Sequence[str], dictionary: PronunciationDictionary | None) -> bool:
    return dictionary is None or all(dictionary.pronounce(w) is not None for w in words)


# ------------------------------------------------------------------ JSGF

# Commands a closed grammar also accepts: asking for a person. A longer list ("repeat that", "goodbye",
# ...) cost yes/no accuracy on synthetic callers (88 % against 92 %: "correct" heard as "repeat that").
COMMAND_GRAMMAR_PHRASES: Final = (*PERSON_TITLES, "speak to a person", "a real person")
# The yes/no grammar's answers: short on purpose (every extra phrase is one more thing a closed
# grammar can mistake a caller for); the parser (conversation.slots.yes_no) reads many more. Not "go ahead":
# on a held-out yes/no set (devtools/data/yes_no_heldout.yaml) it was where noisy noes and hedges landed ("no,
# that's not it", "no no no", "I'm not really sure" -> "go ahead"): without it non-yes answers heard as yes
# 8 -> 3 of 74 and right 65 -> 67 of 104; the shipped phone set unchanged (71 of 98, 0 of 62 as yes).
YES_GRAMMAR_PHRASES: Final = (
    "yes", "yeah", "yep", "yup", "yes please", "sure", "correct", "that's correct", "that's right",
    "right", "of course", "absolutely", "okay", "yes it is", "it is", "i do",
)
NO_GRAMMAR_PHRASES: Final = (
    "no", "nope", "nah", "no thanks", "no thank you", "not really", "that's wrong", "incorrect",
    "no it isn't", "it isn't", "i don't", "that's not right", "not now",
)
# Answers that are neither (hedges, waits, questions back): without them the closed grammar forces a hedge
# into the nearest yes or no ("sort of" -> "sure", "could be" -> "it is", "hold on, let me check" ->
# "go ahead"). Measured with the phone set's 98 yes/no utterances (docs/speech-bench.md): non-yes answers
# heard as yes 14 -> 1 of 62. The parser (conversation.slots.yes_no) reads all of these as unclear.
UNCLEAR_GRAMMAR_PHRASES: Final = (
    "maybe", "perhaps", "probably", "possibly", "i'm not sure", "not sure", "i don't know", "i guess",
    "i think so", "i suppose", "could be", "kind of", "sort of", "wait", "hold on", "hang on", "one moment",
    "let me check", "let me think", "what do you mean", "which one", "sorry", "pardon", "i don't understand",
    "it depends",
)
_JSGF_SPECIAL: Final = re.compile(r"[;=|*+<>()\[\]{}/\"\\]")
# Words callers put before a digit string ("it's one two three four", "um, my number is ..."): optional
# before the answer of a digits grammar, so a carrier is not forced into the answer ("it's" heard as
# "six"). Measured with `ari-agent bench stt`: 4-digit strings right 19 -> 38 of 80 (docs/speech-bench.md).
FILLER_GRAMMAR_PHRASES: Final = ("uh", "um", "er")
LEAD_GRAMMAR_PHRASES: Final = (
    *FILLER_GRAMMAR_PHRASES, "it's", "it is", "that's", "that is", "yeah it's", "i think it's", "that would be",
)
NUMBER_LEAD_GRAMMAR_PHRASES: Final = (
    "my number is", "my number's", "the number is", "my order number is", "the order number is",
    "my customer number is", "my account number is", "number",
)


def _alternatives(phrases: Iterable[str], dictionary: PronunciationDictionary | None) -> str | None:
    seen: dict[str, None] = {}
    for phrase in phrases:
        words = [w for w in words_of(_JSGF_SPECIAL.sub(" ", phrase)) if w]
        if not words:
            continue
        if not _sayable(words, dictionary):
            log.warning("grammar: dropped %r: a word is not in the pronunciation dictionary", phrase)
            continue
        seen.setdefault(" ".join(words), None)
    return " | ".join(seen) if seen else None


def _leads(kind: str, dictionary: PronunciationDictionary | None) -> str | None:
    """The optional carrier before a digits answer (None: the kind takes none)."""
    if kind == "digits":
        return _alternatives((*LEAD_GRAMMAR_PHRASES, *NUMBER_LEAD_GRAMMAR_PHRASES), dictionary)
    return None


def _word_rule(words: Iterable[str], dictionary: PronunciationDictionary | None) -> str:
    return " | ".join(w for w in words if dictionary is None or dictionary.pronounce(w) is not None)


def _digits_body(expect: Expectation) -> tuple[str, dict[str, str]]:
    """Digit strings with a bounded count: ``min_digits`` .. ``max_digits`` items (1..12 if unset),
    where "double"/"triple" items stand for two or three digits. Bounding the count beat an open
    ``<item>+`` loop on synthetic callers (4-digit strings fully right: 72 % against 56 %) and keeps
    the end-of-utterance lattice small (finish p90 ~20 ms instead of ~110 ms)."""
    lo = max(1, expect.min_digits or 1)
    hi = max(lo, expect.max_digits or 12)
    lo_items = -(-lo // 3)  # "triple five" is three digits in one item
    body = " ".join(["<item>"] * lo_items + ["[<item>]"] * (hi - lo_items))
    rules = {
        "digit": " | ".join(("zero", "oh", *UNITS)),
        "item": "[double | triple] <digit>",
    }
    return body, rules


def _number_rules() -> dict[str, str]:
    return {
        "unit": " | ".join(UNITS),
        "teen": " | ".join(TEENS),
        "tens": " | ".join(TENS),
        "small": "<unit> | <teen> | <tens> [<unit>]",
        "number": "zero | <small> | (a | <unit>) hundred [[and] <small>] "
                  "| <small> thousand [(a | <unit>) hundred] [[and] <small>]",
    }


def jsgf_for(expect: Expectation, dictionary: PronunciationDictionary | None = None,
             name: str = "turn") -> str | None:
    """A closed JSGF grammar for ``expect``, or None where no closed grammar fits (open, free text)."""
    rules: dict[str, str] = {}
    kind = expect.kind
    answer: str | None
    extra: str | None
    if kind == "yes_no":
        rules["yes"] = _alternatives(YES_GRAMMAR_PHRASES, dictionary) or "yes"
        rules["no"] = _alternatives(NO_GRAMMAR_PHRASES, dictionary) or "no"
        answer = "<yes> | <no>"
        unclear = _alternatives(UNCLEAR_GRAMMAR_PHRASES, dictionary)
        if unclear is not None:
            rules["unclear"] = unclear
            answer += " | <unclear>"
        extra = _alternatives(expect.phrases, dictionary)  # other answers the engine accepts here
        if extra is not None:
            rules["other"] = extra
            answer += " | <other>"
    elif kind == "digits":
        answer, digit_rules = _digits_body(expect)
        rules.update(digit_rules)
    elif kind == "number":
        rules.update(_number_rules())
        answer = "<number>"
    elif kind == "date":
        rules["weekday"] = _word_rule(WEEKDAYS, dictionary)
        rules["month"] = _word_rule(MONTHS, dictionary)
        ordinals = [*ORDINAL_UNITS, *ORDINAL_TEENS, *ORDINAL_TENS, *(f"twenty {o}" for o in ORDINAL_UNITS),
                    "thirty first"]
        rules["ordinal"] = " | ".join(ordinals)
        rules["relative"] = "today | tomorrow | the day after tomorrow | next week | in a week | in two weeks"
        answer = ("[on] (<relative> | [this | next] <weekday> [morning | afternoon] "
                  "| [the] <ordinal> [of <month>] | <month> [the] <ordinal> | <weekday> [the] <ordinal> [of <month>])")
    elif kind == "time":
        rules["unit"] = " | ".join(UNITS)
        rules["teen"] = " | ".join(TEENS)
        rules["hour"] = " | ".join((*UNITS, "ten", "eleven", "twelve"))
        rules["minute"] = "o'clock | oh <unit> | <teen> | (twenty | thirty | forty | fifty) [<unit>]"
        rules["meridiem"] = "a.m. | p.m. | in the morning | in the afternoon | in the evening"
        answer = ("[at] (<hour> [<minute>] [<meridiem>] | half past <hour> [<meridiem>] "
                  "| quarter (past | to) <hour> [<meridiem>] | noon | midday | midnight | any time)")
    elif kind == "choice":
        options = _alternatives(expect.choices or expect.phrases, dictionary)
        if options is None:
            return None
        rules["option"] = options
        answer = "[the] <option> [one] [please]"
    elif kind == "letters":
        # (Digit words and carriers here, for postcodes, were measured with `ari-agent bench stt`: 0 -> 1 of
        # 80 postcodes right, CPU per audio second 0.57 -> 1.0; not kept. docs/speech-bench.md)
        rules["letter"] = _word_rule("abcdefghijklmnopqrstuvwxyz", dictionary)
        rules["nato"] = _word_rule(NATO_ALPHABET, dictionary)
        answer = "(<letter> [(as in | for) <nato>] | <nato> | double <letter>)+"
    else:  # open / free text: a language model, not a closed grammar
        return None
    leads = _leads(kind, dictionary)
    if leads is not None:
        rules["lead"] = leads
        answer = f"[<lead>] ({answer})"
    command = _alternatives(COMMAND_GRAMMAR_PHRASES, dictionary)
    body = "<answer> | <command>" if command else "<answer>"
    lines = ["#JSGF V1.0;", f"grammar {name};", f"public <{name}> = {body};", f"<answer> = {answer};"]
    if command:
        lines.append(f"<command> = {command};")
    lines.extend(f"<{rule}> = {expansion};" for rule, expansion in rules.items())
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ domain trigram LM (ARPA)

CARRIER_PHRASES: Final = (
    "hello", "hi", "hi there", "yes", "no", "yes please", "no thanks", "thank you", "thanks",
    "please", "sorry", "okay", "goodbye",
    "i need some help", "can you help me", "can you help me with something", "i have a question",
    "i have a question about my account", "i'm calling about my account", "i'm calling because",
    "i was wondering if you could help me", "i would like to", "i'd like to", "i want to", "i need to",
    "could you tell me", "can you tell me", "can i", "could i", "do you know", "is it possible to",
    "i'm trying to", "it's about", "it's about my", "what about", "how do i", "how can i",
    "when is", "where is", "what is", "why is", "it was", "it is", "it isn't", "i don't know",
    "i think", "my name is", "the number is", "my number is", "that's all", "that's it",
    "nothing else", "never mind", "repeat that", "say that again", "start over",
    "agent", "operator", "representative", "speak to a person", "talk to someone",
)


@dataclass(frozen=True)
class DomainLm:
    arpa: str
    vocabulary: frozenset[str]
    oov: tuple[str, ...]  # words dropped because the dictionary cannot say them
    sentences: int
    added_words: tuple[tuple[str, str], ...] = ()  # compounds spelt from parts: (word, phones)


def _sentences(phrases: Iterable[str], dictionary: PronunciationDictionary | None) -> tuple[list[list[str]], list[str]]:
    """Phrases -> word lists, split at out-of-dictionary words (which are reported)."""
    out: list[list[str]] = []
    oov: dict[str, None] = {}
    for phrase in phrases:
        current: list[str] = []
        for word in words_of(phrase):
            if dictionary is not None and dictionary.pronounce(word) is None:
                oov.setdefault(word, None)
                if current:
                    out.append(current)
                current = []
                continue
            current.append(word)
        if current:
            out.append(current)
    return out, list(oov)


def _discount(counts: Iterable[int]) -> float:
    """Absolute discount from counts of counts: D = n1 / (n1 + 2 n2) (Ney et al.), kept in [0.1, 0.9]."""
    n1 = n2 = 0
    for c in counts:
        if c == 1:
            n1 += 1
        elif c == 2:
            n2 += 1
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(0.9, max(0.1, n1 / (n1 + 2 * n2)))


def build_arpa(sentences: Sequence[Sequence[str]], order: int = 3) -> str:
    """Interpolated Kneser-Ney n-gram model over ``sentences`` (word lists), as ARPA text.

    Highest order: raw counts; lower orders: continuation counts (how many distinct words precede),
    except n-grams starting with ``<s>``, which nothing can precede (raw counts, as SRILM does).
    The unigram level interpolates with the uniform distribution over the vocabulary. For
    interpolated KN written as a backoff model, each context's backoff weight equals its
    interpolation weight gamma(h) = D * distinct(h) / total(h), and the stored probabilities are the
    interpolated ones, so every context's distribution sums to one.
    """
    if order < 1:
        raise ValueError("order must be >= 1")
    raw: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    for sent in sentences:
        if not sent:
            continue
        toks = [BOS, *sent, EOS]
        for n in range(1, order + 1):
            for i in range(len(toks) - n + 1):
                raw[n][tuple(toks[i : i + n])] += 1
    if not raw[1]:
        raise ValueError("no sentences to build a language model from")

    # Modified counts per order: raw for the top order and for <s>-initial n-grams, else continuation.
    counts: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for n in range(1, order):
        cont: dict[tuple[str, ...], int] = defaultdict(int)
        for gram in raw[n + 1]:
            cont[gram[1:]] += 1
        for gram, c in raw[n].items():
            if gram[0] == BOS:
                counts[n][gram] = c
            elif gram in cont:
                counts[n][gram] = cont[gram]
    counts[1].pop((BOS,), None)  # <s> is never predicted

    vocab = sorted({g[0] for g in raw[1]})
    predicted = [w for w in vocab if w != BOS]
    discounts = [0.0] + [_discount(counts[n].values()) for n in range(1, order + 1)]

    # Context totals and distinct continuations per order.
    totals: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    distinct: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    for n in range(1, order + 1):
        for gram, c in counts[n].items():
            totals[n][gram[:-1]] += c
            distinct[n][gram[:-1]] += 1

    def gamma(n: int, ctx: tuple[str, ...]) -> float:
        return discounts[n] * distinct[n][ctx] / totals[n][ctx]

    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    uniform = 1.0 / len(predicted)
    total1 = totals[1][()]
    for w in predicted:
        c = counts[1].get((w,), 0)
        probs[1][(w,)] = max(c - discounts[1], 0.0) / total1 + gamma(1, ()) * uniform

    def lower(n: int, gram: tuple[str, ...]) -> float:
        """p_n(gram) for any gram at order n, backing off through the model (used for interpolation)."""
        if n == 1:
            return probs[1].get(gram, 0.0)
        got = probs[n].get(gram)
        if got is not None:
            return got
        ctx = gram[:-1]
        bow = gamma(n, ctx) if totals[n].get(ctx) else 1.0
        return bow * lower(n - 1, gram[1:])

    for n in range(2, order + 1):
        d = discounts[n]
        for gram, c in sorted(counts[n].items()):
            ctx = gram[:-1]
            probs[n][gram] = max(c - d, 0.0) / totals[n][ctx] + gamma(n, ctx) * lower(n - 1, gram[1:])

    def log10(p: float) -> str:
        return f"{math.log10(p):.6f}" if p > 0 else "-99.000000"

    lines = ["\\data\\"]
    grams_per_order: list[list[tuple[str, ...]]] = [[]] + [sorted(probs[n]) for n in range(1, order + 1)]
    grams_per_order[1] = [(BOS,), *grams_per_order[1]]
    lines.extend(f"ngram {n}={len(grams_per_order[n])}" for n in range(1, order + 1))
    for n in range(1, order + 1):
        lines.append("")
        lines.append(f"\\{n}-grams:")
        for gram in grams_per_order[n]:
            p = 0.0 if gram == (BOS,) else probs[n][gram]
            entry = f"{log10(p)} {' '.join(gram)}"
            if n < order and totals[n + 1].get(gram):
                entry += f" {math.log10(gamma(n + 1, gram)):.6f}"
            lines.append(entry)
    lines.append("")
    lines.append("\\end\\")
    return "\n".join(lines) + "\n"


def build_domain_lm(
    phrases: Iterable[str],
    dictionary: PronunciationDictionary | None = None,
    carrier: Iterable[str] = CARRIER_PHRASES,
    order: int = 3,
) -> DomainLm:
    """A trigram LM from a domain's example phrases plus generic carrier phrases."""
    if dictionary is None:
        dictionary = PronunciationDictionary.load()
    sentences, oov = _sentences([*phrases, *carrier], dictionary)
    if oov:
        log.warning("domain LM: %d word(s) not in the pronunciation dictionary, never recognised: %s",
                    len(oov), ", ".join(oov[:20]))
    arpa = build_arpa(sentences, order=order)
    vocab = frozenset(w for s in sentences for w in s)
    added = tuple(sorted((w, p) for w, p in dictionary.added.items() if w in vocab))
    return DomainLm(arpa=arpa, vocabulary=vocab, oov=tuple(oov), sentences=len(sentences), added_words=added)


@dataclass
class ArpaModel:
    """ARPA text parsed into a small scorer (for tests and checks; not for decoding)."""

    order: int
    logp: dict[tuple[str, ...], float] = field(default_factory=dict)
    bow: dict[tuple[str, ...], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> ArpaModel:
        model = cls(order=0)
        n = 0
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            m = re.fullmatch(r"\\(\d+)-grams:", line)
            if m:
                n = int(m.group(1))
                model.order = max(model.order, n)
                continue
            parts = line.split()
            gram = tuple(parts[1 : 1 + n])
            model.logp[gram] = float(parts[0])
            if len(parts) > n + 1:
                model.bow[gram] = float(parts[n + 1])
        return model

    def log10_prob(self, word: str, history: Sequence[str]) -> float:
        hist = tuple(history[-(self.order - 1) :]) if self.order > 1 else ()
        penalty = 0.0
        while True:
            gram = (*hist, word)
            if gram in self.logp:
                return penalty + self.logp[gram]
            if not hist:
                return -math.inf
            penalty += self.bow.get(hist, 0.0)
            hist = hist[1:]

    @property
    def vocabulary(self) -> list[str]:
        return [g[0] for g in self.logp if len(g) == 1]


# ------------------------------------------------------------------ search specs + cache


@dataclass(frozen=True)
class SearchSpec:
    """One recogniser search: a closed grammar, a domain LM, or the engine's generic model."""

    kind: Literal["jsgf", "lm", "generic"]
    name: str  # stable: derived from the content hash
    text: str = ""  # JSGF or ARPA text
    words: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the search's vocabulary with pronunciations
    oov: tuple[str, ...] = ()


def jsgf_words(grammar: str) -> list[str]:
    """The words (terminals) of a JSGF grammar."""
    out: list[str] = []
    for statement in grammar.split(";"):
        _, eq, expansion = statement.partition("=")
        if not eq:
            continue
        expansion = re.sub(r"<[^>]*>", " ", expansion)
        out.extend(w for w in re.split(r"[\s|()\[\]*+]+", expansion) if w)
    return out


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def expectation_key(expect: Expectation) -> str:
    """Content hash of what shapes the search (slot and keypad flag do not)."""
    return _digest(expect.kind, "\x1f".join(expect.phrases), "\x1f".join(expect.choices),
                   str(expect.min_digits), str(expect.max_digits))


class SearchCache:
    """Builds and memoises searches by content hash; LM files are written under ``directory``."""

    def __init__(self, dictionary: PronunciationDictionary | None = None, directory: Path | None = None) -> None:
        self.dictionary = dictionary or PronunciationDictionary.load()
        self.directory = directory
        self._specs: dict[str, SearchSpec] = {}

    def spec_for(self, expect: Expectation) -> SearchSpec:
        key = expectation_key(expect)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._build(expect)
            self._specs[key] = spec
        return spec

    def _build(self, expect: Expectation) -> SearchSpec:
        grammar = jsgf_for(expect, self.dictionary)
        if grammar is not None:
            return SearchSpec(kind="jsgf", name=f"g{_digest(grammar)}", text=grammar,
                              words=self.dictionary.lexicon(jsgf_words(grammar)))
        if expect.kind == "open" and expect.phrases:
            lm = build_domain_lm(expect.phrases, self.dictionary)
            return SearchSpec(kind="lm", name=f"lm{_digest(lm.arpa)}", text=lm.arpa,
                              words=self.dictionary.lexicon(lm.vocabulary), oov=lm.oov)
        return SearchSpec(kind="generic", name="generic")

    def lm_path(self, spec: SearchSpec) -> Path:
        """The ARPA file of an LM search (written once, atomically, named by content hash)."""
        directory = self.directory or Path(tempfile.gettempdir()) / f"ari-agent-lm-{os.getuid()}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{spec.name}.arpa"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(spec.text)
            os.replace(tmp, path)
        return path
