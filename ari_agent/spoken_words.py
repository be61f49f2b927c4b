"""How callers say numbers, dates, letters and "get me a person": the shared spoken-form vocabularies.

Pure data, in the spelling a pronunciation dictionary uses (lower case; "x-ray"). Two readers build
on it: the slot parsers (``ari_agent.conversation.slots``, ``ari_agent.conversation.commands``), which
add the variants a transcript may hold ("fourty", "xray", "tues"), and the recogniser grammars
(``ari_agent.speech.grammar_lm``), which list only these canonical forms (a grammar word is a word the
recogniser may output). Tuples are in value order: ``DIGITS[7] == "seven"``, ``MONTHS[0] == "january"``.
"""

from __future__ import annotations

from typing import Final

DIGITS: Final = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
"""0-9."""
UNITS: Final = DIGITS[1:]
"""1-9."""
TEENS: Final = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen")
"""10-19."""
TENS: Final = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
"""20, 30, ... 90."""
ORDINAL_UNITS: Final = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
"""1st-9th."""
ORDINAL_TEENS: Final = ("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
                        "seventeenth", "eighteenth", "nineteenth")
"""10th-19th."""
ORDINAL_TENS: Final = ("twentieth", "thirtieth")
"""20th, 30th (the tens a day of the month needs)."""

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""In ``date.weekday()`` order."""
MONTHS: Final = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                 "october", "november", "december")

NATO_ALPHABET: Final = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
                        "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
                        "uniform", "victor", "whiskey", "x-ray", "yankee", "zulu")
"""A-Z."""

PERSON_TITLES: Final = ("agent", "operator", "representative")
"""What callers most often ask for when they want a person instead of the agent."""
