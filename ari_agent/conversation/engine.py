"""The dialogue manager: events in, actions out (see ``seam.py``), no I/O.

One ``ConversationEngine`` per call. The path of a call::

    CallStarted -> greeting -> request -> intent
        -> (verify identity: collect identity slots, CallTool(verify))     when the intent needs it
        -> fill the intent's slots (re-prompt up to the limit)
        -> for each step: (confirm: yes/no question, when the tool writes) -> CallTool -> ToolResult
        -> answer from the template -> (follow_up: CallTool of a queued write, e.g. a confirmation message,
           covered by the yes to the intent's write; its ``say`` only once the write is durably accepted)
        -> "anything else?" -> goodbye (Hangup) or the next request
    and at any moment: a Transfer to a person, with the intent, a summary, the verified identity
    and the reason in ``Transfer.context``.

Consent: a tool that writes runs only on a clear yes to the confirmation question as it was asked
(``slots.yes_no.read_yes_no``: a hedge, a question, a condition, a pause or sarcasm is *unclear*, not
a yes). An unclear answer is asked once more with the facts ("Just to be sure, for customer C-1002:
shall I unlock ...? Please answer yes or no."), a second one hands off (``confirmation_unclear``); a
no cancels; a changed detail ("actually, make it Wednesday") asks again with the new detail.

Corrections and compound answers: one answer may fill a date and a time together; a correction
("sorry, it's 4568", "no wait, it's 1002") replaces the earlier answer it fits (or names) at any
question, and at "anything else?" runs the request just served again; a second request in the same
turn ("..., and also where's order 4567") is served after the first, with the slots it gave.

At any point the caller may ask for a person, ask to hear the prompt again, say goodbye, start
over or go back to the previous question (``commands.py``). Silence re-prompts, then hands off; a
request the agent does not understand is clarified once, then handed off; a tool that fails hands off.

Barge-in: ``BargeIn(heard_text)`` says how much of the last prompt the caller heard before speaking
over it. The engine keeps the question the prompt ends with (``Question.text``); the question
counts as heard when the caller heard all of it but at most its last ``max(2, 25 %)`` words. If it
was not heard, the next utterance is *not* taken as an answer to it: commands and new requests are
still honoured, anything else gets the question asked again (without counting as a failed try).
So a "yes" said over "I'll move your appointment to Tuesday..." never confirms a change the caller
did not hear. ``handle(BargeIn)`` returns a ``Listen`` whose expectation says which reading applies.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

from ari_agent.conversation.commands import (
    CLOSING_PHRASES,
    Command,
    contains_phrase,
    detect_command,
    is_closing,
    is_correction,
    slot_named,
)
from ari_agent.conversation.escalation import divert_if_closed, menu_choice, menu_phrases, open_at, resolve
from ari_agent.conversation.frustration import FrustrationTracker
from ari_agent.conversation.intent_map import (
    OFFER_DESTINATIONS,
    VERIFICATION_RANK,
    Condition,
    IntentDefinition,
    IntentMap,
    SlotSpec,
    StepSpec,
)
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.policy import Policy
from ari_agent.conversation.routing import IntentRouter, Route
from ari_agent.conversation.slots import SlotValue, extract_slots, parse_slot, parse_slot_dtmf
from ari_agent.conversation.slots.dates import spoken_date
from ari_agent.conversation.slots.digits import spoken_digits
from ari_agent.conversation.slots.times import spoken_time
from ari_agent.conversation.slots.words import tokens
from ari_agent.conversation.slots.yes_no import parse_yes_no, read_yes_no
from ari_agent.conversation.templates import TemplateError, render
from ari_agent.conversation.throttle import CallGuard, Throttle
from ari_agent.integrations.idempotency import idempotency_key as integrations_idempotency_key
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Dtmf,
    Event,
    Expectation,
    Hangup,
    Listen,
    RecordQuery,
    Say,
    Timeout,
    ToolResult,
    Transfer,
    Utterance,
)

IdempotencyKeyFn = Callable[[str, str, Mapping[str, Any]], str]
QuestionKind = Literal["open", "anything_else", "slot", "identity", "confirm", "read_back", "closed_menu", "none"]
# Answers read back when the recogniser was unsure of them: a digit or letter misheard is a wrong order or
# account, where a misheard word in a request only costs a clarification.
_READ_BACK_TYPES = frozenset({"digits", "letters"})
_UNSURE_READ_BACK_TYPES = frozenset({"digits", "number", "letters", "date", "time"})
# Errors of a verification tool that mean "no such person / details wrong", not "system down".
_VERIFY_SOFT_ERRORS = frozenset({"not_found", "rejected"})
# How sure the classifier must be before an answer to a question is taken as a new request instead.
DIGRESSION_CONFIDENCE = 0.9
# Slot types one answer may give together ("next Tuesday at half three": a date and a time).
_TOGETHER = ("date", "time")
# A value the caller rules out is not a new value: "no, not Tuesday, Wednesday", "not today".
_NEGATED = re.compile(r"\bnot\s+(?:on\s+|at\s+|the\s+|for\s+)?[\w':]+", re.I)
# Words of a "no, that's all" (what is left after them may be a new request).
_CLOSING_WORDS = frozenset({*(w for p in CLOSING_PHRASES for w in tokens(p)), "but", "actually", "wait", "so",
                            "well", "oh", "um", "uh", "yes", "yeah", "and"})
# Where a second request starts in an answer: "yes please, and also what are your hours".
# "...instead", "forget that": the caller replaces the request in hand rather than asking something on the side.
_REPLACES = re.compile(r"\b(?:instead|rather|forget (?:it|that|about)|never ?mind|scrap that|cancel (?:that|it)|"
                       r"don'?t bother)\b", re.I)
# Spoken digits (and "oh" for zero): in an answer they are a value, never words of a request.
_VALUE_WORDS = frozenset("zero oh one two three four five six seven eight nine".split())


def request_words(text: str) -> set[str]:
    """The distinct words of ``text`` that could make a request: not numerals ("80", "h11"), not spoken
    digits, not letters spelled one by one (a single letter other than "a" and "I")."""
    return {w for w in tokens(text) if not any(c.isdigit() for c in w) and w not in _VALUE_WORDS
            and (len(w) > 1 or w in ("a", "i"))}


# The caller asks on someone else's behalf: their identity and consent cannot be checked on this call.
_THIRD_PARTY = re.compile(
    r"\b(?:for|on behalf of)\s+(?:my|a|our)\s+(?:friend|husband|wife|partner|mum|mom|mother|dad|father|son|"
    r"daughter|brother|sister|neighbou?r|colleague|boss|client|relative|gran|grandma|grandpa|grandmother|"
    r"grandfather|aunt|uncle|cousin|flatmate|roommate|boyfriend|girlfriend)\b"
    r"|\b(?:my\s+(?:friend|husband|wife|partner|mum|mom|mother|dad|father|son|daughter|brother|sister)(?:'s)?)"
    r"\s+(?:is|has|account|order|appointment|can'?t|cannot|needs?|wants?)\b"
    r"|\bsomeone else'?s\b|\bon (?:his|her|their) behalf\b|\b(?:his|her|their) account\b", re.I)
_SECOND_REQUEST = re.compile(r"[,.;]?\s+(?:and also|and then|and another thing|also|and|plus|oh and)\s+", re.I)


@dataclass
class Question:
    """The question the last prompt ended with: what an answer is taken as."""

    kind: QuestionKind
    text: str
    expect: Expectation
    slot: SlotSpec | None = None
    timeout_s: float = 6.0


@dataclass
class Task:
    """One request being served."""

    intent: IntentDefinition
    slots: dict[str, SlotValue] = field(default_factory=dict)
    step: int = 0
    confirmed_step: int | None = None
    results: dict[str, Any] = field(default_factory=dict)
    submitted: bool = False
    recovered: set[int] = field(default_factory=set)
    filled: list[str] = field(default_factory=list)  # slots the caller answered, in order ("go back")


@dataclass
class PendingCall:
    call_id: str
    tool: str
    purpose: Literal["verify", "step", "follow_up"]
    level: str = "none"
    task: Task | None = None  # the completed request a follow-up belongs to


@dataclass(frozen=True)
class EngineState:
    """A read-only view of where the conversation is (for transcripts, logs and tests)."""

    phase: str
    intent: str | None
    slots: dict[str, str]
    verified: str
    turns: int
    ended: bool


class ConversationEngine:
    """The per-call dialogue manager. ``handle(event)`` returns the actions to carry out, in order."""

    def __init__(
        self,
        intent_map: IntentMap,
        classifier: IntentClassifier,
        *,
        call_id: str,
        kill_switch: bool = False,
        today: date | None = None,
        now: datetime | None = None,
        idempotency_key: IdempotencyKeyFn | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.map = intent_map
        self.spec = intent_map.spec
        self.router = IntentRouter(intent_map, classifier)
        self.policy = Policy(intent_map, kill_switch=kill_switch)
        self.call_id = call_id
        self.now = now
        self.today = today or (now.date() if now is not None else date.today())
        self.key_fn: IdempotencyKeyFn = idempotency_key or integrations_idempotency_key
        # Limits across calls (conversation/throttle.py): brute force, enumeration, call floods. None: off.
        self.guard: CallGuard | None = throttle.guard(call_id) if throttle is not None else None
        self.caller_id = ""
        self.task: Task | None = None
        self.last_intent: IntentDefinition | None = None
        self.pending_intents: list[str] = []
        self.pending_text = ""  # the request the pending intents were heard in (their slots come from it)
        self.last_task: Task | None = None  # the request last completed (a correction may reopen it)
        # Requests put aside when the caller asked something on the side mid-way ("what are your hours?" at
        # the date question): resumed, slots kept, once the side request is done.
        self.suspended: list[Task] = []
        self.identity_filled: list[str] = []
        self.verified = "none"
        self.identity: dict[str, SlotValue] = {}
        self.identity_data: dict[str, Any] = {}
        self.verify_attempts = 0
        self.pending: PendingCall | None = None
        self.read_back: tuple[Question, SlotValue] | None = None  # an unsure answer, waiting for "is that right?"
        self.offered_handoff = False  # the last answer offered a colleague
        self.person_after = False  # the caller asked for a person once the request in hand is done
        self.question = Question("none", "", Expectation())
        self.prompt: list[str] = []  # what was said since the caller last spoke
        self.question_unheard = False
        self.attempts = 0  # failed answers to the current question
        # per answer to the current identity question: its audio was checked against the code on the caller's
        # record and does not say it (Utterance.off_record)
        self.off_record: list[bool] = []
        self.silences = 0
        self.no_matches = 0
        self.frustration = FrustrationTracker(intent_map.spec.frustration)
        # A closed queue's menu (escalation.py): why the call was being handed off, and the options offered.
        self.closed_menu: tuple[Condition, str, tuple[str, ...]] | None = None
        self.turns = 0
        self.tool_seq = 0
        self.notes: list[str] = []
        self.ended = False
        self.started = False
        self._open = intent_map.open_expectation()
        self._anything_else = intent_map.open_expectation(also=("no thanks", "that's all", "yes"))

    # ------------------------------------------------------------------ public API

    @property
    def kill_switch(self) -> bool:
        return self.policy.kill_switch

    @kill_switch.setter
    def kill_switch(self, on: bool) -> None:
        self.policy.kill_switch = on

    @property
    def state(self) -> EngineState:
        intent = self.task.intent.name if self.task else None
        slots = {k: v.value for k, v in self.task.slots.items()} if self.task else {}
        phase = "ended" if self.ended else ("tool" if self.pending else self.question.kind)
        return EngineState(phase, intent, slots, self.verified, self.turns, self.ended)

    @property
    def latency_budget_ms(self) -> int:
        """First-response budget of the request being served (for the orchestrator's acknowledgements)."""
        intent = self.task.intent if self.task else None
        return intent.latency_budget.first_response_ms if intent else 1200

    def handle(self, event: Event) -> list[Action]:
        if self.ended:
            return []
        if self.policy.kill_switch:
            if isinstance(event, CallStarted):
                self.caller_id = event.caller_id
            return self._finish(self._transfer("kill_switch", say=self.spec.prompts.kill_switch))
        if isinstance(event, CallStarted):
            return self._finish(self._on_start(event) if not self.started else [])
        if not self.started:  # no CallStarted: start silently; a caller who speaks is answered
            greeting = self._on_start(CallStarted())
            if not isinstance(event, (Utterance, Dtmf)):
                return self._finish(greeting)
        if isinstance(event, Utterance):
            out = self._on_utterance(event)
        elif isinstance(event, Dtmf):
            out = self._on_dtmf(event)
        elif isinstance(event, ToolResult):
            out = self._on_tool_result(event)
        elif isinstance(event, Timeout):
            out = self._on_timeout(event)
        elif isinstance(event, BargeIn):
            out = self._on_barge_in(event)
        else:  # pragma: no cover - the Event union is closed
            out = []
        return self._finish(out)

    # ------------------------------------------------------------------ events

    def _on_start(self, event: CallStarted) -> list[Action]:
        self.started = True
        self.caller_id = event.caller_id
        trip = self.guard.call_started(self.caller_id) if self.guard is not None else None
        if trip is not None:
            return self._transfer(trip.condition, detail=trip.detail)
        greeting = self._render_global(self.spec.greeting)
        return self._ask(Question("open", greeting, self._open_expectation(),
                                  timeout_s=self.spec.limits.silence_timeout_s), [])

    def _on_utterance(self, event: Utterance) -> list[Action]:
        if not event.is_final:
            return []
        self.turns += 1
        self.silences = 0
        unheard, self.question_unheard = self.question_unheard, False
        if self.question.kind == "identity":  # (a read-back's yes or no is no answer to the code question)
            self.off_record.append(event.off_record)
        if self.turns > self.spec.limits.max_turns:
            return self._transfer("max_turns")
        text = event.text.strip()
        if self.question.kind == "closed_menu":
            heard = text if event.confidence >= self.spec.limits.min_confidence else ""
            return self._on_closed_menu(heard)
        if not text or event.confidence < self.spec.limits.min_confidence:
            return self._not_understood()
        excluded = self._exclusion(text)
        if excluded:
            return self._transfer("exclusion", detail=f"caller said '{excluded}'")
        fed_up = self.frustration.heard(text, raised_db=event.raised_db)  # conversation/frustration.py
        if fed_up:
            return self._transfer("frustration", detail=fed_up)
        command = detect_command(text)
        if self.pending is not None:  # a tool is running; the orchestrator plays its acknowledgement
            return self._on_command(command) if command in (Command.HUMAN, Command.GOODBYE) else []
        yes_part = self._yes_then_person(text) if command is Command.HUMAN and self.question.kind == "confirm" \
            else None
        if yes_part is not None:  # "yes please, and can I talk to a person after": the write first, then the person
            command, text = None, yes_part
            self.person_after = True
        if command is not None and not (command is Command.GOODBYE and self.question.kind == "slot"
                                        and self.question.slot is not None
                                        and self.question.slot.type == "free_text"):
            return self._on_command(command)
        kind = self.question.kind
        if unheard and kind not in ("open",):
            route = self.router.route(text)
            current = self.task.intent.name if self.task else None
            if route.intent is not None and route.intent != current:
                return self._start_intent(route, text, [])
            if kind == "anything_else" and parse_yes_no(text) is None and not is_closing(text):
                return self._no_match(text)
            self.notes.append("caller spoke over the question; asked again")
            return self._ask(self.question, [])
        if kind in ("slot", "identity", "confirm", "anything_else") and is_correction(text):
            corrected = self._on_correction(text)
            if corrected is not None:
                return corrected
        if kind in ("open", "anything_else", "none"):
            return self._on_request(text)
        if kind in ("slot", "identity"):
            return self._on_slot_answer(text, event.confidence, unsure=event.unsure)
        if kind == "confirm":
            return self._on_confirm_answer(text)
        if kind == "read_back":
            return self._on_read_back_answer(text, event.confidence, unsure=event.unsure)
        return []

    def _on_dtmf(self, event: Dtmf) -> list[Action]:
        self.turns += 1
        self.silences = 0
        self.question_unheard = False
        if self.pending is not None:
            return []
        q = self.question
        if q.kind in ("slot", "identity") and q.slot is not None:
            value = parse_slot_dtmf(q.slot, event.digits)
            if value is None:
                return self._retry("slot_unfilled")
            return self._store(q, value)
        if q.kind == "confirm":
            key = event.digits[:1]
            if key in ("1", "2"):
                return self._on_confirm_answer("yes" if key == "1" else "no")
            return self._retry("confirmation_unclear")
        if q.kind == "read_back" and self.read_back is not None:
            asked, _heard = self.read_back
            keyed = parse_slot_dtmf(asked.slot, event.digits) if asked.slot is not None else None
            if keyed is not None:  # the number itself, keyed in: exact, nothing to read back
                self.read_back = None
                return self._store(asked, keyed)
            if event.digits[:1] in ("1", "2"):
                return self._on_read_back_answer("yes" if event.digits[:1] == "1" else "no", 1.0)
            return self._not_understood()
        if q.kind == "closed_menu" and self.closed_menu is not None:
            options = self.closed_menu[2]
            key = event.digits[:1]
            if key.isdigit() and 1 <= int(key) <= len(options):
                return self._closed_menu_transfer(options[int(key) - 1], "pressed " + key)
            if key == "0":  # a person: the queue offered, if there is one
                return self._closed_menu_transfer(self._menu_person(options), "pressed 0")
            return self._on_closed_menu("")
        if event.digits.startswith("0"):
            return self._transfer("caller_request", detail="pressed 0")
        return self._not_understood()

    def _on_tool_result(self, event: ToolResult) -> list[Action]:
        pending = self.pending
        if pending is None or event.call_id != pending.call_id:
            return []  # stale or foreign result
        self.pending = None
        if pending.purpose == "verify":
            return self._on_verify_result(pending, event)
        if pending.purpose == "follow_up":
            # a job an operator cancelled is answered ok by the queue, but it will not be sent
            cancelled = event.data.get("state") == "cancelled"
            return self._on_follow_up_result(pending, event.ok and not cancelled,
                                             "cancelled" if cancelled else event.error or "error", event.submitted)
        task = self.task
        assert task is not None
        step = task.intent.steps[task.step]
        trip = self.guard.lookup_result(self.caller_id, found=event.ok) \
            if self.guard is not None and (event.ok or event.error == "not_found") else None
        if trip is not None:  # before the answer: a locked-out caller hears nothing of the record
            return self._transfer(trip.condition, detail=trip.detail)
        if not event.ok:
            self.notes.append(f"{pending.tool} failed: {event.error or 'error'}")
            return self._on_step_error(task, step, event.error or "error")
        self.notes.append(f"{pending.tool} ok" + (" (queued)" if event.submitted else ""))
        task.results.update(event.data)
        task.submitted = task.submitted or event.submitted
        task.step += 1
        return self._advance([])

    def _on_timeout(self, event: Timeout) -> list[Action]:
        if event.kind == "max_call":
            return self._transfer("max_duration")
        if event.kind == "tool":
            if self.pending is None:
                return []
            pending, self.pending = self.pending, None
            if pending.purpose == "follow_up":  # the request is done: a late confirmation message ends no call
                return self._on_follow_up_result(pending, False, "timeout", False)
            self.notes.append(f"{pending.tool} timed out")
            return self._transfer("tool_error", detail=f"{pending.tool}: timeout")
        if self.pending is not None:
            return []  # waiting on a tool, not on the caller
        self.silences += 1
        self.question_unheard = False
        if self.question.kind == "closed_menu" and self.closed_menu is not None \
                and self.silences > self.spec.limits.silence:
            return self._closed_menu_transfer(self.closed_menu[2][0], "no answer: the first option")
        if self.silences > self.spec.limits.silence:
            return self._transfer("silence")
        return self._ask(self.question, [self.spec.prompts.silence], count=False)

    def _on_barge_in(self, event: BargeIn) -> list[Action]:
        if self.pending is not None or self.question.kind == "none":
            return []
        heard = self._question_heard(event.heard_text)
        self.question_unheard = not heard
        self.notes.append("caller barged in" + ("" if heard else " before the question"))
        expect = self.question.expect if heard else self._open_expectation()
        return [Listen(expect=expect, timeout_s=self.question.timeout_s)]

    # ------------------------------------------------------------------ commands and requests

    def _on_command(self, command: Command) -> list[Action]:
        if command is Command.HUMAN:
            return self._transfer("caller_request")
        if command is Command.REPEAT:
            said = self.prompt or [self.question.text]
            return [*(Say(s) for s in said), Listen(self.question.expect, self.question.timeout_s)]
        if command is Command.GOODBYE:
            return self._goodbye("caller_goodbye")
        if command is Command.GO_BACK:
            return self._go_back()
        # start over: drop the request in hand (nothing was written unless a tool said so)
        if self.task is not None:
            self.notes.append(f"caller started over ({self.task.intent.name} dropped)")
        self.task = None
        self.last_task = None
        self.pending_intents = []
        self.suspended = []
        self.read_back = None
        self.person_after = False
        return self._ask(Question("open", self.spec.prompts.start_over, self._open_expectation(),
                                  timeout_s=self.spec.limits.silence_timeout_s), [])

    def _on_request(self, text: str) -> list[Action]:
        if self.question.kind == "anything_else":
            reading = read_yes_no(text, self.question.text)
            # no write hangs on this answer: "yes, I have another question" is a yes here
            answer = True if reading.yes or reading.heard_yes else False if reading.no else None
            # "no, but where's order 4567": a new request after the no, not a goodbye
            rest = [w for w in tokens(text) if w not in _CLOSING_WORDS]
            if len(rest) >= 3 and is_closing(text):
                after = self.router.route(" ".join(rest))
                if after.intent is not None and (after.by == "pattern" or after.confidence >= DIGRESSION_CONFIDENCE):
                    return self._start_intent(after, text, [])
            if is_closing(text) or (answer is False and len(tokens(text)) <= 4):
                return self._goodbye("completed")
            route = self.router.route(text)  # classified only when it is not a goodbye (5-20 ms)
            if route.intent is not None:
                return self._start_intent(route, text, [])
            if answer is True and self.offered_handoff:  # "a colleague can look into it" - "yes please"
                return self._transfer("caller_request", detail="accepted the offer of a colleague")
            if answer is True:
                return self._ask(Question("open", self.spec.prompts.what_else, self._open_expectation(),
                                          timeout_s=self.spec.limits.silence_timeout_s), [])
            return self._no_match(text)
        route = self.router.route(text)
        if route.intent is None:
            return self._no_match(text)
        return self._start_intent(route, text, [])

    def _no_match(self, text: str) -> list[Action]:
        self.no_matches += 1
        self.notes.append(f"not understood: '{text[:60]}'")
        if self.no_matches > self.spec.limits.no_match:
            return self._transfer("no_match", detail=f"last request: '{text[:80]}'")
        return self._ask(Question("open", self._render_global(self.spec.prompts.clarify),
                                  self._open_expectation(), timeout_s=self.spec.limits.silence_timeout_s), [])

    def _start_intent(self, route: Route, text: str, said: list[str]) -> list[Action]:
        assert route.intent is not None
        intent = self.map.intent(route.intent)
        assert intent is not None
        if self.task is not None and self.task.intent.name != intent.name:
            self.notes.append(f"caller switched from {self.task.intent.name} to {intent.name}")
        self.notes.append(f"request: {intent.name}" + (f" (via {route.by})" if route.by != "classifier" else ""))
        self.task = Task(intent)
        self.last_intent = intent
        self.no_matches = 0
        self.offered_handoff = False
        self.pending_intents = [n for n in route.also_mentioned if n != intent.name]
        if self.pending_intents and text:
            self.pending_text = text
        if self.policy.must_hand_off(intent):
            condition: Condition = "restricted" if intent.restricted else "caller_request"
            return self._transfer(condition, say=intent.responses.handoff)
        if intent.verification != "none" and _THIRD_PARTY.search(text):
            self.notes.append(f"{intent.name} asked on someone else's behalf")
            return self._transfer("third_party", say=self.spec.prompts.third_party)
        excluded = self._intent_exclusion(intent)
        if excluded is not None:
            return self._transfer(excluded[0], detail=excluded[1])
        for name, value in extract_slots(intent.slots, text, today=self.today, date_order=self.spec.date_order).items():
            self.task.slots[name] = value
            self.task.filled.append(name)
            self.notes.append(f"{name}={value.value}")
        if intent.responses.intro:
            intro = self._render(intent.responses.intro, self.task, speech=True)
            if intro is not None:
                said = [*said, intro]
        return self._advance(said)

    # ------------------------------------------------------------------ the task's progress

    def _advance(self, said: list[str]) -> list[Action]:
        """Take the request in hand as far as it goes without the caller: the next question, tool
        call, answer or handoff."""
        task = self.task
        if task is None:
            return self._ask(Question("open", self.spec.prompts.what_else, self._open_expectation(),
                                      timeout_s=self.spec.limits.silence_timeout_s), said)
        intent = task.intent
        needed = intent.verification
        if VERIFICATION_RANK[self.verified] < VERIFICATION_RANK[needed]:
            return self._verify(needed, said)
        for slot in intent.slots:
            if slot.name not in task.slots:
                return self._ask_slot("slot", slot, task, said)
        if task.step < len(intent.steps):
            step = intent.steps[task.step]
            info = self.map.tools[step.tool]
            if info.write and task.confirmed_step != task.step:
                assert step.confirm is not None
                question = self._render(step.confirm, task, speech=True)
                if question is None:
                    return self._transfer("output_contract", detail=f"cannot word the confirmation of {step.tool}")
                expect = Expectation(kind="yes_no", dtmf=True)
                return self._ask(Question("confirm", question, expect, timeout_s=self.spec.limits.silence_timeout_s),
                                 said)
            return [*(Say(s) for s in said), *self._call_step(task, step)]
        missing = [f for f in intent.output_contract.requires if f not in task.results]
        if missing:
            return self._transfer("output_contract", detail=f"missing {', '.join(missing)}")
        answer = self._answer(task)
        if answer is None:
            return self._transfer("output_contract", detail="answer could not be worded")
        self.notes.append(f"completed {intent.name}")
        said = [*said, answer]
        follow_up = self._follow_up(task)
        if follow_up is not None:  # the request stays in hand until its follow-up is answered
            return [*(Say(s) for s in said), follow_up]
        self.last_task = task
        self.task = None
        return self._next_pending(said)

    def _follow_up(self, task: Task) -> CallTool | None:
        """The intent's follow-up write (a confirmation message), or None when it has none or it cannot be
        sent (it is never a reason to hand off: the request itself is done)."""
        spec = task.intent.follow_up
        if spec is None:
            return None
        args: dict[str, Any] = {}
        for key, value in spec.args.items():
            rendered = self._render(value, task, speech=False) if isinstance(value, str) else value
            if rendered is None:
                self.notes.append(f"follow-up {spec.tool} not sent: no value for {key}")
                return None
            args[key] = rendered
        # the caller's yes to this request's write is the consent the follow-up rides on
        violation = self.policy.check_tool_call(task.intent, spec.tool, verified=self.verified,
                                                confirmed=task.confirmed_step is not None)
        if violation is not None:
            self.notes.append(f"policy stopped follow-up {spec.tool}: {violation.detail}")
            return None
        call = self._tool_call(spec.tool, args, task.intent, budget_ms=task.intent.latency_budget.tool_call_ms)
        self.pending = PendingCall(call.call_id, spec.tool, "follow_up", task=task)
        self.question = Question("none", "", Expectation())
        return call

    def _on_follow_up_result(self, pending: PendingCall, ok: bool, error: str, submitted: bool) -> list[Action]:
        task = pending.task
        assert task is not None and task.intent.follow_up is not None
        spec = task.intent.follow_up
        self.last_task = task
        self.task = None
        if ok:  # queued, spooled or performed: durably accepted, so the caller may be told
            self.notes.append(f"{pending.tool} ok" + (" (queued)" if submitted else ""))
            text = self._render(spec.say, task, speech=True)
        else:
            self.notes.append(f"follow-up {pending.tool} failed: {error}")
            text = self._render(spec.failed, task, speech=True) if spec.failed else None
        return self._next_pending([text] if text else [])

    def _next_pending(self, said: list[str]) -> list[Action]:
        """Go back to a request put aside for a side question, else serve the next request the caller
        made in the same breath, else ask "anything else?"."""
        if self.task is None and self.person_after:
            self.person_after = False
            return [*(Say(s) for s in said), *self._transfer("caller_request", detail="asked for a person after")]
        if self.task is None and self.suspended:
            task = self.suspended.pop()
            self.task = task
            self.last_intent = task.intent
            self.notes.append(f"back to {task.intent.name}")
            return self._advance([*said, self.spec.prompts.resume])
        while self.pending_intents:
            nxt = self.pending_intents.pop(0)
            if self.map.intent(nxt) is not None:
                later = self.pending_intents
                out = self._start_intent(Route(nxt, 1.0, by="also mentioned"), self.pending_text, said)
                self.pending_intents = later
                return out
        return self._ask(Question("anything_else", self.spec.prompts.anything_else, self._anything_else_expectation(),
                                  timeout_s=self.spec.limits.silence_timeout_s), said)

    def _verify(self, level: str, said: list[str]) -> list[Action]:
        verification = self.spec.verification
        assert verification is not None
        lvl = verification.basic if level == "basic" else verification.strong
        for slot in lvl.slots:
            if slot.name not in self.identity:
                if not any(s.name in self.identity for s in lvl.slots) and self.verify_attempts == 0:
                    said = [*said, lvl.intro]
                return self._ask_slot("identity", slot, self.task, said)
        assert self.task is not None
        args: dict[str, Any] = {s.name: self.identity[s.name].value for s in lvl.slots}
        if lvl.args:
            values = self._values(None, speech=False)
            try:
                args = {k: render(v, values) for k, v in lvl.args.items()}
            except TemplateError as exc:
                return self._transfer("policy", detail=f"verification arguments: {exc}")
        violation = self.policy.check_tool_call(self.task.intent, verification.tool, verified=self.verified,
                                                confirmed=False)
        if violation is not None:
            return self._transfer("policy", detail=violation.detail)
        trip = self.guard.before_verification(self.caller_id, args) if self.guard is not None else None
        if trip is not None:
            return self._transfer(trip.condition, detail=trip.detail)
        call = self._tool_call(verification.tool, args, self.task.intent)
        self.pending = PendingCall(call.call_id, verification.tool, "verify", level)
        return [*(Say(s) for s in said), call]

    def _on_verify_result(self, pending: PendingCall, event: ToolResult) -> list[Action]:
        verification = self.spec.verification
        assert verification is not None and self.task is not None
        if not event.ok and (event.error or "") not in _VERIFY_SOFT_ERRORS:
            self.notes.append(f"{pending.tool} failed: {event.error}")
            return self._transfer("tool_error", detail=f"{pending.tool}: {event.error}")
        level = str(event.data.get("level", pending.level)) if event.ok else "none"
        achieved = "strong" if level in ("full", "strong") else level if level in VERIFICATION_RANK else "none"
        if event.ok and event.data.get("verified") is True and \
                VERIFICATION_RANK[achieved] >= VERIFICATION_RANK[pending.level]:
            self.verified = achieved
            self.identity_data.update(event.data)
            self.notes.append(f"identity verified ({achieved})")
            return self._advance([])
        self.verify_attempts += 1
        self.notes.append(f"identity not verified (attempt {self.verify_attempts})")
        trip = self.guard.verification_failed(self.caller_id) if self.guard is not None else None
        if trip is not None:
            return self._transfer(trip.condition, detail=trip.detail)
        if self.verify_attempts >= verification.attempts:
            return self._transfer("verification_failed", detail=f"{self.verify_attempts} attempts")
        self.identity.clear()
        self.identity_filled.clear()
        return self._advance([verification.failed])

    def _call_step(self, task: Task, step: StepSpec) -> list[Action]:
        args: dict[str, Any] = {}
        for key, value in step.args.items():
            if isinstance(value, str):
                rendered = self._render(value, task, speech=False)
                if rendered is None:
                    return self._transfer("output_contract", detail=f"{step.tool}: no value for {key}")
                args[key] = rendered
            else:
                args[key] = value
        violation = self.policy.check_tool_call(task.intent, step.tool, verified=self.verified,
                                                confirmed=task.confirmed_step == task.step)
        if violation is not None:
            self.notes.append(f"policy stopped {step.tool}: {violation.detail}")
            return self._transfer("policy", detail=violation.detail)
        call = self._tool_call(step.tool, args, task.intent, budget_ms=task.intent.latency_budget.tool_call_ms)
        self.pending = PendingCall(call.call_id, step.tool, "step")
        self.question = Question("none", "", Expectation())
        return [call]

    def _tool_call(self, tool: str, args: dict[str, Any], intent: IntentDefinition, budget_ms: int = 700) -> CallTool:
        self.tool_seq += 1
        key = self.key_fn(self.call_id, intent.name, {"tool": tool, **args})
        return CallTool(name=tool, args=args, idempotency_key=key, call_id=f"{self.call_id}-t{self.tool_seq}",
                        budget_ms=budget_ms)

    def _on_step_error(self, task: Task, step: StepSpec, error: str) -> list[Action]:
        recover = step.recover.get(error)
        if recover is not None and task.step not in task.recovered:
            task.recovered.add(task.step)
            said = self._render(recover.say, task, speech=True)
            if not recover.ask_again:  # an answer, not a failure: the request ends here
                self.notes.append(f"{task.intent.name} ended: {error}")
                self.last_task = task
                self.task = None
                return self._next_pending([said] if said else [])
            for name in recover.ask_again:
                task.slots.pop(name, None)
            task.confirmed_step = None
            return self._advance([said] if said else [])
        return self._transfer("tool_error", detail=f"{step.tool}: {error}")

    # ------------------------------------------------------------------ slots and answers

    def _ask_slot(self, kind: QuestionKind, slot: SlotSpec, task: Task | None, said: list[str]) -> list[Action]:
        text = self._render(slot.prompt, task, speech=True) if task else slot.prompt
        expect = self.map.slot_expectation(slot)
        if kind == "identity":
            expect = self._with_record_lookup(expect, slot)
        question = Question(kind, text or slot.prompt, expect, slot, timeout_s=self._slot_timeout(slot))
        return self._ask(question, said)

    def _with_record_lookup(self, expect: Expectation, slot: SlotSpec) -> Expectation:
        """An identity code the caller's record holds (verification.record): the turn carries the lookup, and
        the call layer fetches the code while the question plays and checks the caller's audio against it
        (``call/record_lookup.py``). Nothing here when the lookup's arguments are not answered yet or the
        policy does not allow it: the code is then asked for and read as usual (in text there is no audio to
        check, and nothing changes)."""
        verification = self.spec.verification
        record = verification.record if verification is not None else None
        if record is None or slot.name not in record.codes or self.task is None:
            return expect
        try:
            values = self._values(None, speech=False)
            args = {k: render(v, values) for k, v in record.args.items()}
        except TemplateError:
            return expect
        if self.policy.check_tool_call(self.task.intent, record.tool, verified=self.verified,
                                       confirmed=False) is not None:
            return expect
        return dataclasses.replace(expect, record_lookup=RecordQuery(record.tool, tuple(sorted(args.items())),
                                                                     record.codes[slot.name]))

    def _on_slot_answer(self, text: str, confidence: float = 1.0, *, unsure: bool = False) -> list[Action]:
        q = self.question
        assert q.slot is not None
        answer, also = self._split_second_request(text)
        value = parse_slot(q.slot, answer, today=self.today, date_order=self.spec.date_order,
                           postcode=self.spec.locale.postcode)
        if value is not None and also is not None:
            self._queue_request(also, text)
            text = answer
        if value is None:
            route = self.router.route(text)
            if self._is_digression(route, text):
                return self._digress(route, text)
            return self._retry("slot_unfilled")
        if q.kind == "slot" and self.task is not None and q.slot.type in _TOGETHER:
            self._fill_in_passing(self.task, text, skip=q.slot.name)
        if self._unsure_of(q.slot, confidence, unsure):
            return self._ask_read_back(q, value)
        return self._store(q, value)

    def _unsure_of(self, slot: SlotSpec, confidence: float, unsure: bool) -> bool:
        """A value heard unsure is read back first: a number or code below the map's ``read_back_below``,
        and any number, code, date or time the recognisers disagreed on (``Utterance.unsure``)."""
        if unsure and slot.type in _UNSURE_READ_BACK_TYPES:
            return True
        return slot.type in _READ_BACK_TYPES and confidence < self.spec.limits.read_back_below

    def _ask_read_back(self, asked: Question, value: SlotValue) -> list[Action]:
        """ "I have 1 2 3 4. Is that right?": the recogniser was unsure of a number or code."""
        assert asked.slot is not None
        self.read_back = (asked, value)
        self.notes.append(f"read back {asked.slot.name}={value.value} (recognition unsure)")
        question = Question("read_back", f"I have {value.spoken}. Is that right?",
                            Expectation(kind="yes_no", slot=asked.slot.name, dtmf=True), asked.slot,
                            timeout_s=self.spec.limits.silence_timeout_s)
        return self._ask(question, [], count=False)

    def _on_read_back_answer(self, text: str, confidence: float, *, unsure: bool = False) -> list[Action]:
        """Yes: the answer stands. A new value ("no, four five six eight"): that is the answer (read back
        again if it was heard unsure too). No: the question is asked again. Unclear: once more, then as no."""
        assert self.read_back is not None
        asked, heard = self.read_back
        assert asked.slot is not None
        reading = read_yes_no(text, self.question.text)
        if reading.yes:
            self.read_back = None
            return self._store(asked, heard)
        corrected = parse_slot(asked.slot, _NEGATED.sub(" ", text), today=self.today,
                               date_order=self.spec.date_order, postcode=self.spec.locale.postcode)
        if corrected is not None and corrected != heard:
            self.read_back = None
            self.notes.append(f"caller corrected the read-back of {asked.slot.name}")
            if self._unsure_of(asked.slot, confidence, unsure):
                return self._ask_read_back(asked, corrected)
            return self._store(asked, corrected)
        if reading.no or self.attempts >= 1:
            self.read_back = None
            self.notes.append(f"read-back of {asked.slot.name} refused: asked again")
            self.question = asked
            return self._retry("slot_unfilled")
        self.attempts += 1
        return self._ask(self.question, [self.spec.prompts.confirm_unclear], count=False)

    def _fill_in_passing(self, task: Task, text: str, *, skip: str) -> None:
        """The other empty slots an answer also gave: "next Tuesday at half three" is a date and a time."""
        for slot in task.intent.slots:
            if slot.name == skip or slot.name in task.slots or slot.type not in _TOGETHER:
                continue
            value = parse_slot(slot, text, today=self.today, date_order=self.spec.date_order, in_passing=True)
            if value is not None:
                task.slots[slot.name] = value
                task.filled.append(slot.name)
                self.notes.append(f"{slot.name}={value.value} (same answer)")

    def _store(self, q: Question, value: SlotValue) -> list[Action]:
        assert q.slot is not None
        name = q.slot.name
        if q.kind == "identity":
            self.identity[name] = value
            self.identity_filled = [n for n in self.identity_filled if n != name] + [name]
        else:
            assert self.task is not None
            self.task.slots[name] = value
            self.task.filled = [n for n in self.task.filled if n != name] + [name]
            self.notes.append(f"{name}={value.value}")
        return self._advance([])

    def _on_confirm_answer(self, text: str) -> list[Action]:
        """A write runs only on a clear yes to the question asked; a change of a detail asks again with
        the new detail; a no cancels; anything unclear is asked once more, then handed to a person."""
        task = self.task
        assert task is not None
        tool = task.intent.steps[task.step].tool
        answer_text, also = self._split_second_request(text)
        reading = read_yes_no(answer_text, self.question.text)
        changed = []
        for slot in task.intent.slots:
            if slot.type in ("yes_no", "free_text"):
                continue
            value = parse_slot(slot, _NEGATED.sub(" ", answer_text), today=self.today,
                               date_order=self.spec.date_order, in_passing=True)
            if value is not None and task.slots.get(slot.name) != value:
                task.slots[slot.name] = value
                changed.append(slot.name)
        if changed:
            self.notes.append(f"caller corrected {', '.join(changed)}")
            return self._advance([])
        if also is not None and not reading.unclear:
            self._queue_request(also, text)
        if reading.yes:
            task.confirmed_step = task.step
            self.notes.append(f"caller confirmed {tool}")
            return self._advance([])
        if reading.no:
            self.notes.append(f"caller declined {tool}")
            declined = self._render(task.intent.responses.declined, task, speech=True)
            self.task = None
            return self._next_pending([declined] if declined else [])
        # a hedge ("I can't confirm that") or a condition is about this question, not a new request; a pause
        # may lead into one ("wait, where's order 4567"): served on the side, then this question asked again
        if reading.reason in ("question", "other", "nothing", "wait"):
            route = self.router.route(text)
            if self._is_digression(route, text):
                return self._digress(route, text)
        self.notes.append(f"unclear answer to the confirmation of {tool} ({reading.reason}: '{text[:40]}')")
        return self._retry("confirmation_unclear", detail=f"{reading.reason}: '{text[:40]}'")

    def _yes_then_person(self, text: str) -> str | None:
        """The yes of "yes please, and can I talk to someone after" (a clear yes, then a request for a
        person), or None."""
        match = _SECOND_REQUEST.search(text)
        if match is None or match.start() == 0:
            return None
        answer, tail = text[: match.start()], text[match.end():]
        return answer if read_yes_no(answer, self.question.text).yes and detect_command(tail) is Command.HUMAN \
            else None

    def _split_second_request(self, text: str) -> tuple[str, str | None]:
        """("yes please", "what are your hours") from "yes please, and also what are your hours": the
        answer, and a second request made in the same breath (None when there is none)."""
        match = _SECOND_REQUEST.search(text)
        if match is None or match.start() == 0:
            return text, None
        tail = text[match.end():]
        route = self.router.route(tail)
        current = self.task.intent.name if self.task else None
        if route.intent is None or route.intent == current or not (
                route.by == "pattern" or route.confidence >= DIGRESSION_CONFIDENCE):
            return text, None
        return text[: match.start()], route.intent

    def _queue_request(self, intent: str, text: str) -> None:
        if intent not in self.pending_intents:
            self.pending_intents.append(intent)
            self.pending_text = text
            self.notes.append(f"also asked for {intent} (kept for later)")

    def _reconfirm_text(self) -> str:
        """The confirmation asked again after an unclear answer, with its key facts: "Just to be sure,
        for customer C-1002: shall I unlock your online account now? Please answer yes or no."."""
        task = self.task
        assert task is not None
        step = task.intent.steps[task.step]
        original = (self._render(step.confirm, task, speech=True) if step.confirm else None) or self.question.text
        sentences = [x for x in re.split(r"(?<=[.!?])\s+", original.strip()) if x]
        asks = [x for x in sentences if x.endswith("?")]
        question = asks[-1] if asks else sentences[-1]
        values = self._values(task, speech=True)
        facts_of = [v for k, v in values.items() if k not in ("business_name", "business_hours", "identity.level")
                    and len(v) > 1]
        facts = [x for x in sentences if x is not question and any(v in x for v in facts_of)]
        who = ""
        customer = values.get("identity.customer_id")
        if customer and customer not in original and any(
                isinstance(v, str) and "identity.customer_id" in v for v in step.args.values()):
            who = f", for customer {customer}"
        body = " ".join([*facts, question])
        if body[:2] not in ("I ", "I'"):
            body = body[:1].lower() + body[1:]
        return f"Just to be sure{who}: {body} {self.spec.prompts.confirm_unclear}"

    # ------------------------------------------------------------------ corrections and going back

    def _on_correction(self, text: str) -> list[Action] | None:
        """"sorry, it's 4568", "no wait, the time is 4 PM": replace what the caller said before, then carry
        on from there. None when the text corrects nothing (it is then read as an answer as usual)."""
        q = self.question
        task = self.task
        if task is None:
            return self._reopen(text) if q.kind == "anything_else" else None
        current = q.slot if q.kind in ("slot", "identity") else None
        stores: list[tuple[SlotSpec, dict[str, SlotValue], bool]] = []
        specs = {s.name: s for s in task.intent.slots}
        for name in [*reversed(task.filled), *(n for n in task.slots if n not in task.filled)]:
            if name in specs:
                stores.append((specs[name], task.slots, False))
        identity_specs = self._identity_specs()
        for name in reversed(self.identity_filled):
            # once checked, an identity detail changes only when the caller names it ("my postcode is ...")
            if name in identity_specs and name in self.identity and (
                    self.verified == "none" or slot_named(text, name)):
                stores.append((identity_specs[name], self.identity, True))
        named = [x for x in stores if slot_named(text, x[0].name)]
        for spec, store, is_identity in [*named, *(x for x in stores if x not in named)]:
            if spec.type in ("yes_no", "free_text") or (current is not None and spec.name == current.name):
                continue
            if (spec, store, is_identity) not in named and (
                    spec.type == "letters" or (current is not None and current.type == spec.type)):
                continue  # an answer to the question asked, not a correction of an earlier one
            value = parse_slot(spec, text, today=self.today, date_order=self.spec.date_order,
                           postcode=self.spec.locale.postcode)
            if value is None or store.get(spec.name) == value:
                continue
            store[spec.name] = value
            self.notes.append(f"caller corrected {spec.name}={value.value}")
            if is_identity and self.verified != "none":
                self.verified = "none"  # the identity checked is not the caller's any more: check again
                self.identity_data.clear()
            else:
                task.confirmed_step = None
            return self._advance([f"Okay, I've changed that to {value.spoken}."])
        return None

    def _reopen(self, text: str) -> list[Action] | None:
        """At "anything else?": a correction of the request just served runs it again with the new value."""
        last = self.last_task
        if last is None or not last.intent.slots:
            return None
        specs = sorted(last.intent.slots, key=lambda s: not slot_named(text, s.name))
        for spec in specs:
            if spec.type in ("yes_no", "free_text", "letters"):
                continue
            value = parse_slot(spec, text, today=self.today, date_order=self.spec.date_order,
                           postcode=self.spec.locale.postcode)
            if value is None or last.slots.get(spec.name) == value:
                continue
            self.task = Task(last.intent, slots={**last.slots, spec.name: value},
                             filled=[*(n for n in last.filled if n != spec.name), spec.name])
            self.last_task = None
            self.notes.append(f"caller corrected {spec.name}={value.value} ({last.intent.name} again)")
            return self._advance([f"Okay, I've changed that to {value.spoken}."])
        return None

    def _identity_specs(self) -> dict[str, SlotSpec]:
        verification = self.spec.verification
        if verification is None:
            return {}
        return {s.name: s for lvl in (verification.basic, verification.strong) for s in lvl.slots}

    def _go_back(self) -> list[Action]:
        """"go back": forget the last answer and ask its question again."""
        task = self.task
        q = self.question
        lead = "Okay, let's go back."
        if task is not None and task.filled and q.kind in ("slot", "confirm"):
            name = task.filled.pop()
            task.slots.pop(name, None)
            task.confirmed_step = None
            self.notes.append(f"caller went back to {name}")
            return self._advance([lead])
        if q.kind == "identity" and self.identity_filled:
            name = self.identity_filled.pop()
            self.identity.pop(name, None)
            self.notes.append(f"caller went back to {name}")
            return self._advance([lead])
        return self._ask(q, ["We're at the first question."], count=False)

    def _is_digression(self, route: Route, text: str) -> bool:
        """The caller left the question to ask for something else ("actually, I want to pay a bill").
        Numbers and letters are not words of a request: a misheard code ("and 1 1 80" for "M one one A
        E", which the classifier scored 0.98 as a reschedule) is a try at the answer, asked again."""
        current = self.task.intent.name if self.task else None
        return route.intent is not None and route.intent != current and (
            route.by == "pattern" or (route.confidence >= DIGRESSION_CONFIDENCE and len(request_words(text)) >= 3))

    def _digress(self, route: Route, text: str) -> list[Action]:
        """Serve what the caller asked on the side, and keep the request in hand (with its answers) to come
        back to, unless the caller replaced it ("... instead", "forget that") or the new request is itself
        a change (confirming the appointment instead of moving it is a switch, not a side question)."""
        task = self.task
        side = self.map.intent(route.intent) if route.intent is not None else None
        if task is not None and side is not None and not _REPLACES.search(text) and not self.map.writes(side):
            assert route.intent is not None
            self.suspended.append(task)
            self.task = None
            self.notes.append(f"{task.intent.name} put aside for {route.intent}")
        return self._start_intent(route, text, [])

    def _retry(self, condition: Condition, *, detail: str = "") -> list[Action]:
        self.attempts += 1
        q = self.question
        # An unclear answer to a confirmation is asked again once, with its facts, then a person takes over.
        limit = min(self.spec.limits.reprompts, 1) if q.kind == "confirm" else self.spec.limits.reprompts
        if self.attempts > limit:
            if condition == "slot_unfilled" and q.kind == "identity" and self.off_record and all(self.off_record):
                return self._not_the_record(q)
            detail = detail or (q.slot.name if q.slot is not None else "")
            return self._transfer(condition, detail=detail)
        if q.kind == "confirm" and self.task is not None:
            return self._ask(Question("confirm", self._reconfirm_text(), q.expect, timeout_s=q.timeout_s), [],
                             count=False)
        if q.slot is not None and q.slot.reprompt:
            return self._ask(Question(q.kind, self._render(q.slot.reprompt, self.task, speech=True) or q.text,
                                      q.expect, q.slot, q.timeout_s), [], count=False)
        return self._ask(q, [self.spec.prompts.not_understood], count=False)

    def _not_the_record(self, q: Question) -> list[Action]:
        """Every answer to an identity code question was checked against the code on the caller's record and
        none says it: the code was not read, but it is known not to be the one on record. That is a failed
        verification (counted for the caller and the account like one), not a slot the agent could not fill."""
        assert q.slot is not None
        n = len(self.off_record)
        self.notes.append(f"identity not verified: none of {n} answers for {q.slot.name} matched the record")
        trip = self.guard.verification_failed(self.caller_id) if self.guard is not None else None
        if trip is not None:
            return self._transfer(trip.condition, detail=trip.detail)
        return self._transfer("verification_failed", detail=f"{q.slot.name}: {n} answers, none the code on record")

    def _not_understood(self) -> list[Action]:
        if self.question.kind in ("open", "anything_else"):
            return self._no_match("")
        return self._retry("slot_unfilled" if self.question.kind != "confirm" else "confirmation_unclear")

    # ------------------------------------------------------------------ prompts

    def _ask(self, question: Question, said: list[str], *, count: bool = True) -> list[Action]:
        """Say ``said`` and the question, then listen for the answer."""
        if count:
            self.attempts = 0
            self.off_record = []
        self.question = question
        self.prompt = [*said, question.text]
        return [*(Say(s) for s in said), Say(question.text), Listen(question.expect, question.timeout_s)]

    def _question_heard(self, heard_text: str) -> bool:
        prompt_words = tokens(" ".join(self.prompt))
        question_words = tokens(self.question.text)
        heard = len(tokens(heard_text))
        start = len(prompt_words) - len(question_words)
        slack = max(2, math.floor(0.25 * len(question_words)))
        return heard - start >= len(question_words) - slack

    def _open_expectation(self) -> Expectation:
        return self._open

    def _anything_else_expectation(self) -> Expectation:
        return self._anything_else

    def _slot_timeout(self, slot: SlotSpec) -> float:
        if slot.timeout_s is not None:
            return slot.timeout_s
        if slot.type in ("digits", "number", "letters"):
            return self.spec.limits.digits_timeout_s
        return self.spec.limits.silence_timeout_s

    # ------------------------------------------------------------------ templates

    def _values(self, task: Task | None, *, speech: bool) -> dict[str, str]:
        values = self.spec.global_values()
        for name, v in self.identity.items():
            values[f"identity.{name}"] = v.spoken if speech else v.value
        for name, raw in self.identity_data.items():
            text = _value_text(raw, speech=speech, today=self.today)
            if text is not None:
                values[f"identity.{name}"] = text
        values["identity.level"] = self.verified
        if task is not None:
            for name, v in task.slots.items():
                values[name] = v.spoken if speech else v.value
            for name, raw in task.results.items():
                if speech and not task.intent.speakable(name, self.verified):
                    continue  # withheld from an unverified caller (the map's unverified_fields)
                text = _value_text(raw, speech=speech, today=self.today)
                if text is not None:
                    values[f"result.{name}"] = text
        return values

    def _answer(self, task: Task) -> str | None:
        """The first answer variant whose ``when`` matches the results and that can be filled, from the
        results the caller may hear (an unverified caller: the intent's ``unverified_fields``)."""
        responses = task.intent.responses
        if task.submitted and responses.submitted:
            return self._render(responses.submitted, task, speech=True)
        heard = {f: v for f, v in task.results.items() if task.intent.speakable(f, self.verified)}
        contract = task.intent.output_contract
        withheld = [f for f in (*contract.requires, *contract.optional) if f not in heard and task.results.get(f)
                    is not None]
        if withheld:
            self.notes.append(f"withheld from an unverified caller: {', '.join(withheld)}")
        for variant in responses.answer or ():
            if all(_matches(heard.get(f), want) for f, want in variant.when.items()):
                text = self._render(variant.say, task, speech=True)
                if text is not None:
                    self.offered_handoff = variant.offer_handoff
                    return text
        return None

    def _render(self, template: str, task: Task | None, *, speech: bool) -> str | None:
        try:
            return render(template, self._values(task, speech=speech))
        except TemplateError:
            return None

    def _render_global(self, template: str) -> str:
        return self._render(template, None, speech=True) or template

    # ------------------------------------------------------------------ exclusions and handoff

    def _exclusion(self, text: str) -> str | None:
        phrases = self.spec.exclusions.phrases
        if self.task is not None:
            phrases = (*phrases, *self.task.intent.exclusions.phrases)
        return contains_phrase(text, phrases)

    def _intent_exclusion(self, intent: IntentDefinition) -> tuple[Condition, str] | None:
        for cond in (*self.spec.exclusions.conditions, *intent.exclusions.conditions):
            if cond == "anonymous_caller" and self.caller_id.strip().lower() in ("", "anonymous", "unknown",
                                                                                  "restricted"):
                return "exclusion", "anonymous caller"
            if cond == "after_hours" and not self._open_now():
                return "after_hours", "outside business hours"
        return None

    def _open_now(self) -> bool:
        hours = self.spec.business_hours
        if hours is None or self.now is None:
            return True
        return open_at(hours.days, self.now)

    def _on_closed_menu(self, text: str) -> list[Action]:
        """The caller's answer to a closed queue's menu: an option by name or number, a person (the queue
        offered), goodbye, "say that again"; anything else is asked once more, then the first option."""
        assert self.closed_menu is not None
        options = self.closed_menu[2]
        choice = menu_choice(text, options) if text else None
        if choice is not None:
            return self._closed_menu_transfer(choice, f"caller said '{text[:60]}'")
        command = detect_command(text) if text else None
        if command is Command.GOODBYE:
            return self._goodbye("caller_goodbye")
        if command is Command.HUMAN:
            return self._closed_menu_transfer(self._menu_person(options), "asked for a person")
        if command is Command.REPEAT:
            return self._ask(self.question, [], count=False)
        self.attempts += 1
        if self.attempts > min(self.spec.limits.reprompts, 1):
            return self._closed_menu_transfer(options[0], "no clear choice: the first option")
        return self._ask(self.question, [self.spec.prompts.not_understood], count=False)

    @staticmethod
    def _menu_person(options: tuple[str, ...]) -> str:
        return next((o for o in options if o not in OFFER_DESTINATIONS), options[0])

    def _closed_menu_transfer(self, choice: str, how: str) -> list[Action]:
        assert self.closed_menu is not None
        condition, detail, _options = self.closed_menu
        self.notes.append(f"closed-queue menu: {choice} ({how})")
        return self._transfer(condition, detail=detail, chosen=choice)

    def _transfer(self, condition: Condition, *, detail: str = "", say: str | None = None,
                  chosen: str | None = None) -> list[Action]:
        intent = self.task.intent if self.task else self.last_intent
        esc = resolve(self.map, intent, condition, detail)
        # the queue's own hours (escalation.py); a menu of several offers once per call, never in transfer-only mode
        diverted = divert_if_closed(self.map, esc, self.now, chosen=chosen)
        if diverted is not None and diverted.menu and self.closed_menu is None and not self.policy.kill_switch:
            self.closed_menu = (condition, detail, diverted.options)
            self.notes.append(f"{diverted.closed_queue} closed: offered {', '.join(diverted.options)}")
            return self._ask(Question("closed_menu", diverted.question, Expectation(
                kind="choice", choices=menu_phrases(diverted.options), max_digits=1, dtmf=True),
                timeout_s=self.spec.limits.silence_timeout_s), [diverted.say])
        if diverted is not None:
            esc, condition, say = diverted.escalation, "queue_closed", diverted.say
        context: dict[str, str] = {
            "intent": intent.name if intent else "",
            "summary": self._summary(),
            "verified_identity": self._identity_summary(),
            "reason": esc.reason,
            "condition": condition,
            "caller_id": self.caller_id,
            "turns": str(self.turns),
        }
        if diverted is not None:
            context.update(closed_queue=diverted.closed_queue, offer=diverted.offer,
                           escalated_because=diverted.escalated_because)
            if self.closed_menu is not None:
                context["offers"] = ",".join(self.closed_menu[2])
        # a request already completed ("anything else?" -> "a person, please") hands off with what it gathered
        done = self.last_task if self.last_task is not None and self.last_task.intent is intent else None
        values = self._values(self.task or done, speech=False)
        for name in esc.context_fields:
            if name in values:
                context[f"slot.{name}" if "." not in name else name] = values[name]
        after_hours = not self._open_now()
        if after_hours:
            context["after_hours"] = "true"
        if say is None:
            say = self.spec.prompts.after_hours if after_hours else self.spec.prompts.handoff
        self.notes.append(f"handoff: {condition}")
        self.ended = True
        self.pending = None
        return [Say(say, interruptible=False), Transfer(queue=esc.queue, reason=condition, context=context)]

    def _goodbye(self, reason: str) -> list[Action]:
        self.ended = True
        self.notes.append(f"call ended: {reason}")
        return [Say(self.spec.prompts.goodbye, interruptible=False), Hangup(reason)]

    def _summary(self) -> str:
        return "; ".join(self.notes[-10:])

    def _identity_summary(self) -> str:
        if self.verified == "none":
            return "not verified"
        who = self.identity_data.get("customer_id")
        return f"{self.verified}" + (f" (customer {who})" if who else "")

    def _finish(self, actions: list[Action]) -> list[Action]:
        """Last step of every turn: the policy gate (transfer-only mode ends every turn in Transfer)."""
        if self.policy.kill_switch and not self.ended:
            transfer = self._transfer("kill_switch", say=self.spec.prompts.kill_switch)
            assert isinstance(transfer[-1], Transfer)
            return self.policy.gate([*actions, transfer[0]], transfer[-1])
        return actions


def _value_text(raw: Any, *, speech: bool, today: date) -> str | None:
    """A tool-result value as text: canonical for tool arguments, spoken for templates."""
    if raw is None or isinstance(raw, (dict, list)):
        return None
    if isinstance(raw, bool):
        return ("yes" if raw else "no") if speech else str(raw).lower()
    text = str(raw)
    if not speech:
        return text
    try:
        if len(text) == 10 and text[4] == "-":
            return spoken_date(date.fromisoformat(text), today)
        if len(text) in (5, 8) and text[2] == ":":
            return spoken_time(time.fromisoformat(text))
    except ValueError:
        pass
    if text.isdigit() and len(text) >= 4:
        return spoken_digits(text)
    return text.replace("_", " ")


def _matches(value: Any, want: str | bool | list[str]) -> bool:
    if isinstance(want, bool):
        return value is want
    if isinstance(want, list):
        return str(value) in want
    return str(value) == want
