"""Which tokens whisper may write next when a turn's answer must be a UK postcode: a constrained decode.

Whisper tiny.en writes a spelled postcode on the phone line as near misses ("S-t-a-b-a-a-a", "And one one
eighty.", "ID1H2NA"). Decoded again with every step limited to what can still become a postcode, the same
audio gives a code more often: the constraint of :class:`PostcodeConstraint` allows

- a short lead of carrier words first ("My postcode is", "It's", "Uh,"): :data:`LEAD_WORDS`, spelled by
  the tokenizer's word pieces;
- then code tokens: upper-case letters and digits, at most four to a token (" SW", "1", "A", " 1AA"),
  each only while the characters so far are still the beginning of a postcode
  (``ari_agent.uk_postcodes.could_start``: the shapes, the letters each position allows, the postcode
  areas), with separators between them (" ", ",", ".", "-"; never two in a row, at most
  :data:`MAX_SEPARATORS`);
- the end of text only once the characters make a whole postcode.

Everything else is masked out. :meth:`PostcodeConstraint.value` reads the code back from the tokens. Pure
logic over the model's vocabulary (the token texts): the whisper worker applies it through
``speech/whisper_lib.py``'s logits filter. Masks are cached by what decides the next step: the letters so
far while in the area, then the area's kind and the pattern of what followed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from ari_agent.uk_postcodes import LETTER_DISTRICT_AREAS, compact, could_start, is_postcode, split_area

Mask = npt.NDArray[np.bool_]

LEAD_WORDS: Final = frozenset("my the post postcode code is it's its it that's thats yes yeah uh um er erm sure so "
                              "well okay".split())
MAX_LEAD_WORDS: Final = 6
MAX_SEPARATORS: Final = 10
_LEAD_PREFIXES: Final = frozenset(w[:k] for w in LEAD_WORDS for k in range(1, len(w) + 1))
_CODE_TOKEN: Final = re.compile(r" ?[A-Z0-9]{1,4}[,.\-]?")
_SEPARATOR_TOKEN: Final = re.compile(r"[ ,.\-]+")
_WORD_TOKEN: Final = re.compile(r" ?[A-Za-z']{1,8}[,.]?")
_LEAD_SPLIT: Final = re.compile(r"[ ,.]+")


class PostcodeConstraint:
    """The tokens allowed next in a decode that must write a UK postcode (see the module docstring)."""

    def __init__(self, token_texts: Sequence[str | None], eot: int) -> None:
        self.n_vocab = len(token_texts)
        self.eot = eot
        self.chars: dict[int, str] = {}
        self.separators = np.zeros(self.n_vocab, dtype=bool)
        self.lead: dict[int, str] = {}
        for t, text in enumerate(token_texts[:eot]):
            if text is None or not text:
                continue
            if _SEPARATOR_TOKEN.fullmatch(text):
                self.separators[t] = True
            elif _CODE_TOKEN.fullmatch(text):
                self.chars[t] = re.sub(r"[^A-Z0-9]", "", text)
            elif _lead_piece(text):
                self.lead[t] = text
        self._code_ids = np.array(sorted(self.chars), dtype=np.int64)
        self.code_tokens = np.zeros(self.n_vocab, dtype=bool)
        self.code_tokens[self._code_ids] = True
        self._code_chars = [self.chars[int(t)] for t in self._code_ids]
        self._code_masks: dict[tuple[object, ...], Mask] = {}
        self._lead_masks: dict[str, Mask] = {}

    def allowed(self, ids: Sequence[int]) -> Mask:
        """The tokens that may follow ``ids`` (the text tokens written so far, in order)."""
        lead, code, separators, last_separator = self._read(ids)
        mask = self._lead_mask(lead) if not code and lead is not None else self._code_mask(code)
        if last_separator or separators >= MAX_SEPARATORS:
            mask = mask & ~self.separators
        return mask

    def exactly(self, code: str) -> Callable[[Sequence[int]], Mask]:
        """A filter that lets the decode write only ``code`` ("SW1A1AA"; any lead, spacing and split into
        tokens the postcode filter allows): for scoring the audio against a code on record."""
        code = compact(code)

        def allowed(ids: Sequence[int]) -> Mask:
            mask = self.allowed(ids).copy()
            so_far = self._read(ids)[1]
            mask[self.eot] = mask[self.eot] and so_far == code
            for t in np.flatnonzero(mask & self.code_tokens):
                if not code.startswith(so_far + self.chars[int(t)]):
                    mask[t] = False
            return mask

        return allowed

    def rivals(self, ids: Sequence[int]) -> Mask:
        """The code tokens the postcode filter allows after ``ids``: what a written code token competes with."""
        return self.allowed(ids) & self.code_tokens

    def value(self, ids: Sequence[int]) -> str | None:
        """The postcode the tokens spell ("SW1A1AA"), or None when they make no whole one."""
        _, code, _, _ = self._read(ids)
        return code if is_postcode(code) else None

    def _read(self, ids: Sequence[int]) -> tuple[str | None, str, int, bool]:
        """(the lead's text, None once the code has begun; the code's characters; separators; whether the
        last token was one)."""
        lead: str | None = ""
        code = ""
        separators = 0
        last_separator = False
        for t in ids:
            chars = self.chars.get(t)
            if chars is None and lead is not None and t in self.lead:
                lead += self.lead[t]
                continue
            if chars is None:
                separators += 1
                last_separator = True
            else:
                code += chars
                lead = None
                last_separator = False
        return lead, code, separators, last_separator

    def _code_mask(self, code: str) -> Mask:
        key = _key(code)
        mask = self._code_masks.get(key)
        if mask is None:
            mask = self.separators.copy()
            fits = np.fromiter((could_start(code + c) for c in self._code_chars), dtype=bool,
                               count=len(self._code_chars))
            mask[self._code_ids[fits]] = True
            if is_postcode(code):
                mask[self.eot] = True
            self._code_masks[key] = mask
        return mask

    def _lead_mask(self, lead: str) -> Mask:
        mask = self._lead_masks.get(lead)
        if mask is None:
            mask = np.zeros(self.n_vocab, dtype=bool)
            for t, text in self.lead.items():
                if _lead_state(lead + text) is not None:
                    mask[t] = True
            if _lead_state(lead):
                mask |= self._code_mask("")
            self._lead_masks[lead] = mask
        return mask


def _lead_piece(text: str) -> bool:
    """A token that can spell part of a lead word: " My", "It", "'s", " post", "code," ..."""
    if _WORD_TOKEN.fullmatch(text) and text.strip(" ,.").lower() in _LEAD_PREFIXES:
        return True
    return bool(re.fullmatch(r"[a-z']{1,6}", text)) and any(w.find(text) > 0 for w in LEAD_WORDS)


def _lead_state(text: str) -> bool | None:
    """None: ``text`` is no lead; True: a whole one (the code may begin); False: a lead word half spelled."""
    words = _LEAD_SPLIT.split(text.lower())
    partial, done = words[-1], [w for w in words[:-1] if w]
    if len(done) > MAX_LEAD_WORDS or any(w not in LEAD_WORDS for w in done):
        return None
    if partial == "" or partial in LEAD_WORDS:
        return True
    return False if partial in _LEAD_PREFIXES else None


def _key(code: str) -> tuple[object, ...]:
    """What decides which characters may follow ``code``: the area letters while in the area, then the area's
    kind and the pattern of the rest (digits 9, letters A)."""
    area, rest = split_area(code)
    if not rest:
        return ("area", area)
    return ("rest", len(area), area in LETTER_DISTRICT_AREAS,
            "".join("9" if c.isdigit() else "A" for c in rest))
