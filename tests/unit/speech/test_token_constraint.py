"""The postcode constraint over a small made-up vocabulary (pure logic), and the same constraint on the real
tiny.en vocabulary and a real constrained decode of a spelled postcode (tests/unit/speech/test_whisper_lib.py)."""

from __future__ import annotations

import numpy as np

from ari_agent.speech.token_constraint import MAX_SEPARATORS, PostcodeConstraint

VOCAB = ["S", " W", "1", "A", " 1", "AA", "My", " post", "code", " is", ",", ".", " ", "hello", " Q", "1A",
         "Z", "H", "It", "'s", " SW", "ABCDE"]
EOT = len(VOCAB)
TEXTS: list[str | None] = [*VOCAB, "<|endoftext|>"]


def ids(*pieces: str) -> list[int]:
    return [VOCAB.index(p) for p in pieces]


def allowed(c: PostcodeConstraint, *pieces: str) -> set[str]:
    mask = c.allowed(ids(*pieces))
    return {TEXTS[t] or "" for t in np.flatnonzero(mask)}


def test_at_the_start_a_lead_or_the_first_letters_of_an_area() -> None:
    c = PostcodeConstraint(TEXTS, EOT)
    first = allowed(c)
    assert {"S", " SW", "H", "Z", "My", "It", " post"} <= first  # H: HA, HD, ...; Z: ZE
    assert "hello" not in first and "<|endoftext|>" not in first
    assert " Q" not in first  # Q is never a postcode's first letter
    assert "1" not in first and " 1" not in first  # a postcode starts with its area's letters
    assert "ABCDE" not in first  # more than four characters: no code token
    assert "H" not in allowed(c, "H", "1")  # H1..: no area H, so H is not followed by a digit either


def test_a_lead_then_the_code_then_the_end() -> None:
    c = PostcodeConstraint(TEXTS, EOT)
    assert "code" in allowed(c, "My", " post")
    after_lead = allowed(c, "My", " post", "code", " is")
    assert "S" in after_lead and " SW" in after_lead
    assert "<|endoftext|>" not in allowed(c, "S", " W", "1", "A", " 1")
    done = ["My", " post", "code", " is", " SW", "1A", " 1", "AA"]
    assert "<|endoftext|>" in allowed(c, *done)
    assert "S" not in allowed(c, *done)  # nothing more after a whole postcode
    assert c.value(ids(*done)) == "SW1A1AA"
    assert c.value(ids("S", " W", "1", "A", ",", " 1", "AA")) == "SW1A1AA"
    assert c.value(ids("S", " W", "1")) is None  # not a whole code


def test_each_step_keeps_to_the_postcode_shapes() -> None:
    c = PostcodeConstraint(TEXTS, EOT)
    after_s = allowed(c, "S")
    assert " W" in after_s and "1" in after_s and "Z" not in after_s  # SW.., S1..; no area SZ
    after_s1 = allowed(c, "S", "1")
    assert "1" in after_s1 and " 1" in after_s1  # S11.., S1 1..
    assert "A" not in after_s1  # a letter district is central London's only (E, N, W, EC, NW, SE, SW, WC)
    assert "A" in allowed(c, " SW", "1")  # SW1A


def test_separators_never_twice_in_a_row_and_at_most_so_many() -> None:
    c = PostcodeConstraint(TEXTS, EOT)
    assert "," in allowed(c, "S") and "," not in allowed(c, "S", ",") and "." not in allowed(c, "S", ",")
    assert " W" in allowed(c, "S", ",")
    spaced = ["S", ",", " W", ",", "1", ",", "A", ",", " 1", ","]  # 5 separators between code tokens
    assert "," not in allowed(c, *spaced)
    lead = ["My", ",", " post", "code", ",", " is", ","]  # the lead's own commas count as separators too
    assert "S" in allowed(c, *lead)
    assert MAX_SEPARATORS == 10


def test_exactly_one_code_any_split_into_tokens() -> None:
    c = PostcodeConstraint(TEXTS, EOT)
    only = c.exactly("sw1a 1aa")  # as a record may hold it: the spaces and the case do not matter

    def next_of(*pieces: str) -> set[str]:
        return {TEXTS[t] or "" for t in np.flatnonzero(only(ids(*pieces)))}

    first = next_of()
    assert {"S", " SW", "My", "It"} <= first  # the code's own start, either split, or a lead
    assert "H" not in first and "Z" not in first  # other areas are out
    assert next_of("S") >= {" W", ","} and "1" not in next_of("S")  # S1..: not this code
    assert "1A" in next_of(" SW") and "<|endoftext|>" not in next_of(" SW", "1A")
    assert next_of(" SW", "1A", " 1", "AA") == {"<|endoftext|>", ",", ".", " "}  # whole: end (or a separator)
    assert "AA" in next_of("My", " post", "code", " is", " SW", "1A", " 1")
    # what a forced decode's written tokens are compared with: the code tokens the postcode filter allows there
    rivals = {TEXTS[t] or "" for t in np.flatnonzero(c.rivals(ids(" SW")))}
    assert "1A" in rivals and "1" in rivals and "," not in rivals and "<|endoftext|>" not in rivals
