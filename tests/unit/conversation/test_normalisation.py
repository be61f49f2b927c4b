"""Normalisation before parsing: any script's digits, NFKC, whisper's punctuation, typed postcodes,
the map's date order; and what reaches a tool is what its request contract declares."""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_agent.conversation import intent_map as intent_map_module
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap, SlotSpec
from ari_agent.conversation.slots import SlotValue, parse_slot
from ari_agent.conversation.slots.dates import parse_date
from ari_agent.conversation.slots.digits import parse_digits, parse_dtmf
from ari_agent.conversation.slots.letters import PostcodeFormat, parse_letters, parse_postcode, spoken_postcode
from ari_agent.conversation.slots.numbers import parse_number
from ari_agent.conversation.slots.words import normalise, tokens
from ari_agent.integrations.contracts import LookupOrderRequest, VerifyIdentityRequest
from ari_agent.seam import Action, CallStarted, CallTool, Utterance

from .conftest import TODAY

Make = Callable[..., ConversationEngine]

# ------------------------------------------------------------------ normalise / tokens


@pytest.mark.parametrize(
    ("text", "want"),
    [("４５６７", "4567"), ("٤٥٦٧", "4567"), ("۴۵۶۷", "4567"), ("४५६७", "4567"), ("১২৩৪", "1234"),
     ("๑๒๓๔", "1234"), ("ＳＷ１Ａ　１ＡＡ", "SW1A 1AA"), ("It’s 1–0–0–1.", "It's 1-0-0-1."),
     ("１５：３０", "15:30"), ("“yes”", '"yes"'), ("plain ascii", "plain ascii")],
)
def test_normalise(text: str, want: str) -> None:
    assert normalise(text) == want


def test_tokens_hold_only_ascii_digits() -> None:
    assert tokens("order ٤٥٦٧, please") == ["order", "4567", "please"]
    assert tokens("Ｏｒｄｅｒ　４５６７") == ["order", "4567"]


@given(st.text(max_size=60))
@settings(max_examples=200, deadline=None)
def test_every_digit_a_parser_returns_is_ascii(text: str) -> None:
    for tok in tokens(text):
        assert all(c.isascii() for c in tok if c.isdigit()), tok
    got = parse_digits(text)
    assert got is None or (got.isascii() and got.isdigit())
    code = parse_letters(text, allow_digits=True)
    assert code is None or (code.isascii() and code.isalnum())
    parse_postcode(text, "uk")
    parse_postcode(text, "us")
    parse_date(text, TODAY, order="DMY")


# ------------------------------------------------------------------ digits


@pytest.mark.parametrize(
    "text",
    ["４５６７", "٤٥٦٧", "۴۵۶۷", "४५६७", "order number ٤٥٦٧ please", "It's 4 5 6 7.", "4567", "4567.",
     "4-5-6-7.", "4, 5, 6, 7.", "four five six seven.", "It’s 45 67.", "#4567", "4,567"],
)
def test_digits_in_any_script_and_punctuation(text: str) -> None:
    assert parse_digits(text, 4, 8) == "4567"


@pytest.mark.parametrize(("text", "want"), [("It's 1 2 3 4.", "1234"), ("1-0-0-1.", "1001"), ("１００１", "1001"),
                                            ("١٠٠١", "1001"), ("one zero zero one.", "1001")])
def test_customer_numbers_as_whisper_writes_them(text: str, want: str) -> None:
    assert parse_digits(text, 4, 4) == want


def test_digit_slot_value_is_what_the_order_contract_takes() -> None:
    spec = SlotSpec(name="order_number", type="digits", prompt="?", min_length=4, max_length=8)
    got = parse_slot(spec, "٤٥٦٧", today=TODAY)
    assert got == SlotValue("4567", "4 5 6 7")
    assert LookupOrderRequest(order_number=got.value).order_number == "4567"


