"""The kill switch's own logic, without Redis: state parsing, input checks, the override file, the last
state kept across a restart, and attached engines flipped (held weakly)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.governance.keys import GovernanceError
from ari_agent.governance.killswitch import KillSwitchState, KillSwitchWatch, check_text
from ari_agent.seam import CallStarted, Transfer, Utterance

UNREACHABLE = "redis://127.0.0.1:1/0"


def test_state_round_trip_and_malformed() -> None:
    state = KillSwitchState(True, "fraud spike", "alice", "2026-12-01T00:00:00Z", 5)
    assert KillSwitchState.from_json(state.to_json()) == state
    for bad in ("", "[]", '{"on": "yes"}', "{"):
        with pytest.raises(ValueError):
            KillSwitchState.from_json(bad)


@pytest.mark.parametrize("text,message", [("", "must not be empty"), ("a\nb", "one line"),
                                          ("x" * 301, "at most 300"), ("tab\there", "one line")])
def test_bad_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(GovernanceError, match=message):
        check_text("--reason", text, required=True)


def test_override_file_forces_it_on(tmp_path: Path) -> None:
    watch = KillSwitchWatch(UNREACHABLE, override_file=tmp_path / "killswitch.on")
    assert not watch.on
    (tmp_path / "killswitch.on").write_text("")
    assert watch.on


def _engine(demo_map: IntentMap, classifier: IntentClassifier) -> ConversationEngine:
    return ConversationEngine(demo_map, classifier, call_id="c1")


def test_attached_engines_flip_and_hand_off(tmp_path: Path, demo_map: IntentMap,
                                            classifier: IntentClassifier) -> None:
    watch = KillSwitchWatch(UNREACHABLE, state_file=tmp_path / "last")
    live = _engine(demo_map, classifier)
    watch.attach(live)
    live.handle(CallStarted(caller_id="+15550001"))
    seen: list[bool] = []
    watch.listeners.append(lambda on, state: seen.append(on))
    watch._apply(KillSwitchState(True, "incident", "alice", "t", 1), "pubsub")
    assert live.kill_switch and seen == [True]
    actions = live.handle(Utterance("where is my order", 0.9))
    assert isinstance(actions[-1], Transfer) and actions[-1].reason == "kill_switch"
    new_call = _engine(demo_map, classifier)
    watch.attach(new_call)  # a new call starts in transfer-only mode
    assert isinstance(new_call.handle(CallStarted(caller_id="+15550002"))[-1], Transfer)
    # the last state survives a restart (Redis down at start): read from the state file
    assert KillSwitchWatch(UNREACHABLE, state_file=tmp_path / "last").on
    watch._apply(KillSwitchState(False, "", "bob", "t", 2), "redis")
    assert not live.kill_switch and seen == [True, False]
    # a missing key in a Redis that answers keeps the last state
    watch._apply(KillSwitchState(True, "again", "alice", "t", 3), "redis")
    watch._apply(None, "redis")
    assert watch.on
    del live, new_call
    gc.collect()
    assert len(watch._targets) == 0  # engines of ended calls are not kept alive
