"""Consent that means consent: every answer of an adversarial set (tests/data/conversation/consent.tsv:
``answer<TAB>label``, label yes | no | unclear) said at a write's confirmation, through the real engine
with the demo map. No answer but a plain yes may run the write; plain yeses must (>= 98 %).

The confusion table (label x outcome: write / re-ask / cancel / handoff / other) is printed by
``python -m tests.unit.conversation.test_consent`` (and by ``pytest -s`` on this file).
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.yes_no import first_answer, read_yes_no, unaccounted_words
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Dtmf,
    Event,
    Listen,
    Say,
    ToolResult,
    Transfer,
    Utterance,
)

from .conftest import DATA, TODAY

CONSENT = DATA / "consent.tsv"
OUTCOMES = ("write", "re-ask", "cancel", "handoff", "other")
LABELS = ("yes", "no", "unclear")
UNLOCK_VERIFIED = {"customer_id": "C-1002", "level": "full", "verified": True}
APPOINTMENT = {"appointment_id": "A-100", "customer_id": "C-1001", "date": "2026-03-07",
               "description": "Boiler service", "status": "booked", "time": "10:30:00"}
# The probes of the bug report (the first seven) and four more.
PROBES = (
    "I am not sure", "that's not right", "is that right?", "I can't confirm that", "confirm what exactly?",
    "fine whatever", "why not ask my wife first",
    "yeah no", "great, another robot", "sure... not", "only if it doesn't cost anything",
)


def load_consent_set(path: Path = CONSENT) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()[1:], 2):
        if not line.strip():
            continue
        answer, label = line.split("\t")
        assert label in LABELS, f"{path.name}:{n}: label {label!r}"
        rows.append((answer, label))
    return rows


Make = Callable[[], ConversationEngine]


def _feed(engine: ConversationEngine, events: Iterator[Event] | list[Event]) -> list[Action]:
    out: list[Action] = []
    for event in events:
        out = engine.handle(event)
    return out


def _answer_tool(engine: ConversationEngine, out: list[Action], data: dict[str, object]) -> list[Action]:
    call = next(a for a in out if isinstance(a, CallTool))
    return engine.handle(ToolResult(call.call_id, True, data))


def at_unlock_confirmation(make: Make) -> tuple[ConversationEngine, list[Action]]:
    """An engine whose last question is "Shall I unlock your online account now?" (strong verification)."""
    engine = make()
    out = _feed(engine, [CallStarted(caller_id="+15551230001"), Utterance("I'm locked out of my account"),
                         Utterance("1002"), Utterance("M1 1AE"), Utterance("September thirtieth nineteen ninety")])
    out = _answer_tool(engine, out, UNLOCK_VERIFIED)
    assert engine.state.phase == "confirm", out
    return engine, out


def at_reschedule_confirmation(make: Make) -> tuple[ConversationEngine, list[Action]]:
    """An engine whose last question is "I'll move your Boiler service ... Shall I go ahead?"."""
    engine = make()
    out = _feed(engine, [CallStarted(caller_id="+15551230001"), Utterance("I need to move my appointment"),
                         Utterance("1001"), Utterance("SW1A 1AA")])
    out = _answer_tool(engine, out, {"customer_id": "C-1001", "level": "basic", "verified": True})
    out = _feed(engine, [Utterance("next Tuesday"), Utterance("3 pm")])
    out = _answer_tool(engine, out, APPOINTMENT)
    assert engine.state.phase == "confirm", out
    return engine, out


def outcome(engine: ConversationEngine, out: list[Action], write_tool: str) -> str:
    if any(isinstance(a, CallTool) and a.name == write_tool for a in out):
        return "write"
    if any(isinstance(a, Transfer) for a in out):
        return "handoff"
    if engine.state.phase == "confirm" and any(isinstance(a, Listen) for a in out):
        return "re-ask"
    if engine.state.phase == "anything_else" and engine.task is None:
        return "cancel"
    return "other"


def reply(out: list[Action]) -> str:
    parts = [a.text for a in out if isinstance(a, Say)]
    parts += [f"[transfer {a.queue} {a.reason}]" for a in out if isinstance(a, Transfer)]
    parts += [f"[tool {a.name}]" for a in out if isinstance(a, CallTool)]
    return " ".join(parts)


def _fork(engine: ConversationEngine) -> ConversationEngine:
    """A copy of ``engine`` in its present state (the map, router and policy shared, not copied)."""
    shared: list[object] = [engine.map, engine.spec, engine.router, engine.policy, engine.key_fn,
                            *engine.map.intents, *engine.map.tools.values()]
    return copy.deepcopy(engine, {id(x): x for x in shared})


def run_set(make: Make, rows: list[tuple[str, str]], at: Callable[[Make], tuple[ConversationEngine, list[Action]]],
            write_tool: str) -> tuple[Counter[tuple[str, str]], list[tuple[str, str, str, str]]]:
    table: Counter[tuple[str, str]] = Counter()
    detail: list[tuple[str, str, str, str]] = []
    start, _ = at(make)
    for answer, label in rows:
        engine = _fork(start)
        out = engine.handle(Utterance(answer))
        got = outcome(engine, out, write_tool)
        table[label, got] += 1
        detail.append((answer, label, got, reply(out)))
    return table, detail


def format_table(title: str, table: Counter[tuple[str, str]]) -> str:
    lines = [title, f"{'label':8}" + "".join(f"{o:>9}" for o in OUTCOMES) + f"{'total':>9}"]
    for label in LABELS:
        row = [table[label, o] for o in OUTCOMES]
        lines.append(f"{label:8}" + "".join(f"{n:>9}" for n in row) + f"{sum(row):>9}")
    return "\n".join(lines)


def reschedule_sample(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every other answer that does not speak of the account (which the reschedule question does not)."""
    usable = [r for r in rows if not any(w in r[0].lower() for w in ("unlock", "account"))]
    return usable[::2]