def test_numbers_in_any_script() -> None:
    assert parse_number("٤٢") == 42 and parse_number("４２ people") == 42


def test_dtmf_takes_keypad_digits_only() -> None:
    assert parse_dtmf("4567#") == "4567"
    assert parse_dtmf("٤٥٦٧#") is None and parse_dtmf("4²67", 4, 4) is None


# ------------------------------------------------------------------ postcodes


@pytest.mark.parametrize(
    ("text", "want"),
    [("SW1A1AA", "SW1A1AA"), ("sw1a 1aa", "SW1A1AA"), ("sw1a1aa", "SW1A1AA"), ("SW1A 1AA", "SW1A1AA"),
     ("M11AE", "M11AE"), ("M1 1AE", "M11AE"), ("m1 1ae", "M11AE"), ("S-W-1-A-1-A-A.", "SW1A1AA"),
     ("It's SW1A 1AA.", "SW1A1AA"), ("It’s M1 1AE.", "M11AE"), ("my postcode is sw1a1aa", "SW1A1AA"),
     ("ＳＷ１Ａ　１ＡＡ", "SW1A1AA"), ("SW1A-1AA", "SW1A1AA"), ("S W one A, 1AA", "SW1A1AA"),
     ("S W one A one A A", "SW1A1AA"), ("e h one, one y z", "EH11YZ"), ("EH1 1YZ.", "EH11YZ"),
     ("It's SW1A 1AA, thank you.", "SW1A1AA"), ("M1 1AE please", "M11AE")],
)
def test_postcodes_typed_or_recognised_with_or_without_spaces(text: str, want: str) -> None:
    assert parse_letters(text, 5, 8, allow_digits=True) == want
    assert parse_postcode(text, "uk") == want
    assert VerifyIdentityRequest(customer_id="C-1001", postcode=want).postcode == want


def test_spelling_words_are_not_taken_as_a_typed_code() -> None:
    # "one" is spelling, not a chunk of a typed code: not "SWONEA1AA"
    assert parse_letters("S W one A 1AA", 5, 9, allow_digits=True) == "SW1A1AA"
    assert parse_letters("hello there", 5, 8, allow_digits=True) is None


@pytest.mark.parametrize(
    ("text", "fmt", "want"),
    [("S W one A oh A A", "uk", "SW1A0AA"),  # "oh" where the inward code needs a digit
     ("SW1A OAA", "uk", "SW1A0AA"), ("G I R oh A A", "uk", "GIR0AA"),
     ("SW1A 1A", "uk", None), ("12345", "uk", None), ("ABCDEFG", "uk", None), ("flat 4", "uk", None),
     ("nine oh two one oh", "us", "90210"), ("90210-1234", "us", "902101234"), ("SW1A 1AA", "us", None),
     ("AB 12 CD", "any", "AB12CD"), ("flat 4", "any", "FLAT4")],
)
def test_postcode_formats(text: str, fmt: PostcodeFormat, want: str | None) -> None:
    assert parse_postcode(text, fmt) == want


def test_spoken_postcode_reads_outward_and_inward_apart() -> None:
    assert spoken_postcode("SW1A1AA", "uk") == "S W 1 A, 1 A A"
    assert spoken_postcode("AB12CD") == "A B 1 2 C D"


def test_postcode_formats_match_the_map_schema() -> None:
    assert typing.get_args(PostcodeFormat) == typing.get_args(intent_map_module.PostcodeFormat)


def test_demo_postcode_slots_are_uk_postcodes(demo_map: IntentMap) -> None:
    assert demo_map.spec.locale.postcode == "uk"
    verification = demo_map.spec.verification
    assert verification is not None
    for level in (verification.basic, verification.strong):
        slot = next(s for s in level.slots if s.name == "postcode")
        assert slot.format == "postcode" and slot.alphanumeric
        for text in ("SW1A1AA", "sw1a 1aa", "M11AE", "M1 1AE"):
            got = parse_slot(slot, text, today=TODAY)
            assert got is not None and got.value in ("SW1A1AA", "M11AE"), text


