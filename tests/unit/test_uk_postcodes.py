"""The UK postcode rules shared by the transcript reader and whisper's constrained decode."""

from __future__ import annotations

import pytest

from ari_agent.conversation.slots.letters import parse_postcode
from ari_agent.uk_postcodes import AREAS, could_start, is_postcode, split_area


@pytest.mark.parametrize("code", ["SW1A1AA", "M11AE", "EC1A1BB", "W1A0AX", "B338TH", "CR26XH", "DN551PT",
                                  "BT71NN", "GY11AA", "NW32KL"])
def test_real_shapes_are_postcodes(code: str) -> None:
    assert is_postcode(code) and could_start(code)


@pytest.mark.parametrize("code", [
    "H11YZ",     # no area H
    "IV8A2UF",   # a letter district outside central London
    "QA11AA",    # Q never first (and no area QA)
    "SW1A1A",    # inward code short
    "SW1A1AAA",  # too long
    "S11A1",     # inward letters where digits go
    "M11AI",     # I never in the inward code
])
def test_not_postcodes(code: str) -> None:
    assert not is_postcode(code)


def test_prefixes() -> None:
    assert could_start("") and could_start("S") and could_start("SW") and could_start("SW1") and could_start("SW1A")
    assert not could_start("H1")       # no area H
    assert not could_start("SWA")      # three letters
    assert not could_start("ID")       # no area ID
    assert not is_postcode("SW1A")     # a beginning, not a whole code
    assert split_area("SW1A1AA") == ("SW", "1A1AA") and split_area("12") == ("", "12")
    assert len(AREAS) == 126


def test_the_reader_takes_only_real_areas() -> None:
    assert parse_postcode("S W one A, one A A", "uk") == "SW1A1AA"
    assert parse_postcode("The H11 YZ.", "uk") is None   # H is no postcode area: asked again, not read back
    assert parse_postcode("PS1, 5PR.", "uk") is None     # nor PS (the strict reading took it before)
    assert parse_postcode("E H one one Y Z", "uk") == "EH11YZ"
