"""Slot parsers on what whisper writes on a phone line (docs/speech-bench.md, "Failure examples"): the
recogniser was close and the parser must take it, and nothing it takes may turn a non-answer into a yes."""

from __future__ import annotations

from datetime import date, time

import pytest

from ari_agent.conversation.slots.dates import parse_date
from ari_agent.conversation.slots.digits import parse_digits
from ari_agent.conversation.slots.letters import parse_postcode
from ari_agent.conversation.slots.postcode_reading import closest_uk_postcode
from ari_agent.conversation.slots.times import parse_time
from ari_agent.conversation.slots.yes_no import read_yes_no

TODAY = date(2026, 3, 4)


@pytest.mark.parametrize(("text", "want"), [
    ("23 of March.", date(2026, 3, 23)), ("the tenths of march.", date(2026, 3, 10)),
    ("The seconds of April.", date(2026, 4, 2)), ("23 March", date(2026, 3, 23)),
])
def test_numeral_and_plural_ordinal_days_before_a_month(text: str, want: date) -> None:
    assert parse_date(text, TODAY) == want


@pytest.mark.parametrize("text", ["seconds", "a few seconds", "the tenths"])
def test_a_plural_ordinal_without_a_month_is_no_date(text: str) -> None:
    assert parse_date(text, TODAY) is None


@pytest.mark.parametrize(("text", "want"), [
    ("1030.", time(10, 30)), ("This is 845.", time(8, 45)), ("1230.", time(12, 30)), ("and 245.", time(14, 45)),
    ("Any time after 3, say 315.", time(15, 15)), ("to PM.", time(14, 0)), ("for o'clock", time(16, 0)),
    ("at 845 pm", time(20, 45)),
])
def test_clock_numerals_and_hour_homophones_in_a_time_answer(text: str, want: time) -> None:
    assert parse_time(text) == want


@pytest.mark.parametrize("text", ["1999", "975", "number 1030", "go to the shop"])
def test_numbers_that_are_no_clock_time(text: str) -> None:
    assert parse_time(text) is None


def test_a_bare_numeral_is_no_time_in_passing() -> None:
    assert parse_time("order 1030", require_cue=True) is None


@pytest.mark.parametrize(("text", "verdict"), [
    ("But, yes.", "yes"), ("at now.", "no"), ("Now now now", "no"), ("No? No?", "no"), ("Not now? No.", "no"),
    ("yes now please", "yes"), ("but only if it's free", "unclear"), ("But why?", "unclear"), ("yes?", "unclear"),
    ("no, is that right?", "unclear"), ("but", "unclear"), ("But I'm busy", "unclear"),
])
def test_yes_no_on_whisper_text(text: str, verdict: str) -> None:
    assert read_yes_no(text).verdict == verdict


@pytest.mark.parametrize(("text", "want"), [
    ("S1 to Fg.", "S12FG"), ("M23 for QR.", "M234QR"), ("and one nine GU.", "N19GU"), ("and W3 to KL.", "NW32KL"),
    ("Bravo 3 3 8 and go hotel.", "B338TH"), ("Charlie Romeo to 6x Red Hotel.", "CR26XH"),
    ("Oscar X-Ray 1 to Julia Delta.", "OX12JD"), ("I'm a Sierra one for Delta Yankee.", "LS14DY"),
    ("P0138X", "PO13AX"), ("My postcode is Y01, 7HH.", "YO17HH"), ("TN9 1 double A.", "TN91AA"),
    ("My post code is easy 1A 1Bb.", "EC1A1BB"),
    # the clean spellings stay exact
    ("S W one A, one A A", "SW1A1AA"), ("P O one, three A X", "PO13AX"), ("W one A, oh A X", "W1A0AX"),
    ("S as in sugar, E, one, five, A as in apple, B", "SE15AB"), ("Papa Echo two, one Bravo Bravo", "PE21BB"),
])
def test_the_closest_uk_postcode(text: str, want: str) -> None:
    assert closest_uk_postcode(text) == want
    assert parse_postcode(text, "uk") == want


@pytest.mark.parametrize("text", ["Thank you, you are here.", "If you want to want you to.", "", "yes",
                                  "I'd like to book a taxi for four people at two"])
def test_what_is_no_postcode_stays_none(text: str) -> None:
    assert closest_uk_postcode(text) is None


@pytest.mark.parametrize(("text", "want"), [
    ("7 7 4 2. 7 7 7 4 2.", "7742"),  # a repeat with a slip: one sentence fits
    ("4 5. 6 7.", "4567"),  # groups across sentences still join
])
def test_digits_when_one_sentence_fits(text: str, want: str) -> None:
    assert parse_digits(text, 4, 4) == want


@pytest.mark.parametrize("text", ["1 2 3 4. 5 6 7 8.", "1 2 3 4. 5 6 7.", "5 6 8 3 1.", "12345. 1 2 3 4 5 6", "1.5"])
def test_digits_in_sentences_that_are_no_repeat_stay_none(text: str) -> None:
    assert parse_digits(text, 4, 4) is None


@pytest.mark.parametrize("text", ["past three.", "Pass past three.", "No. past three.", "after three", "before 4 pm"])
def test_an_hour_after_past_with_its_minutes_lost_is_no_time(text: str) -> None:
    # whisper heard "half past three" as "past three." on a call (eval voice-phrasings): 3 pm read back,
    # the caller said no, three times. With no value, the paired grammar's "half past three" is read back.
    assert parse_time(text) is None


@pytest.mark.parametrize(("text", "want"), [
    ("half past three", time(15, 30)), ("ten past three", time(15, 10)), ("move it to three", time(15, 0)),
    ("twenty five past three", time(15, 25)), ("a quarter past nine am", time(9, 15)),
])
def test_times_with_their_minutes_still_read(text: str, want: time) -> None:
    assert parse_time(text) == want
