"""Spoken clock times: "half past three", "half three" (3:30), "quarter to four", "3 pm", "3:30", "fifteen thirty",
"three o'clock", "three forty five in the afternoon", "noon", "midnight".

Without "am"/"pm" (or "in the morning", "in the afternoon/evening") an hour from 1 to 6 is read as
afternoon and 7 to 11 as morning: callers book within business hours. 13-23 are 24-hour times.
``require_cue=True`` accepts only times with a clear marker (am/pm, o'clock, ':' , past/to, half, noon,
"at <hour>"): used when a time is picked out of a sentence that was not an answer to "what time?".
"""

from __future__ import annotations

import re
from datetime import time

from ari_agent.conversation.slots.numbers import TEENS, TENS, UNITS, read_cardinal
from ari_agent.conversation.slots.words import tokens

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(am|pm)?$")
_HOUR_SUFFIX = re.compile(r"^(\d{1,2})(am|pm)$")
_MORNING = ("am", "morning")
_AFTERNOON = ("pm", "afternoon", "evening", "night", "tonight")
_FRACTIONS = {"half": 30, "quarter": 15}
# Hours a recogniser writes as another word: "to PM" for "two pm"; trusted only before am/pm or o'clock.
_HOUR_HOMOPHONES = {"to": 2, "too": 2, "for": 4}
# An hour right after one of these, with no minutes read before it, is no clock time: "past three" is
# "half past three" with its first word lost (whisper on a phone line), "after three" a range. ("to" is not
# one: "move it to three" is three o'clock.)
_RELATIVE = frozenset({"past", "after", "before"})


def _meridiem(words: list[str], j: int) -> str | None:
    """Look for am/pm (also "a m", "in the morning") at ``words[j:]``."""
    rest = words[j : j + 4]
    if not rest:
        return None
    if rest[0] in ("am", "pm"):
        return rest[0]
    if len(rest) >= 2 and rest[0] in ("a", "p") and rest[1] == "m":
        return rest[0] + "m"
    if rest[0] in ("in", "at", "this", "tonight") or rest[0] in _AFTERNOON:
        for w in rest:
            if w in _MORNING:
                return "am"
            if w in _AFTERNOON:
                return "pm"
    return None


def _apply(hour: int, minute: int, meridiem: str | None) -> time | None:
    if not (0 <= minute <= 59):
        return None
    if meridiem is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    elif hour <= 6 and hour != 0:
        hour += 12
    if not 0 <= hour <= 23:
        return None
    return time(hour, minute)


def _small_number(words: list[str], i: int) -> tuple[int, int] | None:
    got = read_cardinal(words, i)
    if got is None or got[0] > 59:
        return None
    return got


def parse_time(text: str, *, require_cue: bool = False) -> time | None:
    """The clock time spoken in ``text``, or None; the last one wins ("three, no, four pm")."""
    words = tokens(text)
    found: time | None = None
    i = 0
    while i < len(words):
        got = _time_at(words, i, require_cue)
        if got is None:
            i += 1
            continue
        found, i = got[0], max(got[1], i + 1)
    return found


