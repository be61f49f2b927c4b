"""Issue 10's scenario set: every escalation reason has a scenario that expects it, by voice where a
caller can cause it on one call of the demo map, and as text (the shipped suites, and the voice suite,
whose scenarios also run as text)."""

from __future__ import annotations

from typing import get_args

from ari_agent.conversation.escalation import DEFAULT_REASONS
from ari_agent.conversation.intent_map import Condition
from ari_agent.evaluation.scenario import load_suite, resolve_suite_path, shipped_suites

# Why a reason has no voice scenario (the header of suites/audio/voice.yaml says the same).
NOT_BY_VOICE = {
    "kill_switch": "an operator's act, not played by voice (audio_plan.py)",
    "max_duration": "the agent's own timer",
    "max_turns": "31 caller turns: longer than an audio call may last",
    "output_contract": "a back-office answer with fields missing",
    "policy": "throttles over many calls (the text runner has none either: unit tests)",
    "after_hours": "the clock",
    "queue_closed": "the clock and a map with queue hours",
}
# Reasons no text scenario can reach: the text runner has no throttle and no clock (unit tests cover them:
# tests/unit/conversation/test_throttle.py, test_escalation_rules.py).
NOT_BY_TEXT = {"policy", "after_hours", "queue_closed", "output_contract"}


def _reasons(*names: str) -> set[str]:
    return {sc.expect.reason for name in names for sc in load_suite(resolve_suite_path(name)).spec.scenarios
            if sc.expect.reason}


def test_every_condition_has_a_default_reason() -> None:
    assert set(get_args(Condition)) == set(DEFAULT_REASONS)


def test_the_voice_suite_expects_every_reason_a_caller_can_cause() -> None:
    assert set(NOT_BY_VOICE) <= set(DEFAULT_REASONS)
    missing = set(DEFAULT_REASONS) - set(NOT_BY_VOICE) - _reasons("voice")
    assert not missing, f"no voice scenario expects {sorted(missing)}"


def test_text_scenarios_expect_every_reason_the_text_runner_can_reach() -> None:
    text = _reasons(*(str(p) for p in shipped_suites()), "voice", "voice-phrasings")
    missing = set(DEFAULT_REASONS) - NOT_BY_TEXT - text
    assert not missing, f"no text scenario expects {sorted(missing)}"
