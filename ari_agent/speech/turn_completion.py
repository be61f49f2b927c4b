"""When the words heard so far already answer the turn: the endpointer's ``completes`` callback.

The recogniser's partial text comes from the turn's own grammar, so the checks are simple: a yes/no
grammar's output is an answer as soon as it is not empty; a digit string is complete once it holds
``max_digits`` digits ("double four" counts two). Turns whose answers run on (letters, free text,
the open request) never end early. ``patient`` tells the endpointer to wait longer through pauses
(callers read digits and spell letters in groups).
"""

from __future__ import annotations

from collections.abc import Callable

from ari_agent.seam import Expectation
from ari_agent.speech.grammar_lm import words_of

_DIGITS = {"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
_REPEAT = {"double": 2, "triple": 3}


def digit_count(text: str) -> int:
    """Digits in a digits-grammar transcript ("double four five" -> 3)."""
    count = 0
    repeat = 1
    for word in words_of(text):
        if word in _REPEAT:
            repeat = _REPEAT[word]
        elif word in _DIGITS:
            count += repeat
            repeat = 1
    return count


def is_patient(expect: Expectation) -> bool:
    return expect.kind in ("digits", "letters")


def completes_for(expect: Expectation) -> Callable[[str], bool] | None:
    """The ``completes(partial_text)`` check for ``expect``, or None where no early end applies."""
    if expect.kind in ("yes_no", "choice"):
        return lambda text: bool(text.strip())
    if expect.kind == "digits" and expect.max_digits:
        target = expect.max_digits
        return lambda text: digit_count(text) >= target
    return None