def _time_at(words: list[str], i: int, require_cue: bool) -> tuple[time, int] | None:
    """A clock time starting at ``words[i]``: (time, next index) or None."""
    n = len(words)
    w = words[i]
    if w in ("noon", "midday"):
        return time(12, 0), i + 1
    if w == "midnight":
        return time(0, 0), i + 1
    clock = _CLOCK.match(w)
    if clock:
        mer = clock.group(3) or _meridiem(words, i + 1)
        return _with_end(_apply(int(clock.group(1)), int(clock.group(2)), mer), i + 1)
    suffixed = _HOUR_SUFFIX.match(w)
    if suffixed:
        return _with_end(_apply(int(suffixed.group(1)), 0, suffixed.group(2)), i + 1)
    if w == "half" and i + 1 < n:  # "half three": half past three, as said in Britain
        half_of = _small_number(words, i + 1)
        if half_of is not None and 1 <= half_of[0] <= 12:
            return _with_end(_apply(half_of[0], 30, _meridiem(words, half_of[1])), half_of[1])
    # "half past three", "quarter to four", "ten past two", "twenty five minutes to six"
    offset: tuple[int, int] | None
    if w in _FRACTIONS:
        offset = (_FRACTIONS[w], i + 1)
    elif w == "a" and i + 1 < n and words[i + 1] == "quarter":
        offset = (15, i + 2)
    else:
        offset = _small_number(words, i)
    if offset is not None:
        j = offset[1]
        if j < n and words[j] in ("minute", "minutes"):
            j += 1
        if j < n and words[j] in ("past", "after", "to", "before", "til", "till"):
            hour_at = _small_number(words, j + 1)
            if hour_at is not None and 1 <= hour_at[0] <= 12:
                minutes = offset[0]
                hour = hour_at[0]
                if words[j] in ("to", "before", "til", "till"):
                    minutes = 60 - minutes
                    hour = hour - 1 or 12
                return _with_end(_apply(hour, minutes % 60, _meridiem(words, hour_at[1])), hour_at[1])
    numeral = _numeral_clock(w, require_cue or (i > 0 and words[i - 1] in ("number", "code")))
    if numeral is not None:  # "1030", "845" (a recogniser writes "ten thirty" so)
        mer = _meridiem(words, i + 1)
        return _with_end(_apply(numeral[0], numeral[1], mer), i + 1)
    if w in _HOUR_HOMOPHONES and i + 1 < n and (_meridiem(words, i + 1) in ("am", "pm")
                                               or words[i + 1] in ("o'clock", "oclock")):
        mer = _meridiem(words, i + 1)  # "to PM": "two pm"
        return _with_end(_apply(_HOUR_HOMOPHONES[w], 0, mer), i + 2 if mer is None else _meridiem_end(words, i + 1))
    if i > 0 and words[i - 1] in _RELATIVE:
        return None
    reading = _hour_reading(words, i)
    if reading is None:
        return None
    hour, j = reading
    minute = 0
    cue = i > 0 and words[i - 1] in ("at", "around", "about", "by")
    if j < n and words[j] in ("o'clock", "oclock"):
        j += 1
        cue = True
    elif j < n and words[j] == "hundred":  # "fifteen hundred"
        j += 1
        cue = True
    elif j < n and words[j] in ("oh", "o") and j + 1 < n and words[j + 1] in UNITS:
        minute = UNITS[words[j + 1]]
        j += 2
        cue = True
    else:
        min_at = _minute_reading(words, j)
        if min_at is not None:
            minute, j = min_at
            cue = True
    mer = _meridiem(words, j)
    if mer is not None:
        cue = True
    if require_cue and not cue:
        return None
    return _with_end(_apply(hour, minute, mer), j)


def _numeral_clock(word: str, refuse: bool) -> tuple[int, int] | None:
    """A 3-4 digit numeral as hours and minutes ("845" -> 8:45, "1030" -> 10:30), or None (also when
    ``refuse``: a time picked out of passing speech needs a clearer cue than a bare number)."""
    if refuse or not word.isdigit() or len(word) not in (3, 4):
        return None
    hour, minute = int(word[:-2]), int(word[-2:])
    return (hour, minute) if hour <= 23 and minute <= 59 else None


def _meridiem_end(words: list[str], j: int) -> int:
    """The index just past the am/pm words at ``words[j]`` ("pm", "p m", "in the afternoon")."""
    if words[j] in ("am", "pm"):
        return j + 1
    if words[j] in ("a", "p"):
        return j + 2
    k = j
    while k < len(words) and k < j + 4 and words[k] not in _MORNING and words[k] not in _AFTERNOON:
        k += 1
    return k + 1


def _with_end(t: time | None, end: int) -> tuple[time, int] | None:
    return None if t is None else (t, end)


def _hour_reading(words: list[str], i: int) -> tuple[int, int] | None:
    w = words[i]
    if w.isdigit() and len(w) <= 2:
        return int(w), i + 1
    if w.isdigit() and len(w) in (3, 4):  # "1530": a clock time, see _numeral_clock
        return None
    if w in UNITS and w != "zero":
        return UNITS[w], i + 1
    if w in TEENS:
        return TEENS[w], i + 1
    if w == "twenty" and i + 1 < len(words) and words[i + 1] in ("one", "two", "three"):
        return 20 + UNITS[words[i + 1]], i + 2
    return None


def _minute_reading(words: list[str], j: int) -> tuple[int, int] | None:
    if j >= len(words):
        return None
    w = words[j]
    if w.isdigit() and len(w) == 2:
        return int(w), j + 1
    if w in TENS or (w in TEENS and w != "ten") or w == "ten":
        got = read_cardinal(words, j)
        if got is not None and got[0] < 60:
            return got
    return None


def spoken_time(t: time) -> str:
    """"3:30 PM", "3 PM", "noon", "midnight"."""
    if t == time(12, 0):
        return "noon"
    if t == time(0, 0):
        return "midnight"
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"
