"""Whisper's repetition loops are cut out of a transcript; real repeated digits and words are kept."""

from __future__ import annotations

import pytest

from ari_agent.speech.repetition import collapse_repeats


@pytest.mark.parametrize(("text", "want"), [
    ("Yeah. Yeah. Yeah. Yeah. Yeah. Yeah", "Yeah."),
    ("1 1 4 7. 1 1 4 7.", "1 1 4 7."),
    ("Now now now now now", "Now"),
    ("3 4 3 4 3 4 3 4", "3 4"),
    ("Sir, D. Sir, D. Sir, D. Sir,", "Sir, D."),
    ("No? No? No? No?", "No?"),
    ("come to forty five. Come to forty five.", "come to forty five."),
    # the token cap cut the last copy short (a digits turn's decode, measured): not a fifth digit
    ("8 4 5 6 8 4 5 6 8 4 5 6 8 4 5 6 8", "8 4 5 6"),
    ("5 5 8 7 5 5 8 7 5 5 8 7 5 5 8 7 5 5", "5 5 8 7"),
])
def test_loops_are_cut_to_one_copy(text: str, want: str) -> None:
    assert collapse_repeats(text) == want


@pytest.mark.parametrize("text", ["5 5 5 1.", "That's 5 5 5 5 1.", "1 2 1 2", "It's 1 2 3 4.", "no no",
                                  "Not now? No.", "7 9 2 2. 9 2 2.",
                                  "1 2 1 2 1"])
def test_real_repeats_are_kept(text: str) -> None:
    assert collapse_repeats(text) == text
