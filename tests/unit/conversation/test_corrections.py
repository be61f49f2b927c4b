"""Corrections and compound answers as dialogue moves: one answer filling two slots, a correction
replacing what it names at any question, a second request kept for later, "go back" and "start over".
(The same conversations as scripts, through ``ari-agent chat``: tests/data/conversation/scripts/.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ari_agent.conversation.engine import ConversationEngine, request_words
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.seam import Action, CallStarted, CallTool, Dtmf, Event, Say, ToolResult, Transfer, Utterance

APPOINTMENT = {"appointment_id": "A-100", "customer_id": "C-1001", "date": "2026-03-07",
               "description": "Boiler service", "status": "booked", "time": "10:30:00"}
SHIPPED: dict[str, object] = {"order_number": "4567", "status": "shipped", "carrier": "UPS", "eta": "2026-03-05"}


class Call:
    """One conversation driven by text; tool calls answered from ``results`` (by tool name)."""

    def __init__(self, engine: ConversationEngine, results: dict[str, dict[str, object]]) -> None:
        self.engine = engine
        self.results = results
        self.tools: list[CallTool] = []
        self.said: list[str] = []
        self.last: list[Action] = []
        self.handle(CallStarted(caller_id="+15551230001"))

    def handle(self, event: Event) -> list[Action]:
        out = self.engine.handle(event)
        everything = list(out)
        while (calls := [a for a in out if isinstance(a, CallTool)]):
            call = calls[0]
            self.tools.append(call)
            out = self.engine.handle(ToolResult(call.call_id, True, self.results.get(call.name, {})))
            everything += out
        self.said += [a.text for a in everything if isinstance(a, Say)]
        self.last = everything
        return everything

    def say(self, *texts: str) -> list[Action]:
        out: list[Action] = []
        for text in texts:
            out = self.handle(Utterance(text))
        return out

    def calls(self, name: str) -> list[dict[str, object]]:
        return [c.args for c in self.tools if c.name == name]


@pytest.fixture
def call(make_engine: Callable[..., ConversationEngine]) -> Callable[[dict[str, dict[str, object]]], Call]:
    return lambda results: Call(make_engine(call_id="corrections"), results)


RESCHEDULE = {"verify_identity": {"customer_id": "C-1001", "level": "basic", "verified": True},
              "get_appointment": APPOINTMENT, "reschedule_appointment": APPOINTMENT}
UNLOCK = {"verify_identity": {"customer_id": "C-1002", "level": "full", "verified": True},
          "unlock_account": {"customer_id": "C-1002", "locked": False, "was_locked": True}}


def test_one_answer_fills_the_date_and_the_time(call: Callable[..., Call]) -> None:
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "next Tuesday at half three")
    assert c.engine.state.phase == "confirm"
    assert c.engine.state.slots == {"new_date": "2026-03-10", "new_time": "15:30"}
    assert not any("what time suits you" in s for s in c.said)


def test_a_correction_at_the_confirmation_asks_again_with_the_new_day(call: Callable[..., Call]) -> None:
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "next Tuesday at half three")
    c.say("actually no, make it wednesday")
    assert c.engine.state.phase == "confirm" and "Wednesday, March 11th at 3:30 PM" in c.said[-1]
    assert c.calls("reschedule_appointment") == []
    c.say("yes")
    assert c.calls("reschedule_appointment") == [
        {"appointment_id": "A-100", "new_date": "2026-03-11", "new_time": "15:30"}]


def test_a_ruled_out_value_is_not_taken_as_the_new_one(call: Callable[..., Call]) -> None:
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "next Tuesday", "3 pm")
    c.say("no, not tuesday, thursday")
    assert c.engine.state.slots["new_date"] == "2026-03-05" and c.engine.state.phase == "confirm"
    c2 = call(RESCHEDULE)
    c2.say("I need to move my appointment", "1001", "SW1A 1AA", "next Tuesday", "3 pm", "not today")
    assert c2.engine.state.phase == "anything_else" and c2.calls("reschedule_appointment") == []


@pytest.mark.parametrize("correction", ["sorry, it's 1234", "no wait, it's 1234", "actually I meant 1234"])
def test_a_correction_after_the_answer_runs_the_request_again(call: Callable[..., Call], correction: str) -> None:
    c = call({"lookup_order": SHIPPED})
    c.say("where's my order", "4567", correction)
    assert c.calls("lookup_order") == [{"order_number": "4567"}, {"order_number": "1234"}]
    assert "Okay, I've changed that to 1 2 3 4." in c.said


def test_a_correction_of_an_earlier_identity_answer(call: Callable[..., Call]) -> None:
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1003", "no wait, it's 1002")
    assert c.engine.identity["customer_number"].value == "1002"
    assert "postcode" in c.said[-1]
    c.say("M1 1AE", "September thirtieth nineteen ninety")
    assert c.calls("verify_identity")[0]["customer_id"] == "C-1002"


def test_a_checked_identity_changes_only_when_named_and_is_checked_again(call: Callable[..., Call]) -> None:
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety")
    c.say("not today")  # a no, not a new date of birth
    assert c.engine.verified == "strong" and c.calls("unlock_account") == []
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety")
    c.say("sorry, my customer number is 1003")
    assert [a["customer_id"] for a in c.calls("verify_identity")] == ["C-1002", "C-1003"]
    assert c.calls("unlock_account") == []


def test_a_second_request_in_the_same_turn_is_served_after_the_first(call: Callable[..., Call]) -> None:
    c = call({"lookup_order": SHIPPED})
    c.say("what are your hours, and also where's order 4567")
    assert any(s.startswith("We're open") for s in c.said)
    assert c.calls("lookup_order") == [{"order_number": "4567"}]


def test_a_yes_with_a_second_request(call: Callable[..., Call]) -> None:
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety")
    c.say("yes please, and also what are your hours")
    assert c.calls("unlock_account") == [{"customer_id": "C-1002"}]
    assert any(s.startswith("We're open") for s in c.said)


def test_an_unclear_answer_with_a_second_request_writes_nothing(call: Callable[..., Call]) -> None:
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety")
    c.say("I guess, and also what are your hours")
    assert c.calls("unlock_account") == [] and c.engine.state.phase == "confirm"


def test_go_back_asks_the_last_question_again(call: Callable[..., Call]) -> None:
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "Friday", "go back")
    assert c.said[-2:] == ["Okay, let's go back.", "What day would you like to move it to?"]
    assert "new_date" not in c.engine.state.slots
    c.say("Monday", "10 am")
    assert c.engine.state.slots == {"new_date": "2026-03-09", "new_time": "10:00"}


def test_go_back_at_the_confirmation_and_in_the_identity_questions(call: Callable[..., Call]) -> None:
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "Friday", "10 am", "go back")
    assert c.engine.state.phase == "slot" and "what time" in c.said[-1].lower()
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "go back")
    assert "customer number" in c.said[-1] and c.engine.identity == {}
    c.say("go back")
    assert c.said[-2] == "We're at the first question."


def test_start_over_at_the_confirmation_writes_nothing(call: Callable[..., Call]) -> None:
    c = call(UNLOCK)
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety", "start over")
    assert c.engine.state.phase == "open" and c.engine.task is None and c.calls("unlock_account") == []
    assert not any(isinstance(a, Transfer) for a in c.last)


def test_a_second_request_given_with_a_slot_answer_is_kept(call: Callable[..., Call]) -> None:
    c = call({"lookup_order": SHIPPED})
    c.say("where's my order", "4567, and also what are your hours")
    assert c.calls("lookup_order") == [{"order_number": "4567"}]
    assert any(s.startswith("We're open") for s in c.said)
    assert c.engine.state.phase == "anything_else"


@pytest.mark.parametrize("text", ["no, but where's order 4567", "no thanks, actually where's order 4567"])
def test_a_no_then_a_new_request_at_anything_else(call: Callable[..., Call], text: str) -> None:
    c = call({"lookup_order": SHIPPED})
    c.say("what are your hours", text)
    assert c.calls("lookup_order") == [{"order_number": "4567"}] and not c.engine.ended


@pytest.mark.parametrize("text", ["no thanks", "no that's all thank you", "nope, I'm good", "no",
                                  "that's fine, thanks", "Know that's fine, thanks.", "I'm all set"])
def test_a_plain_no_at_anything_else_still_ends_the_call(call: Callable[..., Call], text: str) -> None:
    c = call({})
    c.say("what are your hours", text)
    assert c.engine.ended and c.engine.state.phase == "ended"


@pytest.mark.parametrize("text", ["yes", "yes there is", "yeah, one more thing"])
def test_a_yes_at_anything_else_asks_what_else(call: Callable[..., Call], text: str) -> None:
    c = call({})
    c.say("what are your hours", text)
    assert c.said[-1] == "What else can I help you with?"


def test_a_side_question_mid_request_is_answered_and_the_request_resumed(call: Callable[..., Call]) -> None:
    """ "What are your hours?" at the date question: answered, then back to the date, answers kept."""
    c = call(RESCHEDULE)
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "what are your opening hours")
    assert any(s.startswith("We're open") for s in c.said)
    assert c.said[-2:] == ["Now, back to where we were.", "What day would you like to move it to?"]
    assert c.engine.state.phase == "slot" and c.engine.verified == "basic"
    c.say("next friday at 10am", "yes")
    assert c.calls("reschedule_appointment") == [
        {"appointment_id": "A-100", "new_date": "2026-03-13", "new_time": "10:00"}]
    assert len(c.calls("verify_identity")) == 1  # not asked again


def test_a_side_question_at_the_confirmation_asks_for_consent_again(call: Callable[..., Call]) -> None:
    c = call({**UNLOCK, "faq": {"topic": "address", "answer": "42 Harbour Street, Riverside."}})
    c.say("I'm locked out of my account", "1002", "M1 1AE", "September thirtieth nineteen ninety")
    c.say("hang on, where are you located")
    assert c.calls("unlock_account") == []  # a side question is not consent
    assert c.engine.state.phase == "confirm" and c.said[-2] == "Now, back to where we were."
    c.say("yes")
    assert c.calls("unlock_account") == [{"customer_id": "C-1002"}]


@pytest.mark.parametrize("side", ["what are your opening hours", "wait, where's order 4567",
                                  "hang on, where's my order 4567"])
def test_a_side_request_at_the_reschedule_confirmation_comes_back_to_it(call: Callable[..., Call],
                                                                       side: str) -> None:
    """A side request at "Shall I go ahead?" (also one led by a pause: "wait, ..."): served, then the
    unfinished reschedule is asked again with its answers, and runs only on the yes that follows."""
    c = call({**RESCHEDULE, "lookup_order": SHIPPED})
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "next Tuesday", "3 pm", side)
    assert c.calls("reschedule_appointment") == []  # a side request is not consent
    assert "4567" not in side or c.calls("lookup_order") == [{"order_number": "4567"}]
    assert c.engine.state.phase == "confirm" and c.said[-2] == "Now, back to where we were."
    assert c.said[-1].startswith("I'll move your Boiler service") and c.said[-1].endswith("Shall I go ahead?")
    c.say("yes")
    assert c.calls("reschedule_appointment") == [
        {"appointment_id": "A-100", "new_date": "2026-03-10", "new_time": "15:00"}]


@pytest.mark.parametrize("misheard", ["and 1 1 80.", "S W 1 A", "and 11 80"])
def test_a_misheard_code_is_not_a_new_request(call: Callable[..., Call], misheard: str) -> None:
    """By voice, "M one one A E" came back as "and 1 1 80.", which the classifier scores 0.98 as a
    reschedule: at the postcode question of a confirmation that is a try at the postcode (asked again),
    never a switch of the caller's request to moving the appointment."""
    c = call({"verify_identity": {"customer_id": "C-1001", "level": "basic", "verified": True},
              "get_appointment": APPOINTMENT})
    c.say("I want to confirm my appointment", "1001", misheard)
    assert c.engine.task is not None and c.engine.task.intent.name == "appointment_confirm"
    assert c.engine.state.phase == "identity" and c.said[-1] == "And what's the postcode on your account?"
    assert not any("new time" in s for s in c.said)


