"""Whole conversations, from text scenarios, through the engine (tools answered by the scenario)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import SCENARIOS, ScenarioRun

SCENARIO_FILES = sorted(SCENARIOS.glob("*.txt"))


def test_every_demo_intent_has_a_scenario(demo_map) -> None:  # type: ignore[no-untyped-def]
    text = "\n".join(p.read_text() for p in SCENARIO_FILES)
    for intent in demo_map.intents:
        assert intent.name in text or any(intent.name.split("_")[0] in p.stem for p in SCENARIO_FILES), intent.name


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario(path: Path, run_scenario: Callable[[Path], ScenarioRun]) -> None:
    run = run_scenario(path)
    assert run.log  # the scenario ran
