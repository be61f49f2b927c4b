"""The audio evaluation's caller answering a read-back as a person would: "yes" only when the value read
back is one its script says, otherwise "no" and the value again (``evaluation/audio_runner.py``). Real
demo map and slot parsers; the read-back text is the engine's own wording."""

from __future__ import annotations

from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.evaluation.audio_plan import AudioPlan, PlannedTurn
from ari_agent.evaluation.audio_runner import READ_BACK, read_back_answer


def plan(*lines: str) -> AudioPlan:
    return AudioPlan(tuple(PlannedTurn("speech", "t", text) for text in lines))


def test_a_right_read_back_is_confirmed_and_a_wrong_one_corrected() -> None:
    m = load_intent_map()
    p = plan("where is my order", "it's four five six seven", "no, that's all")
    assert read_back_answer(m, p, "4 5 6 7", 2) == "yes"
    assert read_back_answer(m, p, "4 5 6 8", 2) == "no, it's four five six seven"
    postcode = plan("I want to confirm my appointment", "one zero zero one", "S W one A, one A A", "yes")
    assert read_back_answer(m, postcode, "S W 1 A, 1 A A", 3) == "yes"
    assert read_back_answer(m, postcode, "E H 1 1 Y Z", 3) == "no, S W one A, one A A"
    assert read_back_answer(m, plan("hello"), "1 2 3 4", 1) == "no"


def test_the_engine_s_read_back_wording_is_recognised() -> None:
    from ari_agent.conversation.engine import ConversationEngine
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.seam import CallStarted, Say, Utterance

    intent_map = load_intent_map()
    engine = ConversationEngine(intent_map, build_classifier(intent_map.nlu_intents()), call_id="c-1")
    engine.handle(CallStarted(caller_id="100"))
    engine.handle(Utterance("I'd like to check the status of my order"))
    said = [a.text for a in engine.handle(Utterance("It's 4567.", 0.9, unsure=True)) if isinstance(a, Say)]
    matches = [READ_BACK.match(t) for t in said]
    assert any(mm is not None and mm.group("value") == "4 5 6 7" for mm in matches), said
    assert read_back_answer(intent_map, plan("where is my order", "four five six seven"),
                            next(mm.group("value") for mm in matches if mm), 2) == "yes"