def test_request_words_leave_out_numbers_digits_and_spelled_letters() -> None:
    assert request_words("and 1 1 80.") == {"and"}
    assert request_words("S W one A, one A A") == {"a"}
    assert request_words("the h11 yz") == {"the", "yz"}
    assert request_words("actually I want to pay a bill") == {"actually", "i", "want", "to", "pay", "a", "bill"}
    assert request_words("hang on, where's my order 4567") == {"hang", "on", "where's", "my", "order"}


def test_a_request_replaced_is_not_resumed(call: Callable[..., Call]) -> None:
    c = call({**RESCHEDULE, "lookup_order": SHIPPED})
    c.say("I need to move my appointment", "1001", "SW1A 1AA", "forget that, where's my order 4567 instead")
    assert c.calls("lookup_order") == [{"order_number": "4567"}]
    assert "Now, back to where we were." not in c.said and c.engine.state.phase == "anything_else"


@pytest.fixture
def unsure_map(tmp_path: Path) -> IntentMap:
    """The demo map with read-back on: numbers and codes heard with confidence < 0.7 are read back."""
    text = DEMO_MAP_PATH.read_text(encoding="utf-8").replace("limits:\n", "limits:\n  read_back_below: 0.7\n", 1)
    path = tmp_path / "map.yaml"
    path.write_text(text, encoding="utf-8")
    return load_intent_map(path)


