"""The conversation layer's word knowledge, offered to the speech layer's turn rules
(:class:`ari_agent.speech.turn_completion.AnswerReader`): injected here so speech/ imports nothing above it."""

from __future__ import annotations

from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.digits import digit_runs
from ari_agent.conversation.slots.yes_no import parse_yes_no

# An open request whose partial transcript the classifier is this sure about needs no more waiting.
OPEN_TURN_CONFIDENT = 0.75

# Words a request does not end on: the caller paused mid-sentence ("I need to talk to", "I'd like to check",
# "where is my"); the classifier is often sure of those already (measured on the demo map: 1.00, 0.82, 0.73).
UNFINISHED_TAILS = frozenset("""
a an the my your our their his her its this that these those some any
to of for with about from in on at by into as than and or but so if because
i i'd i'm i'll i've we we'd we're you it is are was were be been am do does did
can could would will should may might must want wanna need needs like love trying try going gonna
check change cancel book get make know see ask find track talk speak tell give update confirm
um uh er erm hmm
""".split())
_PUNCT = ".,!?;:\"'()-…"


class ConversationAnswers:
    def __init__(self, classifier: IntentClassifier) -> None:
        self.classifier = classifier

    def is_yes_no(self, text: str) -> bool:
        return parse_yes_no(text) is not None

    def digit_count(self, text: str) -> int:
        return sum(len(run) for run in digit_runs(text))

    def confident_request(self, text: str) -> bool:
        return self.classifier.classify(text).confidence >= OPEN_TURN_CONFIDENT

    def unfinished(self, text: str) -> bool:
        stripped = text.rstrip()
        if not stripped or stripped.endswith((",", "...", "…", "-")):  # whisper marks a trailing-off so
            return True
        last = stripped.split()[-1].strip(_PUNCT).lower().replace("\u2019", "'")
        return last in UNFINISHED_TAILS
