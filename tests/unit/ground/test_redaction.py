"""``ari_agent.redaction``: personal data found in written and spoken forms, the rest kept as it was."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_agent.redaction import Finding, Redactor, find, luhn_ok, redact

from .redaction_corpus import Sample, build


@pytest.mark.parametrize(("text", "expected"), [
    # cards: grouped, plain, whisper's punctuation, spoken digit by digit, "double"/"oh", pairs
    ("my card is 4111 1111 1111 1111 thanks", "my card is [CARD] thanks"),
    ("It's 4111 1111 1111 1111.", "It's [CARD]."),
    ("4111-1111-1111-1111", "[CARD]"),
    ("four one one one one one one one one one one one one one one one", "[CARD]"),
    ("uh it's four one double one, one one one one, triple one one, one one one one", "uh it's [CARD]"),
    ("forty one eleven eleven eleven eleven eleven eleven eleven", "[CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    # a 16-digit number that fails Luhn: an account-like number; a card where the caller said "card"
    ("the number is 1234 5678 9012 3456", "the number is [ACCOUNT]"),
    ("my card number is 1234 5678 9012 3456", "my card number is [CARD]"),
    ("the code on the back is 123", "the code on the back is [CVV]"),
    ("cvv 4 5 6", "cvv [CVV]"),
    ("and the security code is seven three seven", "and the security code is [CVV]"),
    ("my ssn is 123-45-6789", "my ssn is [SSN]"),
    ("123-45-6789", "[SSN]"),
    ("social security number is one two three four five six seven eight nine", "social security number is [SSN]"),
    ("my national insurance number is QQ 12 34 56 C", "my national insurance number is [NINO]"),
    ("ni number is q q one two three four five six c", "ni number is [NINO]"),
    ("it's QQ123456C", "it's [NINO]"),
    ("I was born on september thirtieth nineteen ninety", "I was born on [DOB]"),
    ("date of birth 30/09/1990", "date of birth [DOB]"),
    ("dob is the 3rd of may 1985", "dob is the [DOB]"),
    ("my date of birth is the twenty first of june two thousand and three", "my date of birth is the [DOB]"),
    ("born in 1985", "born in [DOB]"),
    ("email is john.smith@gmail.com", "email is [EMAIL]"),
    ("it's john dot smith at gmail dot com", "it's [EMAIL]"),
    ("my email is john smith at gmail dot com ok", "my email is [EMAIL] ok"),
    ("j underscore smith at hotmail dot co dot uk", "[EMAIL]"),
    ("call me on 07700 900123", "call me on [PHONE]"),
    ("my mobile is oh seven seven double oh nine double oh one two three", "my mobile is [PHONE]"),
    ("plus four four seven seven double oh nine oh oh one two three", "[PHONE]"),
    ("(415) 555-0134", "[PHONE]"),
    ("reach me on +44 7700 900123 or john.doe@example.co.uk", "reach me on [PHONE] or [EMAIL]"),
    ("my account number is 12345678", "my account number is [ACCOUNT]"),
    ("my customer number is AB123456", "my customer number is [ACCOUNT]"),
    ("GB29 NWBK 6016 1331 9268 19", "[ACCOUNT]"),
    ("sort code 12-34-56", "sort code [ACCOUNT]"),
    ("my pin is 4 3 2 1", "my pin is [PIN]"),
    ("passcode nine nine eight seven", "passcode [PIN]"),
    ("my postcode is SW1A 1AA", "my postcode is [POSTCODE]"),
    ("postcode is s w one a one a a", "postcode is [POSTCODE]"),
    ("my zip is 90210", "my zip is [POSTCODE]"),
    ("mother's maiden name is smith and that's it", "mother's maiden name is [SECRET] and that's it"),
    ("the password is hunter2 thanks", "the password is [SECRET] thanks"),
    ("my card is 4111111111111111 and the cvv is 737", "my card is [CARD] and the cvv is [CVV]"),
    # written apart from the generated set's templates (a held-out check of the same detectors)
    ("I'll read it out, 5555 5555 5555 4444, expiry is oh four twenty six.",
     "I'll read it out, [CARD], expiry is [EXPIRY]."),
    ("security digits are 9 9 1", "security digits are [CVV]"),
    ("i was born twelve oh three eighty four", "i was born [DOB]"),
    ("it's m jones 77 at yahoo dot com", "it's [EMAIL]"),
    ("you can call me on oh one six one, four nine six, oh oh oh oh", "you can call me on [PHONE]"),
    ("please text me at 415.555.0134", "please text me at [PHONE]"),
    ("my IBAN is DE89 3704 0044 0532 0130 00", "my IBAN is [ACCOUNT]"),
    ("my policy number is PX-2231-889", "my policy number is [ACCOUNT]"),
    ("my maiden name, sorry my mum's maiden name, is okonkwo",
     "my maiden name, sorry my mum's maiden name, is [SECRET]"),
    ("My NI is JG 10 37 29 B.", "My NI is [NINO]."),
])
def test_finds_written_and_spoken_forms(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "i'm calling about order 4567", "can i book for 3:30", "it cost $45.99", "i need 12 boxes",
    "next tuesday the 10th of march", "we're open nine to five thirty monday to friday", "room 101",
    "my order number is 45678901", "tracking number 123456789012", "i've been a member since 2019",
    "my pin is 4 3 2 1 and my order is 5678", "the card ending in 1234", "i was born in london",
    "hello", "", "   ", "email me at the office", "meet at noon dot dot dot",
    "my order was 7 7 1 2 and it came broken", "call 911 if it's an emergency", "the flight leaves at 14:45",
    "i paid with my card ending 4242", "is the 0800 number free", "the answer is no",
])
def test_leaves_confusable_things_alone(text: str) -> None:
    out = redact(text)
    if "pin" in text:
        assert out == "my pin is [PIN] and my order is 5678"
    else:
        assert out == text


def test_findings_name_the_spans_and_labels() -> None:
    text = "card 4111 1111 1111 1111, email a.b@c.com"
    found = find(text)
    assert [f.label for f in found] == ["CARD", "EMAIL"]
    assert [text[f.start:f.end] for f in found] == ["4111 1111 1111 1111", "a.b@c.com"]
    out, again = Redactor().redact_with_findings(text)
    assert out == "card [CARD], email [EMAIL]" and again == found
    assert Finding(0, 1, "PIN").placeholder == "[PIN]"


def test_extra_patterns_from_config() -> None:
    r = Redactor([("MEMBER_ID", r"M-[0-9]{6}")])
    assert r.redact("member M-123456 here") == "member [MEMBER_ID] here"
    assert r.redact(r.redact("member M-123456 here")) == "member [MEMBER_ID] here"
    with pytest.raises(ValueError, match="label"):
        Redactor([("lower", "x")])
    assert redact("id M-123456", extra_patterns=[("MEMBER_ID", r"M-[0-9]{6}")]) == "id [MEMBER_ID]"


def test_log_mode_keeps_ids_and_timestamps() -> None:
    r = Redactor(long_numbers=False)
    line = "call 1733081234.56 channel PJSIP/1002-00000012 at 1733081234 rtp 127.0.0.1:40012 card 4111111111111111"
    assert r.redact(line) == line.replace("4111111111111111", "[CARD]")
    assert r.redact("heard 'my email is a@b.com and my pin is 1 2 3 4'") == \
        "heard 'my email is [EMAIL] and my pin is [PIN]'"


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and not luhn_ok("4111111111111112")


# --- the generated evaluation set --------------------------------------------------------------------

Score = tuple[Counter[str], Counter[str], int, int, int, int, Counter[str], Counter[str], Counter[str]]


def _score(samples: list[Sample], r: Redactor) -> Score:
    """Per category: gold entities, entities fully redacted (every letter and digit), findings with that
    label, those of them on some personal data, those on data of that very category; overall spans,
    wrong spans, redacted characters, redacted characters outside personal data."""
    total: Counter[str] = Counter()
    hit: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    right: Counter[str] = Counter()
    same: Counter[str] = Counter()
    spans = wrong_spans = red_chars = wrong_chars = 0
    for s in samples:
        found = r.find(s.text)
        covered = [False] * len(s.text)
        for f in found:
            for i in range(f.start, f.end):
                covered[i] = True
        for a, b, cat in s.spans:
            total[cat] += 1
            if all(covered[i] for i in range(a, b) if s.text[i].isalnum()):
                hit[cat] += 1
        gold = [False] * len(s.text)
        for a, b, _ in s.spans:
            for i in range(a, b):
                gold[i] = True
        for f in found:
            spans += 1
            labelled[f.label] += 1
            on = [cat for a, b, cat in s.spans if f.start < b and a < f.end]
            if not on:
                wrong_spans += 1
            else:
                right[f.label] += 1
                same[f.label] += f.label in on
            red_chars += f.end - f.start
            wrong_chars += sum(1 for i in range(f.start, f.end) if not gold[i])
    return total, hit, spans, wrong_spans, red_chars, wrong_chars, labelled, right, same


def test_generated_set_recall_and_precision(capsys: pytest.CaptureFixture[str]) -> None:
    pii, clean = build()
    assert len(pii) >= 500 and len(clean) >= 200
    assert build() == (pii, clean)  # deterministic
    total, hit, spans, wrong_spans, red_chars, wrong_chars, labelled, right, same = _score(pii + clean, Redactor())
    with capsys.disabled():
        print(f"\nredaction on {len(pii)} utterances with personal data, {len(clean)} without:")
        for cat in sorted(total):
            n = labelled[cat] or 1
            print(f"  {cat:9s} recall {hit[cat]}/{total[cat]} = {hit[cat] / total[cat]:.3f}; precision "
                  f"{right[cat]}/{labelled[cat]} = {right[cat] / n:.3f} (same label {same[cat] / n:.3f})")
        print(f"  overall   recall {sum(hit.values())}/{sum(total.values())} = "
              f"{sum(hit.values()) / sum(total.values()):.4f}; span precision {spans - wrong_spans}/{spans} = "
              f"{(spans - wrong_spans) / spans:.4f}; character precision {1 - wrong_chars / red_chars:.4f}")
    for cat in total:
        assert hit[cat] / total[cat] >= 0.99, cat
    assert (spans - wrong_spans) / spans >= 0.95
    assert 1 - wrong_chars / red_chars >= 0.90
    touched = sum(1 for s in clean if Redactor().find(s.text))
    assert touched <= 0.05 * len(clean), f"{touched} PII-free utterances were redacted"


def test_generated_set_is_idempotent() -> None:
    pii, clean = build(seed=12, per_category=20, clean=60)
    r = Redactor()
    for s in pii + clean:
        once = r.redact(s.text)
        assert r.redact(once) == once, s.text


# --- never crashes, bounded time ----------------------------------------------------------------------

_WORDS = st.sampled_from(["one", "two", "oh", "double", "four", "at", "dot", "com", "gmail", "my", "pin", "is",
                          "card", "cvv", "born", "on", "september", "thirtieth", "nineteen", "ninety", "4111", "1111",
                          "-", "/", ".", ",", "(", ")", "+", "plus", "q", "a", "c", "sw1a", "1aa", "postcode",
                          "account", "number", "phone", "07700", "900123", "maiden", "name", "password", "ssn", "123",
                          "45", "6789", "[CARD]", "email", "john", "twenty", "the", "of", "and", "ni", "12", "34", "56",
                          "@", "_", "underscore", "security", "code", "back", "\ufffd", "é", "٣"])


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(_WORDS, st.sampled_from([" ", "", "  ", ", "])), max_size=30))
def test_idempotent_on_word_salad(parts: list[tuple[str, str]]) -> None:
    text = "".join(w + s for w, s in parts)
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_crashes_on_any_text(text: str) -> None:
    once = redact(text)
    assert isinstance(once, str) and redact(once) == once
    for f in find(text):
        assert 0 <= f.start < f.end <= len(text)


@pytest.mark.parametrize("line", [
    "1 " * 50_000, "x at y dot " * 10_000, "q 1 " * 25_000, "a" * 99_990 + "@gmail.com",
    "my pin is 4 3 2 1 and born on the 3rd of may 1990 " * 2_000,
])
def test_a_100_kb_line_finishes(line: str) -> None:
    t0 = time.perf_counter()
    redact(line)
    assert time.perf_counter() - t0 < 30  # linear work: ~1-2 s here; generous for a loaded CI machine


# --- in the logs (ari_agent.log) ------------------------------------------------------------------------

def test_log_lines_are_redacted_but_not_their_timestamps() -> None:
    import logging
    import sys

    from ari_agent.log import ScrubbingFormatter

    rec = logging.LogRecord("call", logging.INFO, __file__, 1, "heard %r (call %s)",
                            ("my card is 4111 1111 1111 1111 and my email is a.b@c.com", "1733081234.56"), None)
    for json_lines in (False, True):
        line = ScrubbingFormatter(json_lines).format(rec)
        assert "4111" not in line and "a.b@c.com" not in line and "[CARD]" in line and "[EMAIL]" in line
        assert "1733081234.56" in line
    plain = ScrubbingFormatter(False).format(rec)
    assert plain[:4].isdigit() and plain[4] == "-"  # the timestamp itself is left alone
    assert "4111" in ScrubbingFormatter(False, redact_pii=False).format(rec)
    try:
        raise ValueError("card 4111111111111111 refused")
    except ValueError:
        exc = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    exc.exc_text = "unredacted text another handler cached: 4111111111111111"
    for json_lines in (False, True):
        out = ScrubbingFormatter(json_lines).format(exc)
        assert "4111111111111111" not in out and "[CARD]" in out


_CARRIER = st.lists(st.sampled_from(["hi", "so", "yeah", "it's", "that", "is", "um", "uh", "my", "okay", "right",
                                     "thanks", "please", "sure", ",", ".", "?", "mm", "well", "and", "then", "the"]),
                    max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["card", "phone", "email", "ssn", "nino"]), st.integers(0, 2**32), _CARRIER, _CARRIER)
def test_context_free_kinds_are_found_in_any_carrier(kind: str, seed: int, before: list[str],
                                                     after: list[str]) -> None:
    import random

    from . import redaction_corpus as corpus

    rng = random.Random(seed)
    value = {"card": corpus.card, "phone": corpus.phone, "email": corpus.email, "ssn": corpus.ssn,
             "nino": corpus.nino}[kind](rng)
    if (kind == "ssn" and "-" not in value) or (kind == "nino" and value[0].islower()):
        return  # spoken SSNs and spelt NI numbers need their keyword (see the generated set)
    head = " ".join(before) + (" " if before else "")
    text = head + value + (" " if after else "") + " ".join(after)
    found = find(text)
    covered = {i for f in found for i in range(f.start, f.end)}
    missed = [c for i, c in enumerate(value, start=len(head)) if c.isalnum() and i not in covered]
    if value[:2] in ("a ", "i "):  # an initial that is also a word ("a okafor at ..."): left, by choice
        missed = missed[1:]
    assert not missed, (text, redact(text))


def test_a_number_a_placeholder_ends_is_redacted_in_the_same_call() -> None:
    # found by test_idempotent_on_word_salad: "4111" glued to "one" is part of no number until the run after it
    # is replaced; then "one 6789 4111" is a 9-digit account number, and redacting again changed the text
    once = redact("one 6789 4111one 6789 6789 ")
    assert once == "[ACCOUNT][ACCOUNT] "
    assert redact(once) == once
