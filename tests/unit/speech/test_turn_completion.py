from __future__ import annotations

from ari_agent.seam import Expectation
from ari_agent.speech.turn_completion import completes_for, digit_count, is_patient


def test_digit_strings_complete_at_max_digits() -> None:
    check = completes_for(Expectation(kind="digits", min_digits=4, max_digits=4))
    assert check is not None
    assert not check("four five six")
    assert check("four five six seven")
    assert check("double four five six")
    assert digit_count("triple oh one") == 4


def test_yes_no_completes_on_any_answer_and_open_turns_never_early() -> None:
    check = completes_for(Expectation(kind="yes_no"))
    assert check is not None and check("yes") and not check("")
    assert completes_for(Expectation(kind="open", phrases=("x",))) is None
    assert completes_for(Expectation(kind="digits")) is None  # no known length: wait it out
    assert is_patient(Expectation(kind="letters")) and not is_patient(Expectation(kind="yes_no"))
