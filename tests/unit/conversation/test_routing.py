"""IntentRouter: dates and times are slot values, not the request (one retry said generically)."""

from __future__ import annotations

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import Classification
from ari_agent.conversation.routing import IntentRouter, _generic_when


class DateShyClassifier:
    """Fake: understands "move it" only when no weekday is named (as MiniLM did with the anchors)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def classify(self, text: str) -> Classification:
        self.seen.append(text)
        if "move it" in text and "friday" not in text.lower():
            return Classification("appointment_reschedule", 0.9, (("appointment_reschedule", 0.9),))
        return Classification(None, 0.3, (("appointment_reschedule", 0.3),))


def test_a_rejected_request_with_a_date_is_tried_once_without_it(demo_map: IntentMap) -> None:
    fake = DateShyClassifier()
    route = IntentRouter(demo_map, fake).route("actually I need to move it to next Friday at 10 am")
    assert route.intent == "appointment_reschedule"
    assert fake.seen == ["actually I need to move it to next Friday at 10 am", "actually I need to move it another day"]


def test_no_retry_without_a_date_or_when_the_first_answer_stands(demo_map: IntentMap) -> None:
    fake = DateShyClassifier()
    router = IntentRouter(demo_map, fake)
    assert router.route("tell me a joke").intent is None
    assert router.route("move it please").intent == "appointment_reschedule"
    assert fake.seen == ["tell me a joke", "move it please"]


def test_generic_when() -> None:
    assert _generic_when("book it for tomorrow at 3:30 pm") == "book it for another day"
    assert _generic_when("order 4567 on monday") == "order 4567 another day"
