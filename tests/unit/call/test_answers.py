"""The open turn's early end on the real classifier (the demo map, lexical path): a request the classifier
is already sure of mid-sentence must not end the turn there (the agent would cut the caller off)."""

from __future__ import annotations

import pytest

from ari_agent.call.answers import ConversationAnswers
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, load_intent_map
from ari_agent.conversation.nlu.classifier import build_classifier
from ari_agent.seam import Expectation
from ari_agent.speech.turn_completion import CLOSER_ASKS, TurnCompletion


@pytest.fixture(scope="module")
def rules() -> TurnCompletion:
    intent_map = load_intent_map(DEMO_MAP_PATH)
    return TurnCompletion(ConversationAnswers(build_classifier(intent_map.nlu_intents(), embeddings=False)))


def _completes(rules: TurnCompletion, text: str, asks: int = CLOSER_ASKS) -> bool:
    """Does ``text`` end the turn by the endpointer's ``asks``-th ask with it unchanged?"""
    rules.begin(Expectation(kind="open"))
    rules.observe(text)
    return any([rules.completes(text) for _ in range(asks)])


@pytest.mark.parametrize("text", ["I need to talk to", "Hi, I'd like to check", "Where is my", "I want to check",
                                  "I'd like to check the status of my order,", "What time are you"])
def test_a_request_cut_off_mid_sentence_does_not_end_the_turn(rules: TurnCompletion, text: str) -> None:
    assert not _completes(rules, text)


@pytest.mark.parametrize("text", ["I need to talk to someone.", "Hi, I'd like to check the status of my order please.",
                                  "Where is my order?", "What time are you open on Saturday?",
                                  "No, that's all, thank you."])
def test_a_whole_request_or_a_closer_ends_it(rules: TurnCompletion, text: str) -> None:
    assert _completes(rules, text)


def test_the_classifier_is_sure_of_the_cut_off_ones() -> None:
    """The guard is what holds these back (not a low score): without it the turn would end on them."""
    answers = ConversationAnswers(build_classifier(load_intent_map(DEMO_MAP_PATH).nlu_intents(), embeddings=False))
    for text in ("I need to talk to", "Hi, I'd like to check", "Where is my"):
        assert answers.confident_request(text) and answers.unfinished(text)
    assert not answers.unfinished("I want to check my order.") and not answers.unfinished("Where is my order?")
