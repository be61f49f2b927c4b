"""Audio mode's pure parts: how a scenario is played by the test caller, the speech figures of a run."""

from __future__ import annotations

import datetime as dt

import pytest

from ari_agent.evaluation.audio_plan import NotPlayable, plan_scenario, voice_for
from ari_agent.evaluation.audio_runner import AudioEvidence
from ari_agent.evaluation.judge import Verdict
from ari_agent.evaluation.scenario import Scenario, load_suite, resolve_suite_path
from ari_agent.evaluation.speech_figures import speech_figures
from ari_agent.evaluation.trace import CallTrace
from ari_agent.records.model import CallRecord


def scenario(*turns: object, **kw: object) -> Scenario:
    return Scenario.model_validate({"id": "s", "turns": list(turns), "expect": {"outcome": "resolved"}, **kw})


def test_turns_become_caller_modes_voices_and_references() -> None:
    plan = plan_scenario(scenario({"say": "where is my order", "synth": {"voice": "flite:slt"}}, {"dtmf": "4567"},
                                  {"silence": True}, {"say": "no", "bargein": "Is there"}, {"hangup": True},
                                  {"say": "never played"}), "flite:rms")
    assert plan.modes == "tdtb" and plan.dtmf == "4567" and plan.hangs_up
    assert plan.reference == ["where is my order", "no"] and plan.voices == ["flite:slt", "flite:rms"]


@pytest.mark.parametrize(("turns", "extra", "why"), [
    ([{"say": "hi"}, {"kill_switch": True}], {}, "operator"),
    ([{"say": "hi"}], {"kill_switch": True}, "operator"),
    ([{"timeout": "tool"}], {}, "agent's own timer"),
    ([{"dtmf": "1"}, {"dtmf": "2"}], {}, "one digit string"),
    ([{"hangup": True}], {}, "no caller turn"),
])
def test_what_a_caller_cannot_do_by_voice_is_refused(turns: list[object], extra: dict[str, object],
                                                     why: str) -> None:
    with pytest.raises(NotPlayable, match=why):
        plan_scenario(scenario(*turns, **extra), "flite:rms")


def test_the_shipped_voice_suites_are_playable_and_rotate_voices() -> None:
    for name in ("voice", "voice-smoke"):
        suite = load_suite(resolve_suite_path(name))
        voices = {v for i, sc in enumerate(suite.spec.scenarios) for v in plan_scenario(sc, voice_for(i)).voices}
        assert len(voices) >= 4, (name, voices)
    assert len(load_suite(resolve_suite_path("voice")).spec.scenarios) >= 15


def test_speech_figures_latency_wer_and_voices() -> None:
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    played = []
    for i, (heard, passed) in enumerate([(["where is my order", "four five six seven"], True),
                                         (["where is my odor"], False)]):
        sc = scenario({"say": "where is my order"})
        trace = CallTrace(f"s{i}", t0, stage_ms={"response_caller_side": [300.0 + 100 * i], "engine": [20.0]})
        v = Verdict(sc, trace)
        if not passed:
            v.violations.append("x: y")
        ev = AudioEvidence(f"c{i}", [("flite:rms", "flite:slt")[i]],
                           record=CallRecord(f"call-{i}", t0, heard=heard),
                           reference=["where is my order", "four five six seven"][: 2 - i])
        played.append((v, ev))
    f = speech_figures(played, {"k": "operator"})
    assert f.calls == 2 and f.not_played == {"k": "operator"}
    assert f.latency_ms["response_caller_side"] == {"p50": 300.0, "p95": 400.0, "n": 2.0}
    assert f.wer_ref_words == 8 + 4 and f.wer == pytest.approx(1 / 12)
    assert f.per_voice["flite:rms"] == {"scenarios": 1, "passed": 1, "wer": 0.0}
    assert f.per_voice["flite:slt"]["passed"] == 0 and f.per_voice["flite:slt"]["wer"] == pytest.approx(0.25)