def _heard(c: Call, text: str, confidence: float) -> list[Action]:
    return c.handle(Utterance(text, confidence))


def test_an_unsure_number_is_read_back_and_used_on_yes(make_engine: Callable[..., ConversationEngine],
                                                       unsure_map: IntentMap) -> None:
    c = Call(make_engine(intent_map=unsure_map), {"lookup_order": SHIPPED})
    c.say("where's my order")
    _heard(c, "it's one two three four", 0.42)
    assert c.said[-1] == "I have 1 2 3 4. Is that right?" and c.calls("lookup_order") == []
    c.say("yes")
    assert c.calls("lookup_order") == [{"order_number": "1234"}]


def test_a_read_back_corrected_by_the_caller(make_engine: Callable[..., ConversationEngine],
                                             unsure_map: IntentMap) -> None:
    c = Call(make_engine(intent_map=unsure_map), {"lookup_order": SHIPPED})
    c.say("where's my order")
    _heard(c, "one two three four", 0.4)
    _heard(c, "no, four five six eight", 0.95)
    assert c.calls("lookup_order") == [{"order_number": "4568"}]
    # a plain no asks the question again; nothing is looked up on a number the caller refused
    c2 = Call(make_engine(intent_map=unsure_map), {"lookup_order": SHIPPED})
    c2.say("where's my order")
    _heard(c2, "one two three four", 0.4)
    c2.say("no")
    assert c2.calls("lookup_order") == [] and c2.engine.state.phase == "slot"


def test_confident_or_keyed_answers_are_not_read_back(make_engine: Callable[..., ConversationEngine],
                                                      unsure_map: IntentMap) -> None:
    c = Call(make_engine(intent_map=unsure_map), {"lookup_order": SHIPPED})
    c.say("where's my order")
    _heard(c, "four five six seven", 0.93)
    assert c.calls("lookup_order") == [{"order_number": "4567"}]
    c2 = Call(make_engine(intent_map=unsure_map), {"lookup_order": SHIPPED})
    c2.say("where's my order")
    _heard(c2, "one two three four", 0.3)
    c2.handle(Dtmf("4567"))  # at the read-back the caller keys the number in: exact, used as is
    assert c2.calls("lookup_order") == [{"order_number": "4567"}]
