"""Fuzzing the conversation layer's parsers: the intent-map loader (YAML text from the business) and
the slot parsers (whatever the recogniser heard). The loader refuses bad maps with ConfigError
naming file, line and key; slot parsers answer None for what they cannot read, never raise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.conversation.intent_map import parse_intent_map
from ari_agent.conversation.slots.choice import parse_choice
from ari_agent.conversation.slots.dates import DateOrder, Direction, parse_date
from ari_agent.conversation.slots.digits import digit_runs, parse_digits, parse_dtmf
from ari_agent.conversation.slots.letters import PostcodeFormat, parse_letters, parse_postcode
from ari_agent.conversation.slots.numbers import parse_number, parse_ordinal
from ari_agent.conversation.slots.times import parse_time
from ari_agent.conversation.slots.yes_no import parse_yes_no, read_yes_no
from ari_agent.errors import ConfigError

from .fuzzing import FUZZ

# A small valid map: mutations of it reach deep into validation (the demo map is 10x bigger and slower).
MINIMAL_MAP = """\
version: 1
business_name: "Acme"
greeting: "Hello from {business_name}. How can I help?"
queues: [support]
fallback_queue: support
tools:
  base_url: "http://127.0.0.1:8700"
  definitions:
    lookup_order: {method: GET, url: "{base_url}/orders/{order_number}", timeout_ms: 1500}
intents:
  - name: order_status
    owner: "Dana"
    description: "Where an order is."
    verification: none
    slots:
      - name: order_number
        type: digits
        min_length: 4
        max_length: 8
        prompt: "What's your order number?"
    tools: [lookup_order]
    steps:
      - tool: lookup_order
        args: {order_number: "{order_number}"}
    responses:
      answer: "Order {order_number} is {result.status}."
    output_contract:
      completes: "The caller heard the status."
      requires: [status]
    examples: ["where is my order", "track my parcel"]
"""
LINES = MINIMAL_MAP.splitlines()
YAML_BITS = ["", " ", "  ", ":", "- ", "{", "}", "[", "]", "'", '"', "#", "&a", "*a", "!!python/object:os.system",
             "null", "~", "true", "0", "-1", "1e999", "<<: *a", "\t", "\x00", "\ufeff", "? ", "|", ">", "%YAML 1.2",
             "---", "...", "version: 2", "type: banana", "queues: []", "intents: {}", "name: order_status"]


@st.composite
def mutated_maps(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "splice", "duplicate"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        bit = draw(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=12)))
        if not lines:
            lines = [bit]
        elif op == "delete":
            del lines[i]
        elif op == "insert":
            lines.insert(i, bit)
        elif op == "replace":
            lines[i] = bit
        elif op == "splice":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + bit + lines[i][at:]
        else:
            lines.insert(i, lines[i])
    return "\n".join(lines) + "\n"


@FUZZ
@given(st.one_of(mutated_maps(), st.text(max_size=300)))
def test_intent_map_loader_raises_only_config_error(fuzz_cases: Callable[[], None], text: str) -> None:
    fuzz_cases()
    try:
        parse_intent_map(text, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


SPOKEN = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twenty", "thirty", "hundred", "thousand", "double", "triple", "and", "a", "half", "past", "quarter", "to",
          "am", "pm", "noon", "midnight", "tomorrow", "today", "next", "last", "monday", "friday", "the", "of",
          "january", "may", "march", "december", "first", "second", "third", "twenty-first", "31st", "1st", "yes",
          "no", "not", "yeah", "nope", "maybe", "sure", "don't", "b", "for", "bravo", "sw1a", "1aa", "m1", "ec1a",
          "4", "12", "2026", "10:30", "12/04/1985", "99", "-", ",", ".", "?", "#", "*", "½", "٣", "①"]
utterances = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(SPOKEN), max_size=14).map(" ".join))
TODAY = date(2026, 3, 10)
DIRECTIONS: tuple[Direction, ...] = ("any", "past", "future")
ORDERS: tuple[DateOrder, ...] = ("MDY", "DMY")
POSTCODES: tuple[PostcodeFormat, ...] = ("any", "uk", "us")


@FUZZ
@given(utterances, st.integers(1, 12), st.integers(0, 12))
def test_slot_parsers_never_raise(fuzz_cases: Callable[[], None], text: str, lo: int, extra: int) -> None:
    fuzz_cases()
    hi = lo + extra
    digits = parse_digits(text, lo, hi)
    assert digits is None or (digits.isascii() and digits.isdigit() and lo <= len(digits) <= hi)
    assert all(run.isdigit() for run in digit_runs(text))
    keyed = parse_dtmf(text, lo, hi)
    assert keyed is None or lo <= len(keyed) <= hi
    parse_number(text)
    parse_ordinal(text)
    for direction in DIRECTIONS:
        for order in ORDERS:
            parse_date(text, TODAY, direction=direction, order=order)
    parse_time(text)
    parse_time(text, require_cue=True)
    letters = parse_letters(text, lo, hi, allow_digits=True)
    assert letters is None or lo <= len(letters) <= hi
    for fmt in POSTCODES:
        parse_postcode(text, fmt, 2, 10)
    parse_yes_no(text)
    read_yes_no(text, "Shall I move it to Tuesday?")
    parse_choice(text, {"gold": ("golden",), "silver": (), "two words": ("a pair",)})
