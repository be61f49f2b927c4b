"""Slot values from spoken forms: one parser per slot type, and ``parse_slot`` choosing among them.

Every parser is pure: dates are resolved against a ``today`` passed in, never the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from ari_agent.conversation.intent_map import SlotSpec
from ari_agent.conversation.slots.choice import parse_choice
from ari_agent.conversation.slots.dates import DateOrder, parse_date, spoken_date
from ari_agent.conversation.slots.digits import parse_digits, parse_dtmf, spoken_digits
from ari_agent.conversation.slots.letters import (
    PostcodeFormat,
    parse_letters,
    parse_postcode,
    spoken_letters,
    spoken_postcode,
)
from ari_agent.conversation.slots.numbers import parse_number
from ari_agent.conversation.slots.times import parse_time, spoken_time
from ari_agent.conversation.slots.words import tokens
from ari_agent.conversation.slots.yes_no import parse_yes_no

__all__ = [
    "SlotValue", "extract_slots", "parse_choice", "parse_date", "parse_digits", "parse_dtmf", "parse_letters",
    "parse_number", "parse_slot", "parse_slot_dtmf", "parse_time", "parse_yes_no",
]


@dataclass(frozen=True)
class SlotValue:
    """A filled slot: ``value`` is canonical (tool arguments: "4567", "2026-03-10", "15:30", "yes"),
    ``spoken`` is how the agent reads it back ("4 5 6 7", "Tuesday, March 10th", "3:30 PM")."""

    value: str
    spoken: str


def parse_slot(
    spec: SlotSpec, text: str, *, today: date, date_order: DateOrder = "MDY", postcode: PostcodeFormat = "any",
    in_passing: bool = False,
) -> SlotValue | None:
    """The value of ``spec`` in ``text``, or None.

    ``in_passing=True`` is for text that was not an answer to this slot's question (the caller's
    opening request): only values that cannot be mistaken are taken then (no bare hour for a time, no
    yes/no, no free text).
    """
    kind = spec.type
    if kind == "digits":
        digits = parse_digits(text, spec.min_length or 1, spec.max_length or 32)
        return SlotValue(digits, spoken_digits(digits)) if digits is not None else None
    if kind == "number":
        n = parse_number(text)
        if n is None or (spec.min is not None and n < spec.min) or (spec.max is not None and n > spec.max):
            return None
        return SlotValue(str(n), str(n))
    if kind == "date":
        d = parse_date(text, today, direction=spec.direction, order=date_order)
        return SlotValue(d.isoformat(), spoken_date(d, today)) if d is not None else None
    if kind == "time":
        t = parse_time(text, require_cue=in_passing)
        return SlotValue(t.strftime("%H:%M"), spoken_time(t)) if t is not None else None
    if kind == "choice":
        c = parse_choice(text, spec.choice_map())
        return SlotValue(c, c) if c is not None else None
    if in_passing:
        return None
    if kind == "yes_no":
        yn = parse_yes_no(text)
        return None if yn is None else SlotValue("yes" if yn else "no", "yes" if yn else "no")
    if kind == "letters" and spec.format == "postcode":  # the map's locale.postcode shape, sent as "SW1A1AA"
        code = parse_postcode(text, postcode, spec.min_length or 2, spec.max_length or 10)
        return SlotValue(code, spoken_postcode(code, postcode)) if code is not None else None
    if kind == "letters":
        letters = parse_letters(text, spec.min_length or 1, spec.max_length or 64, allow_digits=spec.alphanumeric)
        return SlotValue(letters, spoken_letters(letters)) if letters is not None else None
    words = tokens(text)
    return SlotValue(" ".join(words), " ".join(words)) if words else None


def parse_slot_dtmf(spec: SlotSpec, digits: str) -> SlotValue | None:
    """A keypad entry for ``spec`` (digits and number slots that accept DTMF; yes/no as 1/2)."""
    if spec.type == "digits" and spec.dtmf:
        got = parse_dtmf(digits, spec.min_length or 1, spec.max_length or 32)
        return SlotValue(got, spoken_digits(got)) if got is not None else None
    if spec.type == "number" and spec.dtmf:
        got = parse_dtmf(digits)
        if got is None:
            return None
        n = int(got)
        if (spec.min is not None and n < spec.min) or (spec.max is not None and n > spec.max):
            return None
        return SlotValue(str(n), str(n))
    if spec.type == "yes_no":
        key = parse_dtmf(digits, 1, 1)
        if key in ("1", "2"):
            return SlotValue("yes" if key == "1" else "no", "yes" if key == "1" else "no")
    return None


def extract_slots(
    specs: Sequence[SlotSpec], text: str, *, today: date, date_order: DateOrder = "MDY"
) -> dict[str, SlotValue]:
    """The slot values a caller gave in passing in a request ("track order four five six seven")."""
    found: dict[str, SlotValue] = {}
    for spec in specs:
        value = parse_slot(spec, text, today=today, date_order=date_order, in_passing=True)
        if value is not None:
            found[spec.name] = value
    return found
