from __future__ import annotations

from ari_agent.seam import Expectation
from ari_agent.speech.turn_completion import CLOSER_ASKS, STABLE_ASKS, TurnCompletion, is_patient


class Reader:
    """A stand-in for the conversation layer's parsers: words as given, nothing clever."""

    def __init__(self) -> None:
        self.classified: list[str] = []

    def is_yes_no(self, text: str) -> bool:
        return text.split()[0] in ("yes", "no")

    def digit_count(self, text: str) -> int:
        return sum(1 for w in text.split() if w in ("one", "two", "three", "four", "five", "six", "seven"))

    def confident_request(self, text: str) -> bool:
        self.classified.append(text)
        return "order" in text

    def unfinished(self, text: str) -> bool:
        return text.endswith((" to", " the", " my", ","))


def turn(expect: Expectation) -> tuple[TurnCompletion, Reader]:
    reader = Reader()
    rules = TurnCompletion(reader)
    rules.begin(expect)
    return rules, reader


def test_digit_strings_complete_at_max_digits() -> None:
    rules, _ = turn(Expectation(kind="digits", min_digits=4, max_digits=4))
    assert not rules.completes("four five six")
    assert rules.completes("four five six seven")


def test_enough_digits_complete_once_stable() -> None:
    rules, _ = turn(Expectation(kind="digits", min_digits=4, max_digits=8))
    answers = [rules.completes("one two three four") for _ in range(STABLE_ASKS)]
    assert answers == [False] * (STABLE_ASKS - 1) + [True]
    assert not rules.completes("one two three four five")  # something new: wait again


def test_yes_no_and_choice_complete_on_any_answer() -> None:
    rules, _ = turn(Expectation(kind="yes_no"))
    assert rules.completes("yes") and not rules.completes("")
    rules.begin(Expectation(kind="choice", choices=("a", "b")))
    assert rules.completes("a")


def test_open_request_completes_on_a_closer_or_a_confident_classification() -> None:
    rules, reader = turn(Expectation(kind="open"))
    assert not rules.completes("no that's all")  # a closer: one more ask first ("… thank you" may follow)
    assert rules.completes("no that's all")
    assert not rules.completes("where is my order")  # not observed yet: no classification on this path
    rules.observe("where is my order")
    assert reader.classified == ["where is my order"]
    assert rules.completes("where is my order")
    rules.observe("where is my order")  # unchanged partial: not classified again
    assert reader.classified == ["where is my order"]
    rules.observe("tell me a joke")
    assert not rules.completes("tell me a joke")


def test_unknown_lengths_and_free_turns_never_end_early() -> None:
    rules, reader = turn(Expectation(kind="digits"))
    assert not any(rules.completes("one two") for _ in range(5))
    rules.begin(Expectation(kind="letters"))
    assert not rules.completes("a b c")
    rules.observe("a b c")
    assert reader.classified == []  # only open requests are classified
    assert is_patient(Expectation(kind="letters")) and not is_patient(Expectation(kind="yes_no"))


def test_a_closer_followed_by_more_words_does_not_end_the_turn() -> None:
    rules, _ = turn(Expectation(kind="open"))
    assert CLOSER_ASKS == 2
    assert not rules.completes("no that's all")
    assert not rules.completes("no that's all thank")  # the caller went on: a new partial, asked afresh
    assert rules.completes("no that's all thank")
