"""The conversation layer's word knowledge, offered to the speech layer's turn rules
(:class:`ari_agent.speech.turn_completion.AnswerReader`): injected here so speech/ imports nothing above it."""

from __future__ import annotations

from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.digits import digit_runs
from ari_agent.conversation.slots.yes_no import parse_yes_no

# An open request whose partial transcript the classifier is this sure about needs no more waiting.
OPEN_TURN_CONFIDENT = 0.75


class ConversationAnswers:
    def __init__(self, classifier: IntentClassifier) -> None:
        self.classifier = classifier

    def is_yes_no(self, text: str) -> bool:
        return parse_yes_no(text) is not None

    def digit_count(self, text: str) -> int:
        return sum(len(run) for run in digit_runs(text))

    def confident_request(self, text: str) -> bool:
        return self.classifier.classify(text).confidence >= OPEN_TURN_CONFIDENT
