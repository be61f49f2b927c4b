"""Escalation rules at engine level: frustration (phrases, repeated requests for a person, repeated "that's
not what I said") and a queue closed by its own hours (the caller is told and sent where the map says)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.escalation import divert_if_closed, open_at, resolve
from ari_agent.conversation.frustration import FrustrationTracker, person_requests
from ari_agent.conversation.intent_map import FrustrationSpec, IntentMap, parse_intent_map
from ari_agent.seam import Action, CallStarted, Say, Transfer, Utterance

from .conftest import DATA
from .test_engine import StubClassifier

WEDNESDAY_NOON = datetime(2026, 3, 4, 12, 0)
WEDNESDAY_NIGHT = datetime(2026, 3, 4, 20, 0)


def _map(extra: str, intent_extra: str = "") -> IntentMap:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "queues: [support]\n", "queues: [support, billing]\n" + extra, 1)
    if intent_extra:
        text = text.replace("    tools: [lookup_order]", intent_extra + "    tools: [lookup_order]", 1)
    return parse_intent_map(text, "m.yaml")


def _engine(m: IntentMap, now: datetime | None = None) -> ConversationEngine:
    engine = ConversationEngine(m, StubClassifier({"order": "order_status"}), call_id="c", now=now)
    engine.handle(CallStarted(caller_id="+15551230001"))
    return engine


def _transfer(actions: list[Action]) -> Transfer:
    assert actions and isinstance(actions[-1], Transfer), actions
    return actions[-1]


# ------------------------------------------------------------------ frustration

def test_a_frustration_phrase_hands_off_with_its_reason_code() -> None:
    m = _map('frustration: {phrases: ["this is useless", "ridiculous"]}\n')
    engine = _engine(m)
    engine.handle(Utterance("where is my order"))
    t = _transfer(engine.handle(Utterance("oh this is useless")))
    assert t.reason == "frustration" and t.context["condition"] == "frustration"
    assert "this is useless" in t.context["reason"]
    assert t.queue == "support"


def test_one_calm_request_for_a_person_is_caller_request_but_a_repeated_one_is_frustration() -> None:
    m = _map("")
    calm = _transfer(_engine(m).handle(Utterance("can I talk to an agent please")))
    assert calm.reason == "caller_request"
    angry = _transfer(_engine(m).handle(Utterance("agent! agent! get me an agent")))
    assert angry.reason == "frustration" and "3 times" in angry.context["reason"]


def test_thats_not_what_i_said_twice_is_frustration_and_once_is_not() -> None:
    m = _map("")
    engine = _engine(m)
    engine.handle(Utterance("where is my order"))
    first = engine.handle(Utterance("that's not what I said"))
    assert not any(isinstance(a, Transfer) for a in first)
    t = _transfer(engine.handle(Utterance("no, that is not what I said")))
    assert t.reason == "frustration" and "misunderstood 2 times" in t.context["reason"]


def test_the_not_understood_count_is_configurable() -> None:
    m = _map("frustration: {not_understood: 1}\n")
    t = _transfer(_engine(m).handle(Utterance("you're not listening")))
    assert t.reason == "frustration"


def test_an_escalation_rule_routes_frustrated_callers_to_their_own_queue() -> None:
    m = _map('frustration: {phrases: ["ridiculous"]}\n',
             "    escalation:\n      rules:\n        - {when: frustration, queue: billing, reason: \"upset caller\"}\n")
    engine = _engine(m)
    engine.handle(Utterance("where is my order"))
    t = _transfer(engine.handle(Utterance("this is ridiculous")))
    assert (t.queue, t.reason) == ("billing", "frustration")
    assert t.context["reason"].startswith("upset caller")


@pytest.mark.parametrize(("text", "count"), [("can I pay in person", 0), ("agent", 1), ("speak to someone", 1),
                                            ("operator operator", 2), ("a human, a real person", 2)])
def test_person_requests_are_counted_only_in_requests_for_a_person(text: str, count: int) -> None:
    assert person_requests(text) == count


def test_the_tracker_counts_across_the_call() -> None:
    tracker = FrustrationTracker(FrustrationSpec(person_requests=3))
    assert tracker.heard("agent") is None
    assert tracker.heard("an agent") is None
    assert tracker.heard("agent please") == "asked for a person 3 times"


# ------------------------------------------------------------------ queue closed by its hours

CLOSED_BILLING = ('queue_hours:\n  billing:\n    days: {mon: "09:00-17:00", wed: "09:00-17:00"}\n'
                  '    spoken: "Mondays and Wednesdays, 9 to 5"\n    when_closed: {offer: voicemail}\n')
BILLING_INTENT = "    escalation: {queue: billing}\n"


def test_a_closed_queue_is_not_rung_the_caller_hears_why_and_goes_to_the_offer() -> None:
    m = _map(CLOSED_BILLING, BILLING_INTENT)
    engine = _engine(m, WEDNESDAY_NIGHT)
    engine.handle(Utterance("where is my order"))
    out = engine.handle(Utterance("agent please"))
    t = _transfer(out)
    assert (t.queue, t.reason) == ("voicemail", "queue_closed")
    assert t.context["closed_queue"] == "billing" and t.context["offer"] == "voicemail"
    assert t.context["escalated_because"] == "caller_request"
    said = " ".join(a.text for a in out if isinstance(a, Say))
    assert "billing team is closed" in said and "Mondays and Wednesdays, 9 to 5" in said and "voicemail" in said


def test_an_open_queue_is_rung_as_usual() -> None:
    m = _map(CLOSED_BILLING, BILLING_INTENT)
    engine = _engine(m, WEDNESDAY_NOON)
    engine.handle(Utterance("where is my order"))
    t = _transfer(engine.handle(Utterance("agent please")))
    assert (t.queue, t.reason) == ("billing", "caller_request")
    assert "closed_queue" not in t.context


def test_a_closed_queue_can_offer_another_queue_and_its_own_words() -> None:
    m = _map('queue_hours:\n  billing:\n    days: {mon: "09:00-17:00"}\n    spoken: "Mondays"\n'
             '    when_closed: {offer: support, say: "Billing is closed; support can help you."}\n', BILLING_INTENT)
    out = _engine(m, WEDNESDAY_NOON).handle(Utterance("agent"))  # no intent yet: the fallback queue, open
    assert _transfer(out).queue == "support"
    engine = _engine(m, WEDNESDAY_NOON)
    engine.handle(Utterance("where is my order"))
    out = engine.handle(Utterance("agent"))
    t = _transfer(out)
    assert (t.queue, t.reason, t.context["offer"]) == ("support", "queue_closed", "support")
    assert any(isinstance(a, Say) and a.text == "Billing is closed; support can help you." for a in out)


def test_no_clock_means_no_closing() -> None:
    m = _map(CLOSED_BILLING, BILLING_INTENT)
    esc = resolve(m, m.intent("order_status"), "caller_request")
    assert divert_if_closed(m, esc, None) is None
    assert divert_if_closed(m, esc, WEDNESDAY_NIGHT) is not None


@pytest.mark.parametrize(("when", "is_open"), [
    (datetime(2026, 3, 2, 8, 59), False), (datetime(2026, 3, 2, 9, 0), True), (datetime(2026, 3, 2, 16, 59), True),
    (datetime(2026, 3, 2, 17, 0), False), (datetime(2026, 3, 3, 12, 0), False)])
def test_open_at_is_half_open_and_unlisted_days_are_closed(when: datetime, is_open: bool) -> None:
    assert open_at({"mon": "09:00-17:00", "tue": "closed"}, when) is is_open
