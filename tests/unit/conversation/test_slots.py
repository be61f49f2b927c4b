"""Slot parsers: every spoken form the engine accepts, and properties over generated input."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_agent.conversation.intent_map import SlotSpec
from ari_agent.conversation.slots import SlotValue, extract_slots, parse_slot, parse_slot_dtmf
from ari_agent.conversation.slots.choice import parse_choice
from ari_agent.conversation.slots.dates import parse_date, spoken_date
from ari_agent.conversation.slots.digits import digit_runs, parse_digits, parse_dtmf
from ari_agent.conversation.slots.letters import parse_letters
from ari_agent.conversation.slots.numbers import parse_number, parse_ordinal
from ari_agent.conversation.slots.times import parse_time, spoken_time
from ari_agent.conversation.slots.yes_no import parse_yes_no, read_yes_no

TODAY = date(2026, 3, 4)  # Wednesday
DIGIT_WORD = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


# ------------------------------------------------------------------ digits


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("four five six seven", "4567"),
        ("4567", "4567"),
        ("45 six 7", "4567"),
        ("double two three four", "2234"),
        ("triple five one", "5551"),
        ("oh four one two", "0412"),
        ("nought one two three", "0123"),
        ("forty five sixty seven", "4567"),
        ("twelve thirty four", "1234"),
        ("one hundred and five two", "1052"),
        ("four five, uh, six seven", "4567"),
        ("four five dash six seven", "4567"),
        ("four five for seven", "4547"),  # "for" between digits: the recogniser's "four"
        ("it's order number four five six seven please", "4567"),
        ("I ordered 2 things, order 4567", "4567"),  # the run that fits the length wins
        ("4,567", "4567"),
        ("double oh seven one", "0071"),
    ],
)
def test_spoken_digits(text: str, want: str) -> None:
    assert parse_digits(text, 4, 8) == want


@pytest.mark.parametrize("text", ["", "I don't know", "one two", "calling for my order", "a b c d"])
def test_no_digits_or_too_few(text: str) -> None:
    assert parse_digits(text, 4, 8) is None


def test_for_and_to_outside_a_digit_run_are_words() -> None:
    assert digit_runs("I'm calling for order four five six seven to check") == ["4567"]


def test_runs_split_by_a_word_are_joined_when_only_together_they_fit() -> None:
    assert parse_digits("four five well six seven", 4, 4) == "4567"


@pytest.mark.parametrize(
    ("keys", "want"), [("4567#", "4567"), ("4567", "4567"), ("12*4567#", "4567"), ("45#67", None), ("#", None)]
)
def test_dtmf(keys: str, want: str | None) -> None:
    assert parse_dtmf(keys, 4, 8) == want


@given(st.lists(st.integers(0, 9), min_size=4, max_size=8))
@settings(max_examples=60, deadline=None)
def test_digits_spoken_one_by_one_round_trip(digits: list[int]) -> None:
    spoken = " ".join(DIGIT_WORD[d] if i % 2 else str(d) for i, d in enumerate(digits))
    assert parse_digits(spoken, 4, 8) == "".join(map(str, digits))


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("text", "want"),
    [("forty-two", 42), ("forty two", 42), ("one hundred and five", 105), ("a hundred", 100), ("twelve", 12),
     ("two thousand and twenty six", 2026), ("3", 3), ("zero", 0), ("nine hundred ninety nine", 999)],
)
def test_numbers(text: str, want: int) -> None:
    assert parse_number(text) == want


@pytest.mark.parametrize(("text", "want"), [("fifth", 5), ("twenty first", 21), ("thirty-first", 31), ("5th", 5),
                                             ("22nd", 22), ("twelfth", 12)])
def test_ordinals(text: str, want: int) -> None:
    assert parse_ordinal(text) == want


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("today", date(2026, 3, 4)),
        ("tomorrow", date(2026, 3, 5)),
        ("the day after tomorrow", date(2026, 3, 6)),
        ("Tuesday", date(2026, 3, 10)),
        ("this Friday", date(2026, 3, 6)),
        ("next Tuesday", date(2026, 3, 10)),  # the Tuesday of next week
        ("next Friday", date(2026, 3, 13)),  # not this week's Friday
        ("Tuesday next week", date(2026, 3, 10)),
        ("last Friday", date(2026, 2, 27)),
        ("the fifth of March", date(2026, 3, 5)),
        ("March fifth", date(2026, 3, 5)),
        ("March 5th", date(2026, 3, 5)),
        ("5 March", date(2026, 3, 5)),
        ("the first of March", date(2027, 3, 1)),  # already past this year: next year
        ("the 20th", date(2026, 3, 20)),
        ("the 2nd", date(2026, 4, 2)),  # this month's 2nd is past: next month
        ("3/5", date(2026, 3, 5)),
        ("3/5/2027", date(2027, 3, 5)),
        ("2026-04-01", date(2026, 4, 1)),
        ("in two weeks", date(2026, 3, 18)),
        ("in three days", date(2026, 3, 7)),
        ("in a week", date(2026, 3, 11)),
        ("5 March 2027", date(2027, 3, 5)),
        ("March fifth twenty twenty seven", date(2027, 3, 5)),
        ("the fifth of May", date(2026, 5, 5)),
        ("the fifth of March, no, the twelfth of March", date(2026, 3, 12)),  # the last one wins
        ("from Saturday to Tuesday", date(2026, 3, 10)),
    ],
)
def test_dates(text: str, want: date) -> None:
    assert parse_date(text, TODAY) == want


def test_day_month_order() -> None:
    assert parse_date("3/5", TODAY, order="DMY") == date(2026, 5, 3)


@pytest.mark.parametrize(
    ("text", "want"),
    [("April 12th 1985", date(1985, 4, 12)), ("the twelfth of April nineteen eighty five", date(1985, 4, 12)),
     ("September 30th", date(2025, 9, 30)), ("Friday", date(2026, 2, 27))],
)
def test_dates_in_the_past(text: str, want: date) -> None:
    assert parse_date(text, TODAY, direction="past") == want


@pytest.mark.parametrize("text", ["wait a second", "may I move it", "next week", "the thirty second of May", "2/30"])
def test_no_date(text: str) -> None:
    assert parse_date(text, TODAY) is None


@given(st.dates(min_value=date(2026, 3, 4), max_value=date(2027, 3, 3)))
@settings(max_examples=80, deadline=None)
def test_spoken_date_reads_back(d: date) -> None:
    assert parse_date(spoken_date(d, TODAY), TODAY) == d


# ------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("half past three", time(15, 30)),
        ("quarter past ten in the morning", time(10, 15)),
        ("quarter to four", time(15, 45)),
        ("ten past two", time(14, 10)),
        ("twenty five to six", time(17, 35)),
        ("3 pm", time(15, 0)),
        ("3pm", time(15, 0)),
        ("3:30", time(15, 30)),
        ("3:30 p.m.", time(15, 30)),
        ("9 a m", time(9, 0)),
        ("15:30", time(15, 30)),
        ("fifteen thirty", time(15, 30)),
        ("fifteen hundred", time(15, 0)),
        ("three o'clock", time(15, 0)),
        ("three thirty", time(15, 30)),
        ("three oh five", time(15, 5)),
        ("nine in the morning", time(9, 0)),
        ("seven in the evening", time(19, 0)),
        ("at 9", time(9, 0)),
        ("eleven", time(11, 0)),
        ("twelve thirty", time(12, 30)),
        ("noon", time(12, 0)),
        ("midday", time(12, 0)),
        ("midnight", time(0, 0)),
        ("three, no, four pm", time(16, 0)),
    ],
)
def test_times(text: str, want: time) -> None:
    assert parse_time(text) == want


def test_bare_numbers_are_no_time_in_passing() -> None:
    assert parse_time("I have 2 appointments") == time(14, 0)
    assert parse_time("I have 2 appointments", require_cue=True) is None
    assert parse_time("move it to Friday at 2", require_cue=True) == time(14, 0)


@pytest.mark.parametrize(
    ("text", "want"),
    [("half three", time(15, 30)), ("next Tuesday at half three", time(15, 30)), ("half 3 pm", time(15, 30)),
     ("half seven in the morning", time(7, 30)), ("half past three", time(15, 30)), ("half an hour", None)],
)
def test_half_hour_the_british_way(text: str, want: time | None) -> None:
    assert parse_time(text) == want
    assert parse_time(text, require_cue=True) == want


@given(st.integers(8, 17), st.sampled_from([0, 15, 30, 45]))
def test_spoken_time_reads_back(hour: int, minute: int) -> None:
    t = time(hour, minute)
    assert parse_time(spoken_time(t)) == t


# ------------------------------------------------------------------ yes / no


@pytest.mark.parametrize(
    "text",
    ["yes", "yeah", "yep", "yup", "sure", "that's right", "that is correct", "correct", "go ahead", "please do",
     "ok", "okay", "uh huh", "absolutely", "yes please", "sounds good", "no problem"],
)
def test_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    ["no", "nope", "nah", "not really", "no thanks", "that's wrong", "not right", "don't", "cancel",
     "yes... no, wait", "absolutely not", "I'd rather not"],
)
def test_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "hmm let me think", "what"])
def test_neither(text: str) -> None:
    assert parse_yes_no(text) is None


@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        ("I am not sure", "unclear", "hedge"),
        ("that's not right", "no", "negative"),
        ("is that right?", "unclear", "question"),
        ("is that right", "unclear", "question"),
        ("I can't confirm that", "unclear", "hedge"),
        ("confirm what exactly?", "unclear", "question"),
        ("fine whatever", "unclear", "sarcasm"),
        ("why not ask my wife first", "unclear", "question"),
        ("I guess", "unclear", "hedge"),
        ("I suppose", "unclear", "hedge"),
        ("maybe", "unclear", "hedge"),
        ("wait", "unclear", "wait"),
        ("hold on", "unclear", "wait"),
        ("only if it's free", "unclear", "condition"),
        ("yes but not now", "unclear", "condition"),
        ("yeah no", "no", "negative"),
        ("no, yes", "unclear", "mixed"),
        ("great, another robot", "unclear", "sarcasm"),
        ("sure... not", "unclear", "sarcasm"),
        ("yes my wife says so", "unclear", "other"),
        ("Yeah, go ahead.", "yes", "affirmative"),
        ("uh huh", "yes", "affirmative"),
        ("do it", "yes", "affirmative"),
        ("no problem", "yes", "affirmative"),
        ("um, yes please", "yes", "affirmative"),
        ("don't do it", "no", "negative"),
        ("no, maybe later", "no", "negative"),
    ],
)
def test_read_yes_no_verdicts(text: str, verdict: str, reason: str) -> None:
    got = read_yes_no(text)
    assert (got.verdict, got.reason) == (verdict, reason), got


def test_a_yes_may_repeat_the_question() -> None:
    question = "Thanks, you're verified. Shall I unlock your online account now?"
    assert read_yes_no("yes please unlock my online account now", question).yes
    assert read_yes_no("yes I want it unlocked", question).yes
    assert read_yes_no("yes please unlock my online account now").unclear  # not without the question
    assert read_yes_no("yes unlock my wife's account", question).unclear


# ------------------------------------------------------------------ letters, choices


@pytest.mark.parametrize(
    ("text", "want"),
    [("a b c", "ABC"), ("a as in alpha", "A"), ("bravo charlie", "BC"), ("be as in bravo", "B"),
     ("double you x-ray", "WX"), ("d for delta e for echo", "DE"), ("double l", "LL"), ("zed", "Z"),
     ("the letter see", "C")],
)
def test_letters(text: str, want: str) -> None:
    assert parse_letters(text) == want


def test_letters_refuse_words() -> None:
    assert parse_letters("my name is Smith") is None


@pytest.mark.parametrize(
    ("text", "want"),
    [("SW1A 1AA", "SW1A1AA"), ("my postcode is SW1A 1AA", "SW1A1AA"), ("S W one A one A A", "SW1A1AA"),
     ("sierra whiskey one alpha one alpha alpha", "SW1A1AA"), ("M1 1AE", "M11AE")],
)
def test_alphanumeric_codes(text: str, want: str) -> None:
    assert parse_letters(text, 5, 8, allow_digits=True) == want


CHOICES = {"morning": ("am", "before noon"), "late morning": (), "afternoon": ("pm", "after lunch")}


@pytest.mark.parametrize(
    ("text", "want"),
    [("morning please", "morning"), ("after lunch", "afternoon"), ("late morning", "late morning"),
     ("the second one", "late morning"), ("the last one", "afternoon"), ("morning or afternoon", None),
     ("evening", None)],
)
def test_choices(text: str, want: str | None) -> None:
    assert parse_choice(text, CHOICES) == want


# ------------------------------------------------------------------ parse_slot / DTMF / extraction


def _slot(**kw: object) -> SlotSpec:
    return SlotSpec.model_validate({"name": "s", "prompt": "?", **kw})


def test_parse_slot_gives_canonical_and_spoken_values() -> None:
    assert parse_slot(_slot(type="digits", min_length=4), "four five six seven", today=TODAY) == SlotValue(
        "4567", "4 5 6 7")
    assert parse_slot(_slot(type="date"), "next tuesday", today=TODAY) == SlotValue("2026-03-10",
                                                                                   "Tuesday, March 10th")
    assert parse_slot(_slot(type="time"), "half past three", today=TODAY) == SlotValue("15:30", "3:30 PM")
    assert parse_slot(_slot(type="yes_no"), "yep", today=TODAY) == SlotValue("yes", "yes")
    assert parse_slot(_slot(type="number", min=1, max=10), "forty two", today=TODAY) is None
    assert parse_slot(_slot(type="number", min=1, max=100), "forty two", today=TODAY) == SlotValue("42", "42")
    assert parse_slot(_slot(type="letters"), "a b c", today=TODAY) == SlotValue("ABC", "A B C")
    assert parse_slot(_slot(type="choice", choices=["red", "blue"]), "blue please", today=TODAY) == SlotValue(
        "blue", "blue")
    assert parse_slot(_slot(type="free_text"), "The boiler is Leaking!", today=TODAY) == SlotValue(
        "the boiler is leaking", "the boiler is leaking")


def test_in_passing_takes_only_unmistakable_values() -> None:
    assert parse_slot(_slot(type="yes_no"), "yes", today=TODAY, in_passing=True) is None
    assert parse_slot(_slot(type="free_text"), "hello", today=TODAY, in_passing=True) is None
    assert parse_slot(_slot(type="time"), "I have 2 kids", today=TODAY, in_passing=True) is None


def test_dtmf_for_slots() -> None:
    assert parse_slot_dtmf(_slot(type="digits", min_length=4, max_length=4), "4567#") == SlotValue("4567",
                                                                                                   "4 5 6 7")
    assert parse_slot_dtmf(_slot(type="digits", min_length=4, max_length=4, dtmf=False), "4567#") is None
    assert parse_slot_dtmf(_slot(type="yes_no"), "1") == SlotValue("yes", "yes")
    assert parse_slot_dtmf(_slot(type="yes_no"), "2") == SlotValue("no", "no")
    assert parse_slot_dtmf(_slot(type="number", max=50), "42#") == SlotValue("42", "42")
    assert parse_slot_dtmf(_slot(type="date"), "0305") is None


def test_extract_slots_from_a_request() -> None:
    specs = [_slot(type="date").model_copy(update={"name": "day"}), _slot(type="time").model_copy(
        update={"name": "at"})]
    got = extract_slots(specs, "move my appointment to next Tuesday at half past three", today=TODAY)
    assert {k: v.value for k, v in got.items()} == {"day": "2026-03-10", "at": "15:30"}


@given(st.text(max_size=80))
@settings(max_examples=150, deadline=None)
def test_parsers_never_raise(text: str) -> None:
    parse_digits(text)
    parse_number(text)
    parse_date(text, TODAY)
    parse_date(text, TODAY, direction="past")
    parse_time(text)
    parse_yes_no(text)
    parse_letters(text, allow_digits=True)
    parse_choice(text, CHOICES)
