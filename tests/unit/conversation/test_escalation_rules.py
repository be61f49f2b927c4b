"""Escalation rules at engine level: frustration (phrases, repeated requests for a person, repeated "that's
not what I said") and a queue closed by its own hours (the caller is told and sent where the map says)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.escalation import divert_if_closed, menu_choice, open_at, resolve
from ari_agent.conversation.frustration import FrustrationTracker, person_requests
from ari_agent.conversation.intent_map import FrustrationSpec, IntentMap, parse_intent_map
from ari_agent.errors import ConfigError
from ari_agent.seam import Action, CallStarted, Dtmf, Hangup, Listen, Say, Timeout, Transfer, Utterance

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


# ------------------------------------------------------------------ a closed queue's spoken menu

MENU_BILLING = ('queue_hours:\n  billing:\n    days: {mon: "09:00-17:00", wed: "09:00-17:00"}\n'
                '    spoken: "Mondays and Wednesdays, 9 to 5"\n'
                '    when_closed: {offers: [voicemail, callback, support]}\n')


def _at_menu(m: IntentMap | None = None) -> tuple[ConversationEngine, list[Action]]:
    engine = _engine(m or _map(MENU_BILLING, BILLING_INTENT), WEDNESDAY_NIGHT)
    engine.handle(Utterance("where is my order"))
    return engine, engine.handle(Utterance("agent please"))


def _said(actions: list[Action]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Say))


def test_a_closed_queue_with_several_offers_asks_which_one() -> None:
    engine, out = _at_menu()
    assert not any(isinstance(a, Transfer) for a in out) and engine.state.phase == "closed_menu"
    said = _said(out)
    assert "billing team is closed" in said and "Mondays and Wednesdays, 9 to 5" in said
    assert "You can leave a voicemail, ask for a call back, or talk to our support team. Which would you like?" in said
    listen = out[-1]
    assert isinstance(listen, Listen) and listen.expect.dtmf and listen.expect.max_digits == 1


@pytest.mark.parametrize(("answer", "queue"), [
    ("I'll leave a message", "voicemail"), ("voicemail please", "voicemail"),
    ("can you call me back tomorrow", "callback"), ("a call back", "callback"),
    ("the support team", "support"), ("let me talk to someone", "support"), ("a real person please", "support"),
    ("option two", "callback"), ("three", "support"), ("the first one", "voicemail"), ("the last one", "support"),
])
def test_the_callers_spoken_choice_is_acted_on(answer: str, queue: str) -> None:
    engine, _ = _at_menu()
    out = engine.handle(Utterance(answer))
    t = _transfer(out)
    assert (t.queue, t.reason) == (queue, "queue_closed"), answer
    assert t.context["closed_queue"] == "billing" and t.context["offer"] == queue
    assert t.context["offers"] == "voicemail,callback,support"
    assert t.context["escalated_because"] == "caller_request" and "caller chose " + queue in t.context["reason"]
    assert "closed" not in _said(out)  # told once, before the menu


@pytest.mark.parametrize(("key", "queue"), [("1", "voicemail"), ("2", "callback"), ("3", "support"),
                                            ("0", "support")])
def test_the_keypad_chooses_too(key: str, queue: str) -> None:
    engine, _ = _at_menu()
    assert _transfer(engine.handle(Dtmf(key))).queue == queue


def test_an_unclear_answer_is_asked_again_once_then_the_first_option() -> None:
    engine, _ = _at_menu()
    again = engine.handle(Utterance("hmm what"))
    assert not any(isinstance(a, Transfer) for a in again) and "Which would you like?" in _said(again)
    t = _transfer(engine.handle(Dtmf("7")))  # a key that is no option: the second miss
    assert t.queue == "voicemail" and "no clear choice" in t.context["summary"]


def test_silence_at_the_menu_ends_in_the_first_option_and_goodbye_ends_the_call() -> None:
    engine, _ = _at_menu()
    engine.handle(Timeout("silence"))
    assert _transfer(engine.handle(Timeout("silence"))).queue == "voicemail"
    engine, _ = _at_menu()
    out = engine.handle(Utterance("no thanks goodbye"))
    assert isinstance(out[-1], Hangup)


def test_a_menu_is_offered_once_and_never_in_transfer_only_mode() -> None:
    engine, _ = _at_menu()
    engine.kill_switch = True  # flipped mid-call: the next turn transfers, to the first option, no second menu
    out = engine.handle(Utterance("hmm"))
    assert _transfer(out).queue == "voicemail"
    m = _map(MENU_BILLING, BILLING_INTENT)
    engine = ConversationEngine(m, StubClassifier({"order": "order_status"}), call_id="c", now=WEDNESDAY_NIGHT,
                                kill_switch=True)
    assert isinstance(engine.handle(CallStarted()), list)


def test_the_maps_own_menu_words_and_bad_menus_are_refused() -> None:
    own = MENU_BILLING.replace("[voicemail, callback, support]}",
                               '[callback, support], menu: "Call back or support?", say: "Billing is shut."}')
    engine, out = _at_menu(_map(own, BILLING_INTENT))
    assert _said(out) == "Billing is shut. Call back or support?"
    assert _transfer(engine.handle(Utterance("support"))).queue == "support"
    for bad, where in [("[voicemail]", "when_closed"), ("[voicemail, voicemail]", "when_closed"),
                       ("[voicemail, billing]", "when_closed.offers[1]"), ("[voicemail, nowhere]", "offers[1]")]:
        with pytest.raises(ConfigError) as err:
            _map(MENU_BILLING.replace("[voicemail, callback, support]", bad), BILLING_INTENT)
        assert where in err.value.key_path, (bad, str(err.value))
    with pytest.raises(ConfigError):
        _map(MENU_BILLING.replace("{offers: [voicemail, callback, support]}",
                                  "{offer: voicemail, offers: [callback, support]}"), BILLING_INTENT)


@pytest.mark.parametrize(("text", "choice"), [
    ("voicemail", "voicemail"), ("call me back", "callback"), ("the general team", "general"),
    ("two", "callback"), ("voicemail or a call back", None), ("pizza", None), ("", None)])
def test_menu_choice(text: str, choice: str | None) -> None:
    assert menu_choice(text, ("voicemail", "callback", "general")) == choice


# ------------------------------------------------------------------ a raised voice (Utterance.raised_db)

def test_a_raised_voice_counts_the_cue_said_with_it_twice_and_is_never_a_cue_alone() -> None:
    m = _map("")
    engine = _engine(m)
    assert not any(isinstance(a, Transfer) for a in engine.handle(Utterance("where is my order", raised_db=20)))
    t = _transfer(engine.handle(Utterance("agent", raised_db=10.0)))
    assert t.reason == "frustration" and "asked for a person once, the last in a raised voice (+10 dB)" in \
        t.context["reason"]
    engine = _engine(m)
    engine.handle(Utterance("where is my order"))
    assert _transfer(engine.handle(Utterance("agent", raised_db=8.0))).reason == "caller_request"  # under 9 dB
    tracker = FrustrationTracker(FrustrationSpec())
    assert tracker.heard("that's not what I said", raised_db=12) == \
        "said the agent misunderstood once, the last in a raised voice (+12 dB)"
    off = FrustrationTracker(FrustrationSpec(raised_voice_db=0))
    assert off.heard("agent", raised_db=30) is None and off.heard("agent") == "asked for a person 2 times"
