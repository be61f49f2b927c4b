"""Fuzzing the redactor: it never raises on any text, and the personal data planted in random
surroundings never survives in its output (written or spoken, grouped or not)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.redaction import Redactor, luhn_ok

from .fuzzing import FUZZ

REDACTOR = Redactor()
LOG_REDACTOR = Redactor(long_numbers=False)
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FILLER = ["hi", "so", "my", "the", "is", "it's", "and", "please", "thanks", "I", "want", "to", "pay", "order",
          "number", "a", "card", "yes", "ok", "um", "call", "me", "back", "on", "at", "today", "email", "account"]
filler = st.lists(st.sampled_from(FILLER), max_size=8).map(" ".join)


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable: one check digit always completes a Luhn number")


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    """(what is said or written, the digits): a Luhn-valid 16-digit card number."""
    body = draw(st.sampled_from(["4", "51", "37", "6011"])) + draw(st.text("0123456789", min_size=11, max_size=11))
    number = _luhn_complete(body[:15])
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "spoken"]))
    if style == "plain":
        text = number
    elif style == "spaced":
        text = " ".join(number[i:i + 4] for i in range(0, 16, 4))
    elif style == "dashed":
        text = "-".join(number[i:i + 4] for i in range(0, 16, 4))
    else:
        text = " ".join(DIGIT_WORDS[int(c)] for c in number)
    return text, number


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    user = draw(st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10))
    host = draw(st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10))
    tld = draw(st.sampled_from(["com", "org", "co.uk", "net"]))
    return f"{user}@{host}.{tld}", f"{user}@{host}"


@st.composite
def ssns(draw: st.DrawFn) -> tuple[str, str]:
    area = draw(st.integers(1, 665))
    group = draw(st.integers(1, 99))
    serial = draw(st.integers(1, 9999))
    text = f"{area:03d}-{group:02d}-{serial:04d}"
    return f"my social security number is {text}", text


@FUZZ
@given(st.text(max_size=300))
def test_redactor_never_raises(fuzz_cases: Callable[[], None], text: str) -> None:
    fuzz_cases()
    for redactor in (REDACTOR, LOG_REDACTOR):
        out, found = redactor.redact_with_findings(text)
        assert all(0 <= f.start < f.end <= len(text) for f in found)
        assert all(a.end <= b.start for a, b in itertools.pairwise(found))
        if not found:
            assert out == text


@FUZZ
@given(filler, st.one_of(cards(), emails(), ssns()), filler,
       st.sampled_from([" ", ", ", ": ", " is ", ". "]), st.sampled_from([" ", ", ", ". ", " and ", "."]))
def test_planted_pii_never_survives(fuzz_cases: Callable[[], None], before: str, pii: tuple[str, str], after: str,
                                    sep1: str, sep2: str) -> None:
    fuzz_cases()
    said, secret = pii
    text = f"{before}{sep1}{said}{sep2}{after}".strip()
    for redactor in (REDACTOR, LOG_REDACTOR):
        out = redactor.redact(text)
        assert secret not in out, out
        assert said not in out, out
        assert secret not in out.replace(" ", "").replace("-", ""), out
