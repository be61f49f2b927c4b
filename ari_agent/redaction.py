"""Redaction of personal data from transcripts and log lines, before anything is stored or logged.

Pure (no I/O). Callers' words come from speech recognition, so every detector reads both the written
form ("4111 1111 1111 1111", "john.smith@gmail.com", "30/09/1990") and the spoken one ("four one one
one ...", "double four", "oh", "forty one eleven", "john dot smith at gmail dot com", "september
thirtieth nineteen ninety", "q q one two ... c"). What is found is replaced by its label
(``[CARD]``, ``[CVV]``, ``[EXPIRY]`` (a card's), ``[SSN]``, ``[NINO]``, ``[DOB]``, ``[EMAIL]``,
``[PHONE]``, ``[ACCOUNT]``, ``[PIN]``, ``[POSTCODE]``, ``[SECRET]``, or a configured extra label); the
rest of the line is kept as it was, so a transcript stays readable.

How it works: the line is split into tokens (digit groups, words, single symbols; an earlier
placeholder such as ``[CARD]`` is one token). Spoken and written digits are read into *number runs*
(``"four one, double one"`` -> ``4111``); a run is classified by its digits (Luhn-valid 13-19 digits is a
card anywhere; a UK/US/E.164 phone shape; 9+ other digits is an account-like number) and by the nearest
keyword in the eight words before it ("cvv", "pin", "date of birth", "order" ...). Keywords whose value
is not a number (a maiden name, a password, a postcode, a date said with a month name, a NI number)
are followed by a small parser. Everything is linear in the line: token scans, and regexes whose
repeats are bounded, so a 100 kB line cannot make a pattern backtrack without end.

Decisions: a 13-19 digit number that fails the Luhn check is redacted as ``[ACCOUNT]`` (it is an
account-like identifier, or a card misheard: either way it is personal), as ``[CARD]`` when the caller
said "card" just before it. Any other run of 9 or more digits is ``[ACCOUNT]`` unless an order-like word
("order", "tracking", "invoice" ...) is nearest before it. Order numbers, prices, times and quantities
under 9 digits are left alone. Redaction is idempotent: placeholders are never matched again and they
bound the keyword context as the original value did.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from ari_agent.spoken_words import DIGITS, MONTHS, NATO_ALPHABET, ORDINAL_TEENS, ORDINAL_UNITS, TEENS, TENS

LABELS: Final = ("CARD", "CVV", "EXPIRY", "SSN", "NINO", "DOB", "EMAIL", "PHONE", "ACCOUNT", "PIN", "POSTCODE",
                  "SECRET")
"""The built-in labels; configured extra patterns bring their own."""

LABEL_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,19}")
"""What a label may be (upper case, so its placeholder is never read as a word again)."""


@dataclass(frozen=True)
class Finding:
    """One redacted span of the original text: ``text[start:end]`` becomes ``[label]``."""

    start: int
    end: int
    label: str

    @property
    def placeholder(self) -> str:
        return f"[{self.label}]"


# --- tokens -----------------------------------------------------------------------------------------

_P, _N, _W, _S = 0, 1, 2, 3  # placeholder, ascii digits, word, one symbol
_TOKEN_RE = re.compile(r"\[[A-Z][A-Z0-9_]{0,19}\]|[0-9]+|[^\W\d_]+(?:['’][^\W\d_]+)*|\S")


@dataclass(frozen=True)
class _Tok:
    kind: int
    text: str
    low: str
    start: int
    end: int


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    for m in _TOKEN_RE.finditer(text):
        s = m.group()
        c = s[0]
        if c == "[" and len(s) > 2:
            kind = _P
        elif "0" <= c <= "9":
            kind = _N
        elif c.isalpha():
            kind = _W
        else:
            kind = _S
        out.append(_Tok(kind, s, s.lower().replace("’", "'"), m.start(), m.end()))
    return out


def _glued(toks: Sequence[_Tok], i: int) -> bool:
    """Token ``i`` (digits) touches a word on either side: part of an id like "ab123", "10th", "sw1a"."""
    t = toks[i]
    if i > 0 and toks[i - 1].end == t.start and toks[i - 1].kind in (_W, _N):
        return True
    if i > 1 and toks[i - 1].text in "-_" and toks[i - 1].end == t.start and toks[i - 2].end == toks[i - 1].start \
            and toks[i - 2].kind == _W:
        return True  # "AB-123456"
    return i + 1 < len(toks) and toks[i + 1].start == t.end and toks[i + 1].kind in (_W, _N)


# --- spoken digits ----------------------------------------------------------------------------------

_DIGIT_WORD: Final = {w: str(i) for i, w in enumerate(DIGITS)} | {"oh": "0", "o": "0", "nought": "0"}
_TEEN_WORD: Final = {w: str(10 + i) for i, w in enumerate(TEENS)}
_TENS_WORD: Final = {w: str(20 + 10 * i) for i, w in enumerate(TENS)} | {"fourty": "40"}
_REPEAT: Final = {"double": 2, "triple": 3}
_FILLERS: Final = frozenset({"um", "uh", "er", "erm", "ah", "hmm", "mm", "uhm", "umm"})
# U+FFFD too: a byte that was not UTF-8 inside a number must not split it into harmless-looking halves.
_PASSES: Final = 4  # redaction passes over its own result (Redactor.redact_with_findings)
_RUN_SEPS: Final = frozenset({"-", ",", "/", "(", ")", "–", "—", "\ufffd"})


def _digit_unit(toks: Sequence[_Tok], i: int) -> tuple[str, int, bool] | None:
    """The digits that start at token ``i``: (digits, index after, spoken)."""
    t = toks[i]
    if t.kind == _N:
        return None if _glued(toks, i) else (t.text, i + 1, False)
    if t.kind != _W:
        return None
    w = t.low
    if w in _DIGIT_WORD:
        return _DIGIT_WORD[w], i + 1, True
    if w in _TEEN_WORD:
        return _TEEN_WORD[w], i + 1, True
    if w in _TENS_WORD:
        j = i + 1
        if j < len(toks) and toks[j].text == "-" and j + 1 < len(toks):
            j += 1
        if j < len(toks) and toks[j].low in _DIGIT_WORD and toks[j].low not in ("zero", "oh", "o", "nought"):
            return _TENS_WORD[w][0] + _DIGIT_WORD[toks[j].low], j + 1, True
        return _TENS_WORD[w], i + 1, True
    if w in _REPEAT and i + 1 < len(toks):
        nxt = _digit_unit(toks, i + 1)
        if nxt is not None and len(nxt[0]) == 1:
            return nxt[0] * _REPEAT[w], nxt[1], True
    return None


def _dot_between_digits(toks: Sequence[_Tok], k: int) -> bool:
    """A "." written between two digit groups with no spaces ("30.09.1990"), not a full stop."""
    return (0 < k < len(toks) - 1 and toks[k - 1].kind == _N and toks[k + 1].kind == _N
            and toks[k - 1].end == toks[k].start and toks[k].end == toks[k + 1].start)


@dataclass
class _Run:
    first: int  # token index of the first unit
    last: int  # token index after the last unit
    start: int
    end: int
    digits: str
    groups: list[int]
    seps: set[str]
    spoken: bool
    plus: bool


def _runs(toks: Sequence[_Tok]) -> list[_Run]:
    runs: list[_Run] = []
    i, n = 0, len(toks)
    while i < n:
        unit = _digit_unit(toks, i)
        if unit is None:
            i += 1
            continue
        first = i
        digits, groups, spoken, seps = [unit[0]], [len(unit[0])], unit[2], set()
        only_oh = toks[i].low in ("oh", "o")
        last = unit[1]
        j = last
        while j < n:
            k = j
            gap: set[str] = set()
            while k < n and k - j < 3 and (toks[k].text in _RUN_SEPS or toks[k].low in _FILLERS
                                          or (toks[k].text == "." and _dot_between_digits(toks, k))):
                if toks[k].kind == _S:
                    gap.add(toks[k].text)
                k += 1
            if k >= n:
                break
            nxt = _digit_unit(toks, k)
            if nxt is None:
                break
            digits.append(nxt[0])
            groups.append(len(nxt[0]))
            spoken = spoken or nxt[2]
            only_oh = only_oh and toks[k].low in ("oh", "o")
            seps |= gap
            last = j = nxt[1]
        if not only_oh:
            plus = first > 0 and (toks[first - 1].text == "+" or toks[first - 1].low == "plus")
            runs.append(_Run(first, last, toks[first].start, toks[last - 1].end, "".join(digits), groups, seps,
                             spoken, plus))
        i = last
    return runs


def luhn_ok(digits: str) -> bool:
    total = 0
    for k, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if k % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _nanp(d: str) -> bool:
    return len(d) == 10 and d[0] in "23456789"


def _phone_shape(d: str, plus: bool) -> bool:
    if plus:
        return 8 <= len(d) <= 15
    if len(d) == 11 and d[0] == "0" and d[1] in "1237":
        return True
    if len(d) == 10 and d[0] == "0" and d[1] in "12":
        return True
    if _nanp(d) or (len(d) == 11 and d[0] == "1" and _nanp(d[1:])):
        return True
    return len(d) in (12, 13) and d.startswith("44") and d[2] in "1237"


# --- keywords -----------------------------------------------------------------------------------------

def _kw(words: str) -> str:
    """One pattern for a keyword list, longest alternatives first ("social security number" before "social")."""
    alts = sorted(words.split("|"), key=len, reverse=True)
    return r"\b(?:" + "|".join(alts) + r")\b"


# Nearest keyword before a number run decides what the run is.
_RUN_CONTEXT: Final = [
    ("card", _kw(r"card|cards|visa|mastercard|master card|amex|debit|credit|long number")),
    ("cvv", _kw(r"cvv|cvc|cvv2|cv2|csc|cvn|security code|code on the back|on the back|back of the card|"
                r"three digit code|3 digit code|card code|last three digits|security digits|security number|"
                r"digits on the back|verification value")),
    ("pin", _kw(r"pin|pin number|pin code|passcode|pass code|password|access code|verification code|"
                r"one time code|otp|secret number|telephone banking code")),
    ("ssn", _kw(r"ssn|social security|social security number|social")),
    ("dob", _kw(r"born|birth|dob|d o b|birthday|birthdate")),
    ("expiry", _kw(r"expiry|expiration|expires|expire|exp|valid until|valid thru|valid through")),
    ("phone", _kw(r"phone|phones|mobile|cell|cellphone|telephone|landline|call me|call me back|callback|"
                  r"call back|reach me|text me|contact number|ring me|whatsapp|cell number")),
    ("account", _kw(r"account|acct|accounts|customer|member|membership|policy|client|iban|reference|"
                    r"customer id|user id|routing|sort code|roll number|meter|subscriber")),
    ("postcode", _kw(r"postcode|post code|postal code|zip|zip code|zipcode")),
    ("neutral", _kw(r"order|orders|tracking|invoice|ticket|case|flight|room|item|items|model|serial|"
                    r"confirmation|booking|parcel|package|extension|ext|apartment|flat|unit|suite|floor|"
                    r"gate|bus|route|size|quantity|qty|product|sku|part|promo|voucher|coupon|store|"
                    r"branch|version|page|step|option|press|queue|number of")),
]
# Keyword patterns are matched against the line's words (and digit groups) joined by single spaces.

# "<number> is my pin", "<number>, that's my mobile", "<number> for the cvv"
_AFTER_RE: Final = re.compile(r"(?:(?:is|was|that's|thats|that is|it's|as|for|being|on)\s(?:(?:my|the|our|your)\s)?"
                              r"|(?:my|the|our|your)\s)(?:(?:new|old|card's)\s)?(.*)")

_VALUE_CONTEXT: Final = [
    ("SECRET", _kw(r"password|passphrase|pass word|memorable word|memorable name|memorable place|secret word|"
                   r"secret answer|security answer|security question answer|answer is|maiden name|"
                   r"pet's name|pets name|pet was called|first school|first car|favourite teacher")),
    ("DOB", _kw(r"born|birth|dob|d o b|birthday|birthdate|date of birth")),
    ("POSTCODE", _kw(r"postcode|post code|postal code|zip|zip code|zipcode")),
    ("NINO", _kw(r"national insurance|national insurance number|ni number|nino|n i number|insurance number")),
    ("ACCOUNT", _kw(r"account|account number|account id|customer number|customer id|member number|"
                    r"membership number|policy number|reference|iban|user id|username|user name|login")),
    ("EMAIL", _kw(r"email|e mail|email address|e mail address|emails")),
]

_SKIP: Final = frozenset({"is", "was", "it's", "its", "it", "my", "the", "of", "on", "in", "um", "uh", "er", "erm",
                          "ah", "number", "code", "that's", "thats", "be", "would", "should", "so", "yeah", "yes",
                          "okay", "ok", "right", "and", "address", "name", "date", "id", "please",
                          "i", "think", "are", "me", "mine", "just", "actually", "like", "well", "called", "last",
                          "surname", "mother's", "mothers", "maiden", "word", "answer"})
_STOP: Final = frozenset({"and", "but", "so", "thanks", "thank", "please", "i", "i'm", "im", "my", "is", "um", "uh",
                          "okay", "ok", "that", "it", "if", "can", "could", "because", "then", "now", "yeah", "yes",
                          "no", "er", "erm", "the", "you", "for", "with", "which", "what", "who", "was", "are",
                          "were", "also", "too", "sorry", "right", "just", "like", "well", "a", "to", "in", "on",
                          "at", "of"})

_MONTH: Final = {m: k for k, m in enumerate(MONTHS)} | {
    "jan": 0, "feb": 1, "mar": 2, "apr": 3, "jun": 5, "jul": 6, "aug": 7, "sep": 8, "sept": 8, "oct": 9,
    "nov": 10, "dec": 11}
_ORDINAL: Final = {w: k + 1 for k, w in enumerate(ORDINAL_UNITS)} | {w: k + 10 for k, w in enumerate(ORDINAL_TEENS)}
_UNIT_WORDS: Final = {w: k for k, w in enumerate(DIGITS)}
_NATO: Final = {w: chr(65 + k) for k, w in enumerate(NATO_ALPHABET)} | {"xray": "X", "alfa": "A", "juliett": "J"}
_TLDS: Final = frozenset({"com", "net", "org", "co", "uk", "io", "edu", "gov", "info", "biz", "us", "ca", "de", "fr",
                          "ie", "au", "me", "nl", "es", "it", "in", "eu", "ai", "app", "dev", "ac", "mail"})
_EMAIL_JOINERS: Final = frozenset({"dot", ".", "underscore", "_", "dash", "-", "hyphen", "plus", "+"})

_UK_POSTCODE_RE: Final = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")
_NINO_RE: Final = re.compile(r"[A-Z]{2}[0-9]{6}[A-D]")  # HMRC's own example is "QQ 12 34 56 C"

# Written forms, each with bounded repeats (no nested unbounded quantifiers): linear on any input.
_WRITTEN: Final = [
    ("EMAIL", re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
                         r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,6}")),
    ("POSTCODE", re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")),
    ("NINO", re.compile(r"\b[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b")),
    ("IBAN", re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")),
    ("SSN", re.compile(r"(?<![0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])")),
]


def _iban_ok(s: str) -> bool:
    s = s.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# --- the redactor ------------------------------------------------------------------------------------

class Redactor:
    """Finds and replaces personal data; build once (patterns compiled), use for every line.

    ``extra_patterns``: (label, regex) pairs from config, each match becomes ``[LABEL]``.
    ``long_numbers``: also redact digit runs that only their length makes suspicious (9+ digits as
    ``[ACCOUNT]``, bare phone-shaped runs as ``[PHONE]``); off for log lines, whose ids and timestamps
    are long numbers too (cards, written phone numbers and everything said with a keyword stay on).
    """

    def __init__(self, extra_patterns: Iterable[tuple[str, str | re.Pattern[str]]] = (), *,
                 long_numbers: bool = True) -> None:
        self.extra: list[tuple[str, re.Pattern[str]]] = []
        for label, pattern in extra_patterns:
            if not LABEL_RE.fullmatch(label):
                raise ValueError(f"label {label!r}: upper-case letters, digits and _ (e.g. MEMBER_ID)")
            self.extra.append((label, pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)))
        self.long_numbers = long_numbers
        self._run_ctx = [(c, re.compile(p)) for c, p in _RUN_CONTEXT]
        self._value_ctx = [(c, re.compile(p)) for c, p in _VALUE_CONTEXT]

    # -- public --
    def redact(self, text: str) -> str:
        return self.redact_with_findings(text)[0]

    def redact_with_findings(self, text: str) -> tuple[str, list[Finding]]:
        """``text`` redacted, and what was found. Redaction is repeated on its own result until it finds
        nothing more (at most :data:`_PASSES` times), so that redacting twice changes nothing: a placeholder
        can end a number the first pass could not see ("4111one 6789 6789": "4111" is glued to a word, then
        ends "one 6789 4111[ACCOUNT]", a 9-digit account number). Each finding's offsets are in the text of
        the pass that found it."""
        found_all: list[Finding] = []
        for _ in range(_PASSES):
            found = self.find(text)
            if not found:
                break
            parts: list[str] = []
            pos = 0
            for f in found:
                parts.append(text[pos:f.start])
                parts.append(f.placeholder)
                pos = f.end
            parts.append(text[pos:])
            text = "".join(parts)
            found_all.extend(found)
        return text, found_all

    def find(self, text: str) -> list[Finding]:
        """The spans to redact, in order, not overlapping (overlaps are merged; the longest names it)."""
        try:
            raw = self._find(text)
        except RecursionError:  # pragma: no cover - nothing here recurses deeply; a last guard
            raw = []
        return _merge(raw)

    # -- detectors --
    def _find(self, text: str) -> list[Finding]:
        toks = _tokens(text)
        out: list[Finding] = []
        placeholders = [(t.start, t.end) for t in toks if t.kind == _P]
        for label, pat in _WRITTEN:
            for m in pat.finditer(text):
                if label == "IBAN":
                    if _iban_ok(m.group()):
                        out.append(Finding(m.start(), m.end(), "ACCOUNT"))
                elif label == "NINO":
                    if _NINO_RE.fullmatch(m.group().replace(" ", "").upper()):
                        out.append(Finding(m.start(), m.end(), label))
                else:
                    out.append(Finding(m.start(), m.end(), label))
        for label, pat in self.extra:
            for m in pat.finditer(text):
                if m.end() > m.start() and not _overlaps(placeholders, m.start(), m.end()):
                    out.append(Finding(m.start(), m.end(), label))
        if not toks:
            return out
        words, word_tok, word_off = _word_index(toks)
        runs = _runs(toks)
        barriers = sorted({t_i for t_i, t in enumerate(toks) if t.kind == _P}
                          | {r.first for r in runs if len(r.digits) >= 3})
        run_kw = self._keywords(self._run_ctx, words, word_tok, word_off)
        for r in runs:
            ctxs = _nearest(run_kw, r.first, barriers, toks)
            if not ctxs:
                after = self._after(toks, r.last)
                ctxs = [after] if after else []
            self._classify(toks, r, ctxs, out)
        self._ids(toks, run_kw, barriers, out)
        for cat, pat in self._value_ctx:
            for m in pat.finditer(words):
                k = word_tok[bisect.bisect_right(word_off, m.end() - 1) - 1] + 1
                self._value_after(cat, toks, k, runs, out)
        _spoken_emails(toks, out)
        _spoken_ninos(toks, out)
        return out

    def _keywords(self, ctx: list[tuple[str, re.Pattern[str]]], words: str, word_tok: list[int],
                  word_off: list[int]) -> list[tuple[int, int, str]]:
        """(token index of the keyword's last word, category order, category), sorted by index."""
        found: list[tuple[int, int, str]] = []
        for order, (cat, pat) in enumerate(ctx):
            for m in pat.finditer(words):
                found.append((word_tok[bisect.bisect_right(word_off, m.end() - 1) - 1], order, cat))
        found.sort()
        return found

    def _ids(self, toks: Sequence[_Tok], kws: list[tuple[int, int, str]], barriers: list[int],
             out: list[Finding]) -> None:
        """Letters-and-digits ids ("AB-7023382808", "cus340770") said with an account keyword before or after."""
        i, n = 0, len(toks)
        while i < n:
            if toks[i].kind not in (_W, _N) or (i > 0 and toks[i - 1].end == toks[i].start
                                                 and toks[i - 1].kind in (_W, _N)):
                i += 1
                continue
            end = _compound_end(toks, i)
            if end - i > 1:
                s = "".join(t.text for t in toks[i:end])
                if sum(c.isdigit() for c in s) >= 5 and any(c.isalpha() for c in s):
                    ctxs = _nearest(kws, i, barriers, toks)
                    if (ctxs[:1] == ["account"] if ctxs else self._after(toks, end) == "account"):
                        out.append(Finding(toks[i].start, toks[end - 1].end, "ACCOUNT"))
            i = end

    def _after(self, toks: Sequence[_Tok], k: int) -> str | None:
        """The category a number names after itself: "4 3 2 1 is my pin", "..., that's my mobile"."""
        words: list[str] = []
        while k < len(toks) and len(words) < 7 and toks[k].kind != _P:
            if toks[k].kind in (_W, _N):
                words.append(toks[k].low)
            elif toks[k].text not in ",.;:-":
                break
            k += 1
        m = _AFTER_RE.match(" ".join(words))
        if m is None:
            return None
        rest = m.group(1)
        for cat, pat in self._run_ctx:
            hit = pat.match(rest)
            if hit is not None and cat != "neutral":
                return cat
        return None

    def _classify(self, toks: Sequence[_Tok], r: _Run, ctxs: list[str], out: list[Finding]) -> None:
        label: str | None = None
        for ctx in ctxs:  # nearest keyword first; one that does not fit this number gives way to the next
            if ctx == "neutral":
                break
            label = _label_in_context(ctx, r.digits)
            if label is None and ctx == "dob" and len(r.groups) == 3 and r.seps & {"/", ".", "-"}:
                label = "DOB"  # "4/5/78"
            if label is not None:
                break
        d, n = r.digits, len(r.digits)
        if 13 <= n <= 19 and luhn_ok(d):
            label = "CARD"
        elif label is not None or (ctxs[:1] == ["neutral"] and n < 13):
            pass
        elif not r.spoken and r.groups == [3, 2, 4] and r.seps <= {"-"}:
            label = "SSN"
        elif _phone_shape(d, r.plus) and (self.long_numbers or r.plus or len(r.groups) > 1):
            label = "PHONE"
        elif n >= 9 and (self.long_numbers or (len(r.groups) > 1 and not r.seps - {"-"} and n >= 13)):
            label = "ACCOUNT"
        if label is None and n > 19:
            self._cards_inside(toks, r, out)
            return
        if label is not None:
            start = r.start
            if r.first > 0 and (r.plus or (toks[r.first - 1].text == "(" and ")" in r.seps)):
                start = toks[r.first - 1].start
            out.append(Finding(start, r.end, label))

    def _cards_inside(self, toks: Sequence[_Tok], r: _Run, out: list[Finding]) -> None:
        """A run longer than a card (two numbers said together): Luhn-valid 13-19 digit stretches."""
        units: list[tuple[int, int, str]] = []  # start, end, digits
        i = r.first
        while i < r.last:
            u = _digit_unit(toks, i)
            if u is None:
                i += 1
                continue
            units.append((toks[i].start, toks[u[1] - 1].end, u[0]))
            i = u[1]
        a = 0
        while a < len(units):
            acc, hit = "", -1
            for b in range(a, min(len(units), a + 19)):
                acc += units[b][2]
                if len(acc) > 19:
                    break
                if len(acc) >= 13 and luhn_ok(acc):
                    hit = b
            if hit >= 0:
                out.append(Finding(units[a][0], units[hit][1], "CARD"))
                a = hit + 1
            else:
                a += 1

    def _value_after(self, cat: str, toks: Sequence[_Tok], k: int, runs: list[_Run], out: list[Finding]) -> None:
        n = len(toks)
        skipped = 0
        while k < n and skipped < 6 and (toks[k].low in _SKIP or (toks[k].kind == _S and toks[k].text in ",:;-.'\"")):
            k += 1
            skipped += 1
        if k >= n or toks[k].kind == _P:
            return
        if cat == "DOB":
            end = _date_at(toks, k)
            if end is not None:
                out.append(Finding(toks[k].start, toks[end - 1].end, "DOB"))
        elif cat == "SECRET":
            end = _words_at(toks, k, 3)
            if end is not None:
                out.append(Finding(toks[k].start, toks[end - 1].end, "SECRET"))
        elif cat in ("POSTCODE", "NINO"):
            span = _code_at(toks, k, _UK_POSTCODE_RE if cat == "POSTCODE" else _NINO_RE)
            if span is not None:
                out.append(Finding(span[0], span[1], cat))
        elif cat == "ACCOUNT":
            end = _compound_end(toks, k)
            s = "".join(t.text for t in toks[k:end])
            if sum(c.isdigit() for c in s) >= 3 and any(c.isalpha() for c in s):
                out.append(Finding(toks[k].start, toks[end - 1].end, "ACCOUNT"))
        elif cat == "EMAIL":
            _spoken_email_from(toks, k, out)


def _label_in_context(ctx: str, d: str) -> str | None:
    n = len(d)
    if ctx == "card" and 12 <= n <= 19:
        return "CARD"
    if ctx == "cvv" and 3 <= n <= 4:
        return "CVV"
    if ctx == "pin" and 4 <= n <= 8:
        return "PIN"
    if ctx == "ssn" and n == 9:
        return "SSN"
    if ctx == "dob" and (5 <= n <= 8 or (n == 4 and d[:2] in ("19", "20"))):
        return "DOB"
    if ctx == "expiry" and n in (3, 4, 6):
        return "EXPIRY"
    if ctx == "phone" and 7 <= n <= 15:
        return "PHONE"
    if ctx == "account" and 6 <= n <= 34:
        return "ACCOUNT"
    if ctx == "postcode" and n in (5, 9):
        return "POSTCODE"
    return None


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_left(spans, (start, start))
    for j in (i - 1, i):
        if 0 <= j < len(spans) and spans[j][0] < end and start < spans[j][1]:
            return True
    return False


def _merge(found: list[Finding]) -> list[Finding]:
    found = sorted(found, key=lambda f: (f.start, -(f.end - f.start)))
    out: list[Finding] = []
    best_len = 0
    for f in found:
        if out and f.start < out[-1].end:
            last = out[-1]
            label = f.label if f.end - f.start > best_len else last.label
            best_len = max(best_len, f.end - f.start)
            out[-1] = Finding(last.start, max(last.end, f.end), label)
        else:
            out.append(f)
            best_len = f.end - f.start
    return out


def _word_index(toks: Sequence[_Tok]) -> tuple[str, list[int], list[int]]:
    """The words and digit groups of the line joined by spaces, with each one's token index and offset."""
    parts: list[str] = []
    word_tok: list[int] = []
    word_off: list[int] = []
    pos = 0
    for i, t in enumerate(toks):
        if t.kind in (_W, _N):
            word_tok.append(i)
            word_off.append(pos)
            parts.append(t.low)
            pos += len(t.low) + 1
        elif t.kind == _P:  # a placeholder separates: no keyword spans it
            word_tok.append(i)
            word_off.append(pos)
            parts.append("|")
            pos += 2
    return " ".join(parts), word_tok, word_off


def _nearest(kws: list[tuple[int, int, str]], first: int, barriers: list[int], toks: Sequence[_Tok]) -> list[str]:
    """Categories of the keywords ending within 8 words before token ``first`` (past no barrier),
    nearest first."""
    b = bisect.bisect_left(barriers, first) - 1
    floor = barriers[b] if b >= 0 else -1
    words = 0
    lo = first
    while lo > floor + 1 and lo > 0 and words < 8:
        lo -= 1
        if toks[lo].kind in (_W, _N):
            words += 1
    out: list[str] = []
    j = bisect.bisect_left(kws, (first, -1, "")) - 1
    while j >= 0 and kws[j][0] >= lo and kws[j][0] > floor and len(out) < 6:
        end = j
        while j >= 0 and kws[j][0] == kws[end][0]:
            j -= 1
        for k in range(j + 1, end + 1):  # one word ending several keywords: list order
            if kws[k][2] not in out:
                out.append(kws[k][2])
    return out


def _compound_end(toks: Sequence[_Tok], k: int) -> int:
    """End of the glued word/digit/hyphen compound starting at ``k`` ("ab-123456", "sw1a", "hunter2")."""
    j = k + 1
    while j < len(toks) and toks[j].start == toks[j - 1].end and toks[j].kind != _P and (
            toks[j].kind in (_W, _N) or (toks[j].text in "-_" and j + 1 < len(toks)
            and toks[j + 1].start == toks[j].end and toks[j + 1].kind in (_W, _N))):
        j += 1
    return j


def _words_at(toks: Sequence[_Tok], k: int, most: int) -> int | None:
    """End of up to ``most`` answer words from ``k`` (a maiden name, a password), before a stop word."""
    j, got = k, 0
    while j < len(toks) and got < most:
        t = toks[j]
        if t.kind not in (_W, _N) or t.low in _STOP or t.low in _FILLERS:
            break
        j = _compound_end(toks, j)
        got += 1
    return j if got else None


# --- dates ---------------------------------------------------------------------------------------------

def _num_word(toks: Sequence[_Tok], i: int) -> tuple[int, int] | None:
    """A spoken or written number 1-99 at ``i`` as (value, index after), ordinals included."""
    if i >= len(toks):
        return None
    t = toks[i]
    if t.kind == _N and len(t.text) <= 2:
        j = i + 1
        if j < len(toks) and toks[j].start == t.end and toks[j].low in ("st", "nd", "rd", "th"):
            j += 1
        return int(t.text), j
    w = t.low
    if w in _TENS_WORD:
        base = int(_TENS_WORD[w])
        j = i + 1
        if j < len(toks) and toks[j].text == "-":
            j += 1
        if j < len(toks) and toks[j].low in _ORDINAL and _ORDINAL[toks[j].low] < 10:
            return base + _ORDINAL[toks[j].low], j + 1
        if j < len(toks) and toks[j].low in _UNIT_WORDS and _UNIT_WORDS[toks[j].low] > 0:
            return base + _UNIT_WORDS[toks[j].low], j + 1
        return base, i + 1
    if w in ("twentieth", "thirtieth"):
        return (20 if w == "twentieth" else 30), i + 1
    if w in _ORDINAL:
        return _ORDINAL[w], i + 1
    if w in _TEEN_WORD:
        return int(_TEEN_WORD[w]), i + 1
    if w in _UNIT_WORDS and _UNIT_WORDS[w] > 0:
        return _UNIT_WORDS[w], i + 1
    return None


def _year_at(toks: Sequence[_Tok], i: int) -> int | None:
    """End of a year at ``i``: "1990", "'90", "nineteen ninety (one)", "nineteen oh five", "two thousand
    (and) three", "twenty twenty", "ninety one"."""
    n = len(toks)
    if i >= n:
        return None
    t = toks[i]
    if t.text in ("'", "’") and i + 1 < n and toks[i + 1].kind == _N and len(toks[i + 1].text) == 2:
        return i + 2
    if t.kind == _N:
        return i + 1 if len(t.text) == 4 and t.text[:2] in ("19", "20") else None
    if t.low in ("nineteen", "twenty"):
        j = i + 1
        if j < n and toks[j].low in ("oh", "o") and j + 1 < n and toks[j + 1].low in _UNIT_WORDS:
            return j + 2
        nw = _num_word(toks, j)
        if nw is not None and nw[0] >= 10 and toks[j].low not in _ORDINAL:
            return nw[1]
        if j < n and toks[j].low == "hundred":
            return j + 1
    if t.low == "two" and i + 1 < n and toks[i + 1].low == "thousand":
        j = i + 2
        if j < n and toks[j].low == "and":
            j += 1
        nw = _num_word(toks, j)
        return nw[1] if nw is not None and toks[j].low not in _ORDINAL else i + 2
    if t.low in _TENS_WORD and t.low not in ("twenty",):
        nw = _num_word(toks, i)
        return nw[1] if nw is not None else None
    return None


def _skip(toks: Sequence[_Tok], i: int, words: Iterable[str]) -> int:
    ws = set(words)
    while i < len(toks) and (toks[i].low in ws or toks[i].text in (",", "-")):
        i += 1
    return i


def _date_at(toks: Sequence[_Tok], k: int) -> int | None:
    """End of a date said or written at ``k`` (month-name forms; numeric ones are number runs)."""
    n = len(toks)
    i = _skip(toks, k, ("the",))
    day = _num_word(toks, i)
    if day is not None and 1 <= day[0] <= 31:
        j = _skip(toks, day[1], ("of",))
        if j < n and toks[j].low in _MONTH:
            end = j + 1
            y = _year_at(toks, _skip(toks, end, ()))
            return y if y is not None else end
    if i < n and toks[i].low in _MONTH:
        j = _skip(toks, i + 1, ("the",))
        day = _num_word(toks, j)
        if day is not None and 1 <= day[0] <= 31:
            y = _year_at(toks, _skip(toks, day[1], ()))
            if y is not None:
                return y
            y2 = _year_at(toks, j)
            return y2 if y2 is not None and y2 > day[1] else day[1]
        y = _year_at(toks, j)
        return y if y is not None else None
    return _year_at(toks, k)


# --- letters and digits said one by one (postcodes, NI numbers) ---------------------------------------

def _code_units(toks: Sequence[_Tok], k: int, most: int) -> list[tuple[int, int, str]]:
    """Up to ``most`` characters from ``k`` as (start, end, chars) units: letters ("s", "sierra", "QQ"),
    digits ("one", "double four", "4"), glued compounds ("sw1a", "1aa")."""
    units: list[tuple[int, int, str]] = []
    i, n, total = k, len(toks), 0
    while i < n and total < most:
        t = toks[i]
        if t.kind == _P:
            break
        if t.kind == _S:
            if t.text in "-," and units:
                i += 1
                continue
            break
        if t.low in _FILLERS and units:
            i += 1
            continue
        chars: str | None = None
        nxt = i + 1
        if t.low in _REPEAT and i + 1 < n:
            sub = _code_units(toks, i + 1, 1)
            if sub and len(sub[0][2]) == 1:
                chars = sub[0][2] * _REPEAT[t.low]
                nxt = next(j for j in range(i + 1, n + 1) if j == n or toks[j].start >= sub[0][1])
        elif t.kind == _N or (t.kind == _W and ((i + 1 < n and toks[i + 1].start == t.end
                                                and toks[i + 1].kind in (_W, _N))
                                                or (i > k and toks[i - 1].end == t.start))):
            nxt = _compound_end(toks, i)
            chars = "".join(x.text for x in toks[i:nxt]).upper().replace("-", "")
            if not chars.isalnum() or len(chars) > 8:
                chars = None
        elif t.low in _NATO:
            chars = _NATO[t.low]
        elif t.low in _DIGIT_WORD and t.low not in ("o",):
            chars = _DIGIT_WORD[t.low]
        elif len(t.text) <= 2:
            chars = t.text.upper()
        if chars is None:
            break
        units.append((t.start, toks[nxt - 1].end, chars))
        total += len(chars)
        i = nxt
    return units


def _code_at(toks: Sequence[_Tok], k: int, shape: re.Pattern[str]) -> tuple[int, int] | None:
    units = _code_units(toks, k, 12)
    acc = ""
    best: tuple[int, int] | None = None
    for _s, e, chars in units:
        acc += chars
        if shape.fullmatch(acc):
            best = (units[0][0], e)
    if best is None and shape is _UK_POSTCODE_RE:  # a US ZIP: 5 or 9 digits
        digits = ""
        for _s, e, chars in units:
            if not chars.isdigit():
                break
            digits += chars
            if len(digits) in (5, 9):
                best = (units[0][0], e)
    return best


def _spoken_ninos(toks: Sequence[_Tok], out: list[Finding]) -> None:
    """NI numbers spelt out without a keyword ("q q one two three four five six c")."""
    i, n = 0, len(toks)
    while i < n:
        t = toks[i]
        if t.kind == _W and (len(t.text) <= 2 or t.low in _NATO) and t.low not in _DIGIT_WORD and any(
                x.kind == _N or x.low in _DIGIT_WORD for x in toks[i + 1:i + 4]):
            span = _code_at(toks, i, _NINO_RE)
            if span is not None:
                out.append(Finding(span[0], span[1], "NINO"))
                while i < n and toks[i].start < span[1]:
                    i += 1
                continue
        i += 1


# --- emails said aloud ---------------------------------------------------------------------------------

def _email_domain_end(toks: Sequence[_Tok], i: int) -> int | None:
    """End of "gmail dot com" / "my-isp dot co dot uk" at ``i`` (at least one dot, a known last part)."""
    n = len(toks)
    if i >= n or toks[i].kind not in (_W, _N) or toks[i].low == "dot":
        return None
    j = _compound_end(toks, i)
    end: int | None = None
    parts = 0
    while j + 1 < n and (toks[j].low == "dot" or toks[j].text == ".") and toks[j + 1].kind in (_W, _N) \
            and parts < 4:
        j = _compound_end(toks, j + 1)
        parts += 1
        if toks[j - 1].low in _TLDS:
            end = j
    return end


def _spoken_emails(toks: Sequence[_Tok], out: list[Finding]) -> None:
    for i, t in enumerate(toks):
        if t.low not in ("at", "@") or i == 0:
            continue
        end = _email_domain_end(toks, i + 1)
        if end is None:
            continue
        k = i - 1
        if toks[k].kind not in (_W, _N):
            continue
        # back over "john dot smith", "j underscore smith", "smith seventy two"
        while k >= 2 and (toks[k - 1].low in _EMAIL_JOINERS) and toks[k - 2].kind in (_W, _N) and i - k < 12:
            k -= 2
        while k >= 1 and toks[k - 1].end == toks[k].start and toks[k - 1].kind in (_W, _N):
            k -= 1
        said = 0  # "garcia twenty seven at ...": a number said after the name
        while k >= 1 and said < 3 and (toks[k].kind == _N or toks[k].low in _DIGIT_WORD
                                       or toks[k].low in _TEEN_WORD or toks[k].low in _TENS_WORD) \
                and toks[k - 1].kind in (_W, _N):
            k -= 1
            said += 1
        if k >= 1 and toks[k - 1].kind == _W and len(toks[k - 1].text) == 1 and toks[k - 1].low not in ("a", "i"):
            k -= 1  # "j smith at ..."
        out.append(Finding(toks[k].start, toks[end - 1].end, "EMAIL"))


def _spoken_email_from(toks: Sequence[_Tok], k: int, out: list[Finding]) -> None:
    """After "my email is": the address from its first word, so "john smith at gmail dot com" is whole."""
    n = len(toks)
    j = k
    while j < n and j - k < 14:
        if toks[j].low in ("at", "@") and j > k:
            end = _email_domain_end(toks, j + 1)
            if end is not None:
                out.append(Finding(toks[k].start, toks[end - 1].end, "EMAIL"))
            return
        if toks[j].kind == _P or (toks[j].kind == _S and toks[j].text not in _EMAIL_JOINERS):
            return
        j += 1


# --- module-level convenience ---------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _cached(extra: tuple[tuple[str, str], ...], long_numbers: bool) -> Redactor:
    return Redactor(extra, long_numbers=long_numbers)


def redact(text: str, *, extra_patterns: Sequence[tuple[str, str]] = (), long_numbers: bool = True) -> str:
    """``text`` with personal data replaced by ``[LABEL]`` placeholders (see the module doc)."""
    return _cached(tuple(extra_patterns), long_numbers).redact(text)


def find(text: str, *, extra_patterns: Sequence[tuple[str, str]] = (), long_numbers: bool = True) -> list[Finding]:
    """The spans ``redact`` replaces, for metrics and tests."""
    return _cached(tuple(extra_patterns), long_numbers).find(text)