# ------------------------------------------------------------------ dates and the map's date order


@pytest.mark.parametrize(
    ("text", "order", "want"),
    [("12/04/1985", "MDY", date(1985, 12, 4)), ("12/04/1985", "DMY", date(1985, 4, 12)),
     ("30/09/1990", "DMY", date(1990, 9, 30)),
     ("30/09/1990", "MDY", date(1990, 9, 30)),  # impossible month-first: the only real reading
     ("09/30/1990", "DMY", date(1990, 9, 30)),  # and the same the other way round
     ("12.04.1985", "DMY", date(1985, 4, 12)), ("12-04-1985", "DMY", date(1985, 4, 12)),
     ("12/04/85", "DMY", date(1985, 4, 12)),  # a date of birth is in the past: 1985, not 2085
     ("It was 12/4/85.", "DMY", date(1985, 4, 12)), ("١٢/٠٤/١٩٨٥", "DMY", date(1985, 4, 12)),
     ("１２／０４／１９８５", "DMY", date(1985, 4, 12)), ("１９８５－０４－１２", "MDY", date(1985, 4, 12)),
     ("31/31/1990", "DMY", None), ("29/02/2023", "DMY", None), ("02/30/1990", "MDY", None)],
)
def test_slashed_dates_follow_the_map_order(text: str, order: typing.Literal["MDY", "DMY"],
                                            want: date | None) -> None:
    assert parse_date(text, TODAY, direction="past", order=order) == want


def test_yearless_and_future_dates_follow_the_order() -> None:
    assert parse_date("3/5", TODAY, order="MDY") == date(2026, 3, 5)
    assert parse_date("3/5", TODAY, order="DMY") == date(2026, 5, 3)
    assert parse_date("30/9", TODAY, order="MDY") == date(2026, 9, 30)
    assert parse_date("10/03/26", TODAY, order="DMY") == date(2026, 3, 10)


def test_date_slot_uses_the_order_it_is_given() -> None:
    spec = SlotSpec(name="date_of_birth", type="date", prompt="?", direction="past")
    assert parse_slot(spec, "12/04/1985", today=TODAY, date_order="DMY") == SlotValue(
        "1985-04-12", "Friday, April 12th, 1985")
    mdy = parse_slot(spec, "12/04/1985", today=TODAY, date_order="MDY")
    assert mdy is not None and mdy.value == "1985-12-04"


# ------------------------------------------------------------------ through the engine, to the tool


def _answer(engine: ConversationEngine, *texts: str) -> list[Action]:
    out = engine.handle(CallStarted(caller_id="+15551230001"))
    for text in texts:
        out = engine.handle(Utterance(text))
    return out


def _tool_call(actions: list[Action]) -> CallTool:
    calls = [a for a in actions if isinstance(a, CallTool)]
    assert calls, actions
    return calls[-1]


def test_order_number_in_arabic_indic_digits_reaches_the_tool_as_ascii(make_engine: Make) -> None:
    call = _tool_call(_answer(make_engine(), "where is my order", "٤٥٦٧"))
    assert call.name == "lookup_order" and call.args == {"order_number": "4567"}
    LookupOrderRequest.model_validate(call.args)


def test_identity_typed_compactly_reaches_the_tool_as_its_contract_declares(make_engine: Make) -> None:
    call = _tool_call(_answer(make_engine(), "I'm locked out of my account", "１００２", "m11ae", "30/09/1990"))
    assert call.name == "verify_identity"
    assert call.args == {"customer_id": "C-1002", "postcode": "M11AE", "date_of_birth": "1990-09-30"}
    request = VerifyIdentityRequest.model_validate(call.args)
    assert request.postcode == "M11AE" and request.date_of_birth == date(1990, 9, 30)
