"""When the words heard so far already answer the turn: the endpointer's ``completes`` callback.

The endpointer asks after 250 ms of silence, and again every 100 ms, whether the recogniser's
partial text completes what the turn expects; True ends the turn there instead of waiting the full
silence. The rules:

- yes/no and menu-choice turns: their grammar's output is an answer as soon as it is not empty;
- digits: complete once ``max_digits`` digits are heard ("double four" counts two); with only
  ``min_digits`` reached, once nothing new has come for ``STABLE_ASKS`` asks (450 ms) — the patient
  1 s wait is for callers pausing *before* they reach the minimum;
- the open request: a yes/no closer ("no, that's all" to "anything else?") asked about twice unchanged
  (``CLOSER_ASKS``: one more ask, 100 ms, after its words are in), or a partial the intent
  classifier is confident about (judged in the recogniser's worker thread, see :meth:`observe`) -
  unless it stops where no sentence ends ("I need to talk to", "I'd like to check"): the classifier is
  already sure of those, and the caller is drawing breath, not done (``AnswerReader.unfinished``).

What counts as a yes/no, how many digits a phrase holds and how sure the classifier is are
language knowledge of the layers above: the call layer injects them as an :class:`AnswerReader`, so
this module needs nothing from above. ``is_patient`` tells the endpointer to wait longer through
pauses (callers read digits and spell letters in groups).
"""

from __future__ import annotations

from typing import Protocol

from ari_agent.seam import Expectation

# Asked this many times with the same partial (250 ms + 2 x 100 ms of silence): the answer is stable.
STABLE_ASKS = 3
# A closer ends the turn on its second ask. Callers follow one with thanks after a comma's pause ("No,
# that's all, … thank you": 320 ms in flite kal16's voice); with whisper's early decode back at ~300 ms of
# silence, ending on the first ask cut in on 1 of 14 turns on the line (bench latency, 2026-12-04).
CLOSER_ASKS = 2


class AnswerReader(Protocol):
    """What the turn rules need to know about words (the conversation layer's parsers)."""

    def is_yes_no(self, text: str) -> bool:
        """``text`` is a yes or a no."""
        ...

    def digit_count(self, text: str) -> int:
        """Digits spoken in ``text`` ("double four five" -> 3)."""
        ...

    def confident_request(self, text: str) -> bool:
        """The classifier is confident about ``text`` as an open request (slow: 5-20 ms)."""
        ...

    def unfinished(self, text: str) -> bool:
        """``text`` stops where no sentence ends (on "to", "the", "my", "check", a comma): more is coming."""
        ...


def is_patient(expect: Expectation) -> bool:
    return expect.kind in ("digits", "letters")


class TurnCompletion:
    """The ``completes`` rules of one call's turns (``begin`` at each Listen)."""

    def __init__(self, reader: AnswerReader) -> None:
        self.reader = reader
        self.expect = Expectation()
        self._asked = ""
        self._asks = 0
        self._confident: tuple[str, bool] = ("", False)

    def begin(self, expect: Expectation) -> None:
        self.expect = expect
        self._asked, self._asks = "", 0

    def observe(self, partial: str) -> None:
        """A new partial result (called in the recogniser's thread after each feed): the slow check of
        an open request runs here, never on the event loop."""
        if self.expect.kind == "open" and partial != self._confident[0] and len(partial.split()) >= 2:
            self._confident = (partial, self.reader.confident_request(partial))

    def completes(self, partial: str) -> bool:
        """Does ``partial`` already answer the turn? (The endpointer's callback: cheap.)"""
        asks = self._asks + 1 if partial == self._asked else 1
        self._asked, self._asks = partial, asks
        expect = self.expect
        kind = expect.kind
        if kind in ("yes_no", "choice"):
            return bool(partial.strip())
        if kind == "digits":
            count = self.reader.digit_count(partial)
            if expect.max_digits and count >= expect.max_digits:
                return True
            return expect.min_digits is not None and 0 < expect.min_digits <= count and asks >= STABLE_ASKS
        if kind != "open" or not partial.strip():
            return False
        if self.reader.is_yes_no(partial):
            return asks >= CLOSER_ASKS
        text, confident = self._confident
        return text == partial and confident and not self.reader.unfinished(partial)
