"""Spoken dates, resolved against a ``today`` the caller passes in (pure: no clock is read).

Understood: "today", "tomorrow", "the day after tomorrow", "in three days", "in two weeks",
"Tuesday", "this Tuesday", "next Tuesday", "last Tuesday", "the fifth of March", "March 5th",
"5 March 2027", "the 5th", "3/5", "3/5/2027", "2026-03-05", years as "twenty twenty seven" or
"two thousand and twenty seven".

Resolution rules (documented because callers are ambiguous):
- A bare weekday or "this <weekday>" is the first such day after today ("today" when it is today
  only if the caller says "today").
- "next <weekday>" is that weekday in the calendar week (Monday-Sunday) after the current one.
- A day and month without a year is the next such date on or after today (``direction="future"``),
  the last one on or before today (``"past"``, e.g. a date of birth), or this year's (``"any"``).
- "3/5" is month/day when ``order="MDY"`` (default) and day/month when ``order="DMY"`` (the map's
  ``date_order``); "12.04.1985" and "12-04-1985" are read like "12/04/1985". When the map's order
  gives an impossible date and the other order a real one ("30/09/1990" under MDY), the real one is
  taken: the caller can only have meant that one, a re-ask would only get the same digits again (and
  spend a reprompt on the way to a handoff), and where a date matters it is checked anyway (a write's
  confirm question says it in words, "September 30th, 1990"; a verification tool compares it with the
  record). A date impossible both ways ("31/31/1990") is no date: the slot is asked again.
- A two-digit year ("12/04/85") is in this century, or the last when that is in the wrong direction
  (a date of birth in 2085 is 1985).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from ari_agent import spoken_words
from ari_agent.conversation.slots.numbers import TEENS, TENS, UNITS, read_cardinal, read_ordinal
from ari_agent.conversation.slots.words import normalise, tokens

Direction = Literal["future", "past", "any"]
DateOrder = Literal["MDY", "DMY"]

WEEKDAYS: dict[str, int] = {
    **{w: i for i, w in enumerate(spoken_words.WEEKDAYS)},
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4, "sat": 5, "sun": 6,
}
MONTHS: dict[str, int] = {
    **{m: 1 + i for i, m in enumerate(spoken_words.MONTHS)},
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
MONTH_NAMES = tuple(m.capitalize() for m in spoken_words.MONTHS)
WEEKDAY_NAMES = tuple(w.capitalize() for w in spoken_words.WEEKDAYS)
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?$")
_DOTTED = re.compile(r"\b(\d{1,2})[.-](\d{1,2})[.-](\d{4}|\d{2})\b")  # 12.04.1985, 12-04-85


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _resolve_year(month: int, day: int, today: date, direction: Direction) -> date | None:
    this_year = _safe_date(today.year, month, day)
    if direction == "any":
        return this_year
    if direction == "future":
        if this_year is not None and this_year >= today:
            return this_year
        return _safe_date(today.year + 1, month, day)
    if this_year is not None and this_year <= today:
        return this_year
    return _safe_date(today.year - 1, month, day)


def read_year(words: list[str], i: int) -> tuple[int, int] | None:
    """A year: "2027", "twenty twenty seven", "nineteen eighty", "two thousand and five"."""
    n = len(words)
    if i >= n:
        return None
    w = words[i]
    if w.isdigit():
        return (int(w), i + 1) if len(w) == 4 else None
    # "twenty twenty seven", "nineteen eighty four", "twenty oh five"
    if (w in TENS or w in TEENS) and i + 1 < n:
        century = TENS.get(w) or TEENS[w]
        nxt = words[i + 1]
        if nxt in ("oh", "o") and i + 2 < n and words[i + 2] in UNITS:
            return century * 100 + UNITS[words[i + 2]], i + 3
        if nxt in TENS or nxt in TEENS:
            rest = read_cardinal(words, i + 1)
            if rest is not None and rest[0] < 100:
                return century * 100 + rest[0], rest[1]
        if nxt == "hundred":
            return century * 100, i + 2
    got = read_cardinal(words, i)
    if got is not None and got[0] >= 1000:
        return got
    return None


def _day_at(words: list[str], i: int) -> tuple[int, int] | None:
    """A day of the month: an ordinal ("fifth", "5th") or a small cardinal ("5", "five")."""
    got = read_ordinal(words, i)
    if got is None:
        got = read_cardinal(words, i)
    if got is None or not 1 <= got[0] <= 31:
        return None
    return got


def _weekday_date(weekday: int, modifier: str | None, today: date) -> date:
    ahead = (weekday - today.weekday()) % 7
    if modifier == "last":
        back = (today.weekday() - weekday) % 7 or 7
        return today - timedelta(days=back)
    if modifier == "next":
        start_next_week = today + timedelta(days=7 - today.weekday())
        return start_next_week + timedelta(days=weekday)
    return today + timedelta(days=ahead or 7)


def parse_date(
    text: str, today: date, *, direction: Direction = "future", order: DateOrder = "MDY"
) -> date | None:
    """The date spoken in ``text`` relative to ``today``, or None when there is none.

    When several dates are spoken the last one wins: it is the correction ("the fifth, no, the
    twelfth") or the target ("from Saturday to Tuesday").
    """
    text = normalise(text)
    iso = _ISO.search(text)
    if iso:
        return _safe_date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    words = tokens(_DOTTED.sub(r"\1/\2/\3", text))
    found: date | None = None
    i = 0
    while i < len(words):
        got = _date_at(words, i, today, direction, order)
        if got is None:
            i += 1
            continue
        if got[0] is not None:
            found = got[0]
        i = max(got[1], i + 1)
    return found


def _date_at(
    words: list[str], i: int, today: date, direction: Direction, order: DateOrder
) -> tuple[date | None, int] | None:
    """A date starting at ``words[i]``: (the date, or None for an impossible one, next index)."""
    n = len(words)
    w = words[i]
    if words[i : i + 3] == ["day", "after", "tomorrow"]:
        return today + timedelta(days=2), i + 3
    if words[i : i + 3] == ["day", "before", "yesterday"]:
        return today - timedelta(days=2), i + 3
    if w in ("today", "tonight"):
        return today, i + 1
    if w == "tomorrow":
        return today + timedelta(days=1), i + 1
    if w == "yesterday":
        return today - timedelta(days=1), i + 1
    if w == "in" and i + 1 < n:
        if words[i + 1] == "a" and i + 2 < n and words[i + 2] in ("week", "fortnight"):
            return today + timedelta(days=7 if words[i + 2] == "week" else 14), i + 3
        count = read_cardinal(words, i + 1)
        if count is not None and count[1] < n and words[count[1]] in ("day", "days", "week", "weeks"):
            unit = 7 if words[count[1]].startswith("week") else 1
            return today + timedelta(days=count[0] * unit), count[1] + 1
    slashed = _SLASHED.match(w)
    if slashed:
        return _slashed_date(int(slashed.group(1)), int(slashed.group(2)), slashed.group(3), today,
                             direction, order), i + 1
    if w in MONTHS:
        if w == "may" and not _looks_like_month_may(words, i):
            return None
        month = MONTHS[w]
        day_at = _day_at(words, i + 1) if i + 1 < n else None
        if day_at is None and i + 2 < n and words[i + 1] == "the":
            day_at = _day_at(words, i + 2)
        if day_at is None:
            return None
        year_at = read_year(words, day_at[1]) if day_at[1] < n else None
        if year_at is not None:
            return _safe_date(year_at[0], month, day_at[0]), year_at[1]
        return _resolve_year(month, day_at[0], today, direction), day_at[1]
    day_at = read_ordinal(words, i)
    if day_at is None and w.isdigit() and _month_follows(words, i + 1):  # "23 March", "23 of March"
        day_at = (int(w), i + 1)
    if day_at is None and w.endswith("s") and _month_follows(words, i + 1):  # "the tenths of March"
        day_at = read_ordinal([w[:-1]], 0)
        day_at = (day_at[0], i + 1) if day_at is not None else None
    if day_at is not None and not 1 <= day_at[0] <= 31:
        return None, day_at[1]  # "the thirty second": no day, and "second" is no day either
    if day_at is not None:
        j = day_at[1]
        if j < n and words[j] == "of":
            j += 1
        if j < n and words[j] in MONTHS:
            month = MONTHS[words[j]]
            year_at = read_year(words, j + 1) if j + 1 < n else None
            if year_at is not None:
                return _safe_date(year_at[0], month, day_at[0]), year_at[1]
            return _resolve_year(month, day_at[0], today, direction), j + 1
        # "the fifth" alone: this month, else the next one (or the previous, for the past)
        if read_ordinal(words, i) is not None and i > 0 and words[i - 1] == "the":
            return _day_of_nearby_month(day_at[0], today, direction), day_at[1]
    if w in WEEKDAYS:
        modifier = words[i - 1] if i > 0 and words[i - 1] in ("this", "next", "last", "coming") else None
        end = i + 1
        if modifier is None and i + 2 < n and words[i + 1] == "next" and words[i + 2] == "week":
            modifier, end = "next", i + 3
        if direction == "past" and modifier is None:
            modifier = "last"
        return _weekday_date(WEEKDAYS[w], modifier, today), end
    return None


def _month_follows(words: list[str], j: int) -> bool:
    """A month name at ``words[j]``, or "of" and a month there."""
    if j < len(words) and words[j] == "of":
        j += 1
    return j < len(words) and words[j] in MONTHS


def _slashed_date(a: int, b: int, year_text: str | None, today: date, direction: Direction,
                  order: DateOrder) -> date | None:
    """"a/b[/y]" in the map's order, else in the other order when only that one is a real date."""
    readings = [(a, b), (b, a)] if order == "MDY" else [(b, a), (a, b)]  # (month, day), preferred first
    for month, day in readings:
        if not (1 <= month <= 12 and 1 <= day <= 31):
            continue
        if year_text is None:
            got = _resolve_year(month, day, today, direction)
        else:
            got = _safe_date(_full_year(int(year_text), len(year_text), month, day, today, direction), month, day)
        if got is not None:
            return got
    return None


def _full_year(year: int, digits: int, month: int, day: int, today: date, direction: Direction) -> int:
    if digits == 4:
        return year
    this_century = 2000 + year
    if direction == "past" and (this_century, month, day) > (today.year, today.month, today.day):
        return this_century - 100
    return this_century


def _looks_like_month_may(words: list[str], i: int) -> bool:
    """"may" is a month only next to a day number ("may fifth", "the fifth of may")."""
    after = i + 1 < len(words) and (_day_at(words, i + 1) is not None or words[i + 1] == "the")
    before = i > 0 and words[i - 1] == "of"
    return after or before


def _day_of_nearby_month(day: int, today: date, direction: Direction) -> date | None:
    candidate = _safe_date(today.year, today.month, day)
    if direction == "future" and (candidate is None or candidate < today):
        y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return _safe_date(y, m, day)
    if direction == "past" and (candidate is None or candidate > today):
        y, m = (today.year - 1, 12) if today.month == 1 else (today.year, today.month - 1)
        return _safe_date(y, m, day)
    return candidate


def _ordinal_suffix(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def spoken_date(d: date, today: date | None = None) -> str:
    """"Tuesday, March 10th" (with the year when it is not this year)."""
    out = f"{WEEKDAY_NAMES[d.weekday()]}, {MONTH_NAMES[d.month - 1]} {d.day}{_ordinal_suffix(d.day)}"
    if today is None or d.year != today.year:
        out += f", {d.year}"
    return out