@pytest.fixture
def make(make_engine: Callable[..., ConversationEngine]) -> Make:
    return lambda: make_engine(call_id="consent")


def test_the_set_is_big_and_balanced() -> None:
    counts = Counter(label for _, label in load_consent_set())
    assert counts["yes"] >= 100 and counts["no"] >= 60 and counts["unclear"] >= 140
    answers = [a.lower() for a, _ in load_consent_set()]
    assert len(answers) == len(set(answers)), "duplicate answers"


def test_no_write_without_a_plain_yes_at_the_unlock(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    table, detail = run_set(make, load_consent_set(), at_unlock_confirmation, "unlock_account")
    with capsys.disabled():
        print("\n" + format_table("account_unlock confirmation", table))
    wrote = [(a, lab) for a, lab, got, _ in detail if got == "write" and lab != "yes"]
    assert wrote == [], wrote
    yeses = [got for _, lab, got, _ in detail if lab == "yes"]
    missed = [a for a, lab, got, _ in detail if lab == "yes" and got != "write"]
    assert yeses.count("write") >= 0.98 * len(yeses), missed
    negatives = [got for _, lab, got, _ in detail if lab == "no"]
    assert negatives.count("cancel") >= 0.9 * len(negatives)


def test_no_write_without_a_plain_yes_at_the_reschedule(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    table, detail = run_set(make, reschedule_sample(load_consent_set()), at_reschedule_confirmation,
                            "reschedule_appointment")
    with capsys.disabled():
        print("\n" + format_table("appointment_reschedule confirmation (sample)", table))
    assert [(a, lab) for a, lab, got, _ in detail if got == "write" and lab != "yes"] == []
    yeses = [got for _, lab, got, _ in detail if lab == "yes"]
    assert yeses.count("write") >= 0.98 * len(yeses)


def test_an_unclear_answer_is_asked_again_once_with_the_facts_then_handed_off(make: Make) -> None:
    engine, _ = at_unlock_confirmation(make)
    out = engine.handle(Utterance("I'm not sure"))
    again = reply(out)
    assert again == ("Just to be sure, for customer C-1002: shall I unlock your online account now? "
                     "Please answer yes or no.")
    out = engine.handle(Utterance("maybe"))
    transfer = next(a for a in out if isinstance(a, Transfer))
    assert transfer.reason == "confirmation_unclear" and "hedge" in transfer.context["reason"]
    assert not any(isinstance(a, CallTool) for a in out)


def test_a_yes_after_the_second_asking_runs_the_write(make: Make) -> None:
    engine, _ = at_unlock_confirmation(make)
    engine.handle(Utterance("is that right?"))
    out = engine.handle(Utterance("yes, go ahead"))
    assert [a.name for a in out if isinstance(a, CallTool)] == ["unlock_account"]


@pytest.mark.parametrize("answer", [a for a, label in load_consent_set() if label == "unclear"][::5])
def test_two_unclear_answers_never_write(make: Make, answer: str) -> None:
    engine, _ = at_unlock_confirmation(make)
    first = engine.handle(Utterance(answer))
    second = engine.handle(Utterance(answer)) if not engine.ended else []
    assert not any(isinstance(a, CallTool) and a.name == "unlock_account" for a in (*first, *second))


def test_the_reschedule_is_asked_again_with_its_facts(make: Make) -> None:
    engine, _ = at_reschedule_confirmation(make)
    out = engine.handle(Utterance("hold on"))
    assert reply(out) == ("Just to be sure: I'll move your Boiler service from Saturday, March 7th at 10:30 AM to "
                          "Tuesday, March 10th at 3 PM. Shall I go ahead? Please answer yes or no.")


def test_a_yes_over_the_question_is_not_consent(make: Make) -> None:
    engine, _ = at_unlock_confirmation(make)
    engine.handle(BargeIn("Thanks, you're"))
    out = engine.handle(Utterance("yes"))
    assert not any(isinstance(a, CallTool) for a in out) and engine.state.phase == "confirm"
    assert engine.attempts == 0  # asked again, not counted as an unclear answer
    out = engine.handle(Utterance("yes"))
    assert [a.name for a in out if isinstance(a, CallTool)] == ["unlock_account"]


def test_keypad_one_is_a_yes_and_other_keys_are_unclear(make: Make) -> None:
    engine, _ = at_unlock_confirmation(make)
    out = engine.handle(Dtmf("5"))
    assert reply(out).startswith("Just to be sure") and not any(isinstance(a, CallTool) for a in out)
    out = engine.handle(Dtmf("1"))
    assert [a.name for a in out if isinstance(a, CallTool)] == ["unlock_account"]


_WORDS = ("yes", "no", "not", "sure", "maybe", "right", "is", "that", "go", "ahead", "please", "wait", "if",
          "fine", "whatever", "great", "robot", "don't", "do", "it", "why", "what", "confirm", "ok", "?", "...")


_STARTS: list[ConversationEngine] = []


@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_only_a_clear_yes_ever_writes(make: Make, words: list[str]) -> None:
    if not _STARTS:
        _STARTS.append(at_unlock_confirmation(make)[0])
    engine = _fork(_STARTS[0])
    question = engine.question.text
    text = " ".join(words)
    out = engine.handle(Utterance(text))
    if any(isinstance(a, CallTool) and a.name == "unlock_account" for a in out):
        assert read_yes_no(text, question).yes, text


PROBE_REPLIES = {
    # answer: (outcome, the start of the engine's reply)
    "I am not sure": ("re-ask", "Just to be sure, for customer C-1002"),
    "that's not right": ("cancel", "Okay, I've left your account as it is."),
    "is that right?": ("re-ask", "Just to be sure, for customer C-1002"),
    "I can't confirm that": ("re-ask", "Just to be sure, for customer C-1002"),
    "confirm what exactly?": ("re-ask", "Just to be sure, for customer C-1002"),
    "fine whatever": ("re-ask", "Just to be sure, for customer C-1002"),
    "why not ask my wife first": ("re-ask", "Just to be sure, for customer C-1002"),
    "yeah no": ("cancel", "Okay, I've left your account as it is."),
    "great, another robot": ("re-ask", "Just to be sure, for customer C-1002"),
    "sure... not": ("re-ask", "Just to be sure, for customer C-1002"),
    "only if it doesn't cost anything": ("re-ask", "Just to be sure, for customer C-1002"),
}


@pytest.mark.parametrize("answer", PROBES)
def test_the_probes_of_the_bug_report(make: Make, answer: str) -> None:
    engine, _ = at_unlock_confirmation(make)
    out = engine.handle(Utterance(answer))
    want_outcome, want_reply = PROBE_REPLIES[answer]
    assert outcome(engine, out, "unlock_account") == want_outcome
    assert reply(out).startswith(want_reply), reply(out)


def main() -> None:  # pragma: no cover - a report for people
    from ari_agent.conversation.intent_map import load_intent_map
    from ari_agent.conversation.nlu import build_classifier

    intent_map: IntentMap = load_intent_map()
    classifier: IntentClassifier = build_classifier(intent_map.nlu_intents(), embeddings=False)

    def make_one() -> ConversationEngine:
        return ConversationEngine(intent_map, classifier, call_id="consent", today=TODAY)

    rows = load_consent_set()
    table, detail = run_set(make_one, rows, at_unlock_confirmation, "unlock_account")
    print(format_table(f"account_unlock confirmation ({len(rows)} answers)", table))
    sample = reschedule_sample(rows)
    table2, _ = run_set(make_one, sample, at_reschedule_confirmation, "reschedule_appointment")
    print()
    print(format_table(f"appointment_reschedule confirmation (sample of {len(sample)})", table2))
    print("\nprobes at 'Shall I unlock your online account now?':")
    for answer in PROBES:
        engine, _ = at_unlock_confirmation(make_one)
        out = engine.handle(Utterance(answer))
        print(f"  {answer!r:38} -> {outcome(engine, out, 'unlock_account'):7} {reply(out)}")
    misses = [(a, lab, got) for a, lab, got, _ in detail if (lab == "yes") != (got == "write")]
    if misses:
        print("\nyes not written / non-yes written:")
        for a, lab, got in misses:
            print(f"  {lab:8} {got:8} {a}")


if __name__ == "__main__":  # pragma: no cover
    main()


def test_the_words_an_answer_cannot_place_and_its_first_answer() -> None:
    assert unaccounted_words("She would go ahead.") == ["she"]
    assert unaccounted_words("um, yes please, thank you") == []
    assert unaccounted_words("yes, but only if my wife agrees") == ["but", "only", "if", "wife", "agrees"]
    assert first_answer("No, it is.") == "no" and first_answer("yeah, that's not right") == "yes"
    assert first_answer("I'm not sure") is None and first_answer("") is None
