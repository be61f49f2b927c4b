"""The intent map: what the agent may do for callers, as YAML owned by the business, validated at load.

Every intent names its owner, example phrasings, typed slots, the identity verification it needs,
the tools it may call (an allowlist) and in which order, what it says, what it must complete (its
output contract), where it hands off and why (its escalation contract), phrases that force a handoff
(exclusions), its latency budget, and optionally a ``follow_up``: a slow write queued once it has
completed (a confirmation message), said to the caller only when durably accepted. Map-wide
settings hold the greeting, limits, queues, business hours, each queue's own hours and what its
callers are offered when it is closed (``queue_hours``), when a caller counts as frustrated
(``frustration``), identity verification, the caller's locale (``date_order``: how "12/04/1985"
reads; ``locale.postcode``: the postcode shape ``format: postcode`` slots check) and the ``tools:``
section (validated as the integrations' ``ToolsConfig``). A key said twice anywhere in the file is
refused.

A broken map is refused with ``ConfigError(file, key_path, reason, line)``: the schema is checked
first (unknown keys, wrong types), then the cross-field rules (``_Checker``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ari_agent.conversation.nlu import IntentSpec
from ari_agent.conversation.templates import GLOBAL_NAMES, NAMESPACES, TemplateError, placeholders, render
from ari_agent.errors import ConfigError
from ari_agent.integrations.tools_config import ToolsConfig
from ari_agent.seam import Expectation
from ari_agent.yaml_source import LineIndex, format_key_path, load_yaml, load_yaml_text, validate

DEMO_MAP_PATH = Path(__file__).resolve().parent.parent / "data" / "demo-intent-map.yaml"
MAX_EXAMPLES = 10
_IDENT = r"^[a-z][a-z0-9_]*$"
_HOURS = re.compile(r"^(closed|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$")
_BRACKETED = re.compile(r"\s*\([^)]*\)")
# whisper's initial prompt on open turns; whisper.cpp keeps at most n_text_ctx / 2 (224) tokens of it
OPEN_CONTEXT_CHARS: Final = 320

SlotType = Literal["digits", "number", "date", "time", "yes_no", "choice", "letters", "free_text"]
# How a map's country writes postcodes (slots.letters.PostcodeFormat): "uk" checks the UK shape
# (SW1A 1AA, M1 1AE), "us" a ZIP or ZIP+4, "any" any code of 2-10 letters and digits.
PostcodeFormat = Literal["any", "uk", "us"]
Verification = Literal["none", "basic", "strong"]
VERIFICATION_RANK: dict[str, int] = {"none": 0, "basic": 1, "strong": 2}
# Why a call is handed to a person; escalation rules are keyed by these.
Condition = Literal[
    "caller_request", "no_match", "silence", "slot_unfilled", "verification_failed", "tool_error",
    "output_contract", "confirmation_unclear", "restricted", "exclusion", "max_turns", "max_duration",
    "kill_switch", "policy", "after_hours", "third_party", "frustration", "queue_closed",
]
ExclusionCondition = Literal["anonymous_caller", "after_hours", "low_confidence"]
# Tool error codes that are answers for the caller rather than failures (integrations/outcomes.py).
RECOVERABLE_ERRORS = ("not_found", "rejected")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChoiceOption(_Model):
    value: str = Field(min_length=1)
    synonyms: tuple[str, ...] = ()


class SlotSpec(_Model):
    """One piece of information the agent collects from the caller."""

    name: str = Field(pattern=_IDENT)
    type: SlotType
    prompt: str = Field(min_length=1)
    reprompt: str | None = None  # said on a second try; default: "Sorry, I didn't get that. " + prompt
    min_length: int | None = Field(None, ge=1, le=64)  # digits, letters
    max_length: int | None = Field(None, ge=1, le=64)
    min: int | None = None  # number
    max: int | None = None
    choices: tuple[ChoiceOption, ...] = ()
    direction: Literal["future", "past", "any"] = "future"  # date: which way a yearless date resolves
    alphanumeric: bool = False  # letters: digits may be spelled too (postcodes, references)
    format: Literal["postcode"] | None = None  # letters: a postcode in the map's locale.postcode format
    dtmf: bool = True  # digits: the keypad is accepted
    timeout_s: float | None = Field(None, gt=0, le=60)

    @model_validator(mode="before")
    @classmethod
    def _postcode_is_alphanumeric(cls, data: Any) -> Any:
        if (isinstance(data, dict) and data.get("format") == "postcode" and data.get("type") == "letters"
                and "alphanumeric" not in data):
            return {**data, "alphanumeric": True}
        return data

    @field_validator("choices", mode="before")
    @classmethod
    def _plain_choices(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"value": c} if isinstance(c, str) else c for c in v]
        return v

    @model_validator(mode="after")
    def _type_fields(self) -> SlotSpec:
        if self.type not in ("digits", "letters") and (self.min_length is not None or self.max_length is not None):
            raise ValueError(f"min_length/max_length apply to digits and letters slots, not {self.type}")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is greater than max_length {self.max_length}")
        if self.type != "number" and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply to number slots, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if self.alphanumeric and self.type != "letters":
            raise ValueError("alphanumeric applies to letters slots")
        if self.format is not None and self.type != "letters":
            raise ValueError(f"format: {self.format} applies to letters slots, not {self.type}")
        if self.format == "postcode" and not self.alphanumeric:
            raise ValueError("a postcode slot holds digits too: leave out 'alphanumeric: false'")
        if self.type == "choice" and len(self.choices) < 2:
            raise ValueError("a choice slot needs at least two choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"choices apply to choice slots, not {self.type}")
        return self

    def choice_map(self) -> dict[str, tuple[str, ...]]:
        return {c.value: c.synonyms for c in self.choices}


class RecoverSpec(_Model):
    """What to do when a tool answers with an error the caller can fix (``not_found``, ``rejected``):
    say something, then ask for some slots again. Used once per step; a second failure hands off."""

    say: str = Field(min_length=1)
    ask_again: tuple[str, ...] = ()


class StepSpec(_Model):
    """One tool call. ``args`` values may be templates; ``confirm`` is the yes/no question asked
    first (required when the tool writes); ``recover`` maps tool error codes to a recovery."""

    tool: str = Field(min_length=1)
    args: dict[str, str | int | float | bool] = {}
    confirm: str | None = None
    recover: dict[str, RecoverSpec] = {}

    @field_validator("recover")
    @classmethod
    def _recoverable(cls, v: dict[str, RecoverSpec]) -> dict[str, RecoverSpec]:
        for code in v:
            if code not in RECOVERABLE_ERRORS:
                raise ValueError(f"'{code}' is not a recoverable tool error ({', '.join(RECOVERABLE_ERRORS)})")
        return v


class FollowUpSpec(_Model):
    """A slow write sent once the intent has completed and its answer was said: a confirmation message,
    say. The tool must be ``async_write`` (queued on RQ, or the agent's spool, not waited for) and the
    intent must have a write step: the caller's yes to that step covers the follow-up, so it asks
    nothing. ``say`` is said only when the write is durably accepted; otherwise ``failed`` (if any),
    and the call goes on either way (the request itself is done)."""

    tool: str = Field(min_length=1)
    args: dict[str, str | int | float | bool] = {}
    say: str = Field(min_length=1)
    failed: str | None = None


class AnswerVariant(_Model):
    """One wording of the answer, used when the tool results match ``when`` (field -> value or
    values); the first variant that matches and can be filled is said."""

    when: dict[str, str | bool | list[str]] = {}
    say: str = Field(min_length=1)
    # The answer offers a person ("a colleague can look into it"): a plain yes at "anything else?" takes it.
    offer_handoff: bool = False


class ResponsesSpec(_Model):
    intro: str | None = None  # said when the intent is recognised
    answer: tuple[AnswerVariant, ...] | None = None  # said when the intent completes (a string or variants)
    declined: str = "Okay, I haven't changed anything."
    submitted: str | None = None  # said when a write was queued rather than done
    handoff: str | None = None  # said before a transfer

    @field_validator("answer", mode="before")
    @classmethod
    def _plain_answer(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [{"say": v}]
        return v


class OutputContract(_Model):
    completes: str = Field(min_length=1)  # what the call must have achieved for this intent
    requires: tuple[str, ...] = ()  # result fields the tool(s) must return; missing -> handoff
    optional: tuple[str, ...] = ()  # result fields templates may use when present


class EscalationRule(_Model):
    when: Condition
    queue: str | None = None
    reason: str | None = None


class EscalationSpec(_Model):
    queue: str | None = None  # this intent's handoff queue (default: the fallback queue)
    context: tuple[str, ...] = ()  # slots / result./identity. fields attached to the handoff
    rules: tuple[EscalationRule, ...] = ()


class ExclusionSpec(_Model):
    phrases: tuple[str, ...] = ()  # heard anywhere in a turn -> handoff
    conditions: tuple[ExclusionCondition, ...] = ()


class LatencyBudget(_Model):
    first_response_ms: int = Field(1200, ge=50, le=10000)
    tool_call_ms: int = Field(700, ge=50, le=30000)


class IntentDefinition(_Model):
    name: str = Field(pattern=_IDENT)
    owner: str = Field(min_length=1)
    description: str = Field(min_length=1)
    enabled: bool = True
    examples: tuple[str, ...] = Field(min_length=1)
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # regular expressions that select this intent
    restricted: bool = False
    handoff: Literal["never", "always"] = "never"
    verification: Verification = "none"
    slots: tuple[SlotSpec, ...] = ()
    tools: tuple[str, ...] = ()  # allowlist
    steps: tuple[StepSpec, ...] = ()
    responses: ResponsesSpec = ResponsesSpec()
    follow_up: FollowUpSpec | None = None  # a slow write once the intent completed (a confirmation message)
    output_contract: OutputContract
    # ``verification: none`` intents: the result fields an unverified caller may hear (said, or chosen on
    # in an answer's ``when``); the others are withheld until the caller is verified (a variant that needs
    # one is skipped). Unset: every declared result field. Intents that verify never answer unverified.
    unverified_fields: tuple[str, ...] | None = None
    escalation: EscalationSpec = EscalationSpec()
    exclusions: ExclusionSpec = ExclusionSpec()
    latency_budget: LatencyBudget = LatencyBudget()

    def slot(self, name: str) -> SlotSpec | None:
        return next((s for s in self.slots if s.name == name), None)

    def speakable(self, result_field: str, verified: str) -> bool:
        """Whether a caller verified to ``verified`` ("none", "basic", "strong") may hear this result field."""
        return self.unverified_fields is None or verified != "none" or result_field in self.unverified_fields


class Limits(_Model):
    reprompts: int = Field(2, ge=0, le=5)  # re-asks of one question before handoff
    no_match: int = Field(1, ge=0, le=5)  # clarifications of an unknown request before handoff
    silence: int = Field(1, ge=0, le=5)  # silence re-prompts before handoff
    max_turns: int = Field(30, ge=2, le=200)
    silence_timeout_s: float = Field(6.0, gt=0, le=60)
    digits_timeout_s: float = Field(8.0, gt=0, le=60)
    min_confidence: float = Field(0.0, ge=0, le=1)  # recogniser confidence below this = not heard
    # A number or code (digits, letters slots) heard with less confidence than this is read back ("I have
    # 1 2 3 4. Is that right?") before it is used; keyed-in answers never are. 0: never read back.
    read_back_below: float = Field(0.0, ge=0, le=1)

    @property
    def reads_confidence(self) -> bool:
        """Whether a recogniser's confidence decides anything on this map's turns."""
        return self.read_back_below > 0 or self.min_confidence > 0


FORCED_HANDOFF_PROMPTS = ("takeover", "max_duration")  # Prompts fields said before a forced handoff


class Prompts(_Model):
    anything_else: str = "Is there anything else I can help you with?"
    what_else: str = "What else can I help you with?"
    goodbye: str = "Thank you for calling. Goodbye!"
    handoff: str = "Let me connect you with a colleague who can help."
    clarify: str = "Sorry, I didn't quite catch what you need. You can ask about {capabilities}."
    not_understood: str = "Sorry, I didn't get that."
    silence: str = "Are you still there?"
    confirm_unclear: str = "Please answer yes or no."
    start_over: str = "Okay, let's start again. How can I help?"
    resume: str = "Now, back to where we were."
    third_party: str = ("I can only help account holders with that on this line, so let me connect you with a "
                        "colleague who can.")  # after a side question, before the request put aside
    kill_switch: str = "Please hold while I connect you with a colleague."
    after_hours: str = "Our team is away right now; I'll put you through to leave a message."
    # Said just before a handoff the conversation did not decide (call/forced_handoff.py): a supervisor
    # took the call over, or it reached agent.max_call_s. Short; {business_name} may be used. If it
    # cannot be said (the media is gone, TTS fails), the caller is transferred at once without it.
    takeover: str = Field("I'm passing you to a colleague who will take it from here. Please hold.",
                          min_length=1, max_length=300)
    max_duration: str = Field("We've been talking for a while, so let me put you through to a colleague "
                              "who can help.", min_length=1, max_length=300)


class BusinessHours(_Model):
    days: dict[Weekday, str]
    spoken: str = Field(min_length=1)  # how the agent says them: {business_hours}

    @field_validator("days")
    @classmethod
    def _ranges(cls, v: dict[str, str]) -> dict[str, str]:
        for day, span in v.items():
            if not _HOURS.match(span):
                raise ValueError(f"{day}: '{span}' is not 'HH:MM-HH:MM' or 'closed'")
        return v


# Where a caller can go that is not a queue (dialplan/handoff.conf extensions of the same name).
OFFER_DESTINATIONS = ("voicemail", "callback")


MAX_CLOSED_OFFERS = 3  # a spoken menu of more is hard to follow; keys 1-3 choose


class WhenClosed(_Model):
    """What a caller is offered when their queue is closed: ``voicemail``, ``callback`` or another queue
    (``offer``), or a short spoken menu of several of them (``offers``: "You can leave a voicemail, ask
    for a call back, or speak to our support team. Which would you like?"; words or keys 1-3)."""

    offer: str | None = Field(None, min_length=1)
    offers: tuple[str, ...] = ()
    say: str | None = None  # said instead of the default ("Our billing team is closed right now; ...")
    menu: str | None = Field(None, min_length=1)  # the menu question instead of the default

    @model_validator(mode="after")
    def _one_way(self) -> WhenClosed:
        if (self.offer is None) == (not self.offers):
            raise ValueError("give either 'offer' (one destination) or 'offers' (a menu of 2 or 3)")
        if self.offers and not 2 <= len(self.offers) <= MAX_CLOSED_OFFERS:
            raise ValueError(f"'offers' is a menu of 2 to {MAX_CLOSED_OFFERS} destinations "
                             "(one destination: 'offer')")
        if len(set(self.offers)) != len(self.offers):
            raise ValueError("'offers' lists a destination twice")
        if self.menu is not None and not self.offers:
            raise ValueError("'menu' is the question of a menu of 'offers'")
        return self

    @property
    def options(self) -> tuple[str, ...]:
        """The destinations offered, in the order the caller hears them (one without a menu)."""
        return self.offers or ((self.offer,) if self.offer is not None else ())


class QueueHours(BusinessHours):
    """One queue's opening hours (a day not listed is closed) and what its callers get when it is closed."""

    when_closed: WhenClosed


class FrustrationSpec(_Model):
    """When a caller sounds fed up, they go to a person at once (condition ``frustration``)."""

    phrases: tuple[str, ...] = ()  # heard anywhere in a turn ("this is useless", "ridiculous")
    # Asking for a person this many times (within one utterance or across the call: "agent, agent!").
    person_requests: int = Field(2, ge=2, le=10)
    # "That's not what I said" and the like, this many times in the call.
    not_understood: int = Field(2, ge=1, le=10)
    # A turn this many dB louder than the caller's median of their earlier turns counts twice toward the
    # other cue said in it (a shouted "agent!" is two requests): never on its own. 0: not used.
    raised_voice_db: float = Field(9.0, ge=0, le=30)
    not_understood_phrases: tuple[str, ...] = (
        "that's not what i said", "that is not what i said", "not what i said", "you're not listening",
        "you are not listening", "that's not what i asked", "that is not what i asked", "not what i asked",
        "you misunderstood", "that's wrong", "that is wrong", "no that's not it")


class VerificationLevel(_Model):
    slots: tuple[SlotSpec, ...] = Field(min_length=1)
    # the verification tool's arguments (templates over {identity.<slot>}); default: slot name -> value
    args: dict[str, str] = {}
    intro: str = "Before I can help with that, I need to verify your identity."


class RecordLookup(_Model):
    """The codes on the caller's record, fetched before the caller is asked for them, so that the recogniser
    checks the audio against the code on record (``speech/code_check.py``) instead of reading it letter by
    letter. Held in memory for the call only: never said, logged, put in a transcript or handed off.

    ``tool``: a read-only tool taking ``args`` (templates over ``{identity.<slot>}``: asked first); ``codes``:
    identity slot (``format: postcode``) -> the result field holding the code on record. A lookup that fails
    or finds nothing changes nothing: the code is asked for and read as usual."""

    tool: str = Field(min_length=1)
    args: dict[str, str] = Field(min_length=1)
    codes: dict[str, str] = Field(min_length=1)


class VerificationSpec(_Model):
    tool: str = Field(min_length=1)
    attempts: int = Field(2, ge=1, le=5)
    returns: tuple[str, ...] = ()  # identity fields the tool returns (customer_id, name, ...)
    failed: str = "Sorry, those details don't match our records."
    basic: VerificationLevel
    strong: VerificationLevel
    record: RecordLookup | None = None


class Locale(_Model):
    """How the callers of this map write things that differ by country (the date order is the
    map-wide ``date_order``: "12/04/1985" is December 4th under MDY, April 12th under DMY)."""

    postcode: PostcodeFormat = "any"  # the shape ``format: postcode`` slots are checked against


class IntentMapSpec(_Model):
    version: Literal[1]
    business_name: str = "us"
    greeting: str = Field(min_length=1)
    date_order: Literal["MDY", "DMY"] = "MDY"  # how "12/04/1985" reads; an impossible order is read the other way
    locale: Locale = Locale()
    queues: tuple[str, ...] = Field(min_length=1)
    fallback_queue: str
    limits: Limits = Limits()
    prompts: Prompts = Prompts()
    business_hours: BusinessHours | None = None
    queue_hours: dict[str, QueueHours] = {}  # per queue: opening hours and what is offered when closed
    frustration: FrustrationSpec = FrustrationSpec()
    verification: VerificationSpec | None = None
    exclusions: ExclusionSpec = ExclusionSpec()
    tools: dict[str, Any] = {}
    intents: tuple[IntentDefinition, ...] = Field(min_length=1)

    def global_values(self) -> dict[str, str]:
        """The map-wide template values (``templates.GLOBAL_NAMES``): the same on every call."""
        values = {"business_name": self.business_name}
        if self.business_hours is not None:
            values["business_hours"] = self.business_hours.spoken
        return values


@dataclass(frozen=True)
class ToolInfo:
    """What the engine needs to know of a tool: whether calling it changes something."""

    name: str
    write: bool = False
    async_write: bool = False


# Fields whose text the agent says (IntentMap.spoken_lines).
SPOKEN_FIELDS: Final = frozenset({"say", "intro", "prompt", "reprompt"})


@dataclass(frozen=True)
class IntentMap:
    """A validated intent map."""

    spec: IntentMapSpec
    tools: Mapping[str, ToolInfo]
    source: str = "<memory>"
    tools_config: ToolsConfig = field(default_factory=ToolsConfig)  # the validated ``tools:`` section

    @property
    def intents(self) -> tuple[IntentDefinition, ...]:
        return self.spec.intents

    def writes(self, intent: IntentDefinition) -> bool:
        """Whether one of ``intent``'s steps calls a tool that writes."""
        return any(self.tools[s.tool].write for s in intent.steps if s.tool in self.tools)

    def intent(self, name: str) -> IntentDefinition | None:
        return next((i for i in self.spec.intents if i.name == name), None)

    def open_phrases(self) -> tuple[str, ...]:
        """The enabled intents' example phrasings: an open turn's recogniser bias (``Expectation.phrases``,
        the grammar recogniser's domain LM)."""
        return tuple(ex for i in self.spec.intents if i.enabled for ex in i.examples)

    def open_expectation(self, *, also: tuple[str, ...] = ()) -> Expectation:
        """An open turn's Listen expectation (the engine's, and the benches' that measure it): the examples
        (and ``also``) for the grammar LM, the descriptions for whisper's prompt, the keypad accepted."""
        return Expectation(kind="open", phrases=(*self.open_phrases(), *also), context=self.open_context(),
                           dtmf=True)

    def open_context(self, limit: int = OPEN_CONTEXT_CHARS) -> str:
        """What an open turn is about, in words: the enabled intents' descriptions, remarks in brackets left
        out, as many whole ones as fit ``limit`` characters (``Expectation.context``: whisper's initial
        prompt). Measured against the first examples as the prompt: docs/speech-bench.md, 2026-12-07."""
        text = ""
        for intent in self.spec.intents:
            if not intent.enabled:
                continue
            sentence = _BRACKETED.sub("", intent.description).strip().rstrip(".!?")
            if not sentence:
                continue
            sentence = sentence[0].upper() + sentence[1:] + "."
            if len(text) + len(sentence) + 1 > limit:
                break
            text = f"{text} {sentence}" if text else sentence
        return text

    def nlu_intents(self) -> list[IntentSpec]:
        """The enabled intents as the classifier sees them."""
        return [IntentSpec(i.name, i.examples, i.keywords) for i in self.spec.intents if i.enabled]

    def slots(self) -> tuple[SlotSpec, ...]:
        """Every slot of the map: the verification levels' first, then the intents' in map order."""
        v = self.spec.verification
        levels = (*v.basic.slots, *v.strong.slots) if v is not None else ()
        return (*levels, *(s for i in self.spec.intents for s in i.slots))

    def spoken_lines(self) -> list[str]:
        """Every line of the map the agent may say as it is written: the global prompts and each ``say``,
        ``intro``, ``prompt`` and ``reprompt``, in map order, once each. Map-wide values are filled in
        (``{business_hours}``: "We're open Monday to Friday ..."); a line with any other placeholder is left
        out (its words are only known on the call). Rendered at start-up, the first words of a reply are then
        in memory, not synthesised while the caller waits."""
        out: dict[str, None] = {}
        values = self.spec.global_values()

        def walk(node: object, spoken: bool) -> None:
            if isinstance(node, str):
                if not spoken or not node.strip():
                    return
                try:
                    out[render(node, values)] = None
                except TemplateError:  # a slot, a result or the identity: known only on the call
                    pass
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name), isinstance(node, Prompts) or name in SPOKEN_FIELDS)
            elif isinstance(node, (tuple, list)):
                for item in node:
                    walk(item, spoken)
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item, spoken)

        walk(self.spec, False)
        return list(out)

    def slot_expectation(self, slot: SlotSpec) -> Expectation:
        """The Listen expectation of a turn that asks for ``slot`` (the engine's, and the benches' that measure
        it). A date or time turn carries its question as ``context`` (whisper's initial prompt, with an example
        of the answer's form: ``whisper_stt.prompt_for``), unless the question has placeholders: a rendered one
        may hold personal data, and an expectation is logged."""
        kind = slot.type
        if kind == "digits":
            return Expectation(kind="digits", min_digits=slot.min_length, max_digits=slot.max_length, slot=slot.name,
                               dtmf=slot.dtmf)
        if kind == "choice":
            choices = tuple(p for c in slot.choices for p in (c.value, *c.synonyms))
            return Expectation(kind="choice", choices=choices, slot=slot.name)
        context = slot.prompt if kind in ("date", "time") and not placeholders(slot.prompt) else ""
        return Expectation(kind=kind, slot=slot.name, dtmf=kind in ("number", "yes_no") and slot.dtmf,
                           code_format=self.code_format(slot), context=context)

    def code_format(self, slot: SlotSpec) -> Literal["uk_postcode"] | None:
        """The code format a recogniser may constrain ``slot``'s answer to (``Expectation.code_format``): a UK
        postcode for a ``format: postcode`` letters slot under ``locale.postcode: uk``; else None."""
        uk = slot.type == "letters" and slot.format == "postcode" and self.spec.locale.postcode == "uk"
        return "uk_postcode" if uk else None

    def slot(self, name: str) -> SlotSpec | None:
        """The first slot of that name (:meth:`slots` order)."""
        return next((s for s in self.slots() if s.name == name), None)


# ------------------------------------------------------------------ loading


def load_intent_map(path: str | Path = DEMO_MAP_PATH) -> IntentMap:
    """Load and validate the intent map at ``path``; raises ConfigError naming file:line and key."""
    data, index = load_yaml(path)
    return intent_map_from_data(data, str(path), index)


def parse_intent_map(text: str, file: str = "<string>") -> IntentMap:
    data, index = load_yaml_text(text, file)
    return intent_map_from_data(data, file, index)


def intent_map_from_data(data: Any, file: str, index: LineIndex | None = None) -> IntentMap:
    idx = index or LineIndex()
    if not isinstance(data, dict):
        raise ConfigError(file, "", "an intent map is a mapping with 'version', 'greeting', 'queues', 'intents'",
                          line=idx.line_of(()))
    try:
        spec = validate(IntentMapSpec, data, file, idx)
    except ConfigError as exc:
        reason = exc.reason.removeprefix("Value error, ")
        raise ConfigError(exc.file, exc.key_path, reason, line=exc.line) from None
    tools_config, tools = _tools(spec.tools, file, idx)
    _Checker(spec, tools, file, idx).run()
    return IntentMap(spec=spec, tools=tools, source=file, tools_config=tools_config)


def _tools(raw: dict[str, Any], file: str, idx: LineIndex) -> tuple[ToolsConfig, dict[str, ToolInfo]]:
    """Validate the ``tools:`` section and extract the write flags."""
    try:
        config = ToolsConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ["tools", *(p for p in err["loc"] if isinstance(p, (str, int)))]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check spelling)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        raise ConfigError(file, format_key_path(loc), msg, line=idx.line_of(loc)) from None
    tools: dict[str, ToolInfo] = {}
    entries = raw.get("definitions", {})
    if not isinstance(entries, dict):
        raise ConfigError(file, "tools.definitions", "a mapping of tool name to its definition",
                          line=idx.line_of(["tools", "definitions"]))
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            loc = ["tools", "definitions", name]
            raise ConfigError(file, format_key_path(loc), "a tool is a mapping (method, url, ...)",
                              line=idx.line_of(loc))
        tools[str(name)] = ToolInfo(str(name), bool(entry.get("write", False)), bool(entry.get("async_write", False)))
    return config, tools


# ------------------------------------------------------------------ cross-field rules


class _Checker:
    def __init__(self, spec: IntentMapSpec, tools: Mapping[str, ToolInfo], file: str, idx: LineIndex) -> None:
        self.spec = spec
        self.tools = tools
        self.file = file
        self.idx = idx

    def fail(self, path: Sequence[str | int], reason: str) -> ConfigError:
        return ConfigError(self.file, format_key_path(path), reason, line=self.idx.line_of(path))

    def run(self) -> None:
        spec = self.spec
        if spec.fallback_queue not in spec.queues:
            raise self.fail(["fallback_queue"], f"queue '{spec.fallback_queue}' is not listed in 'queues'")
        if len(set(spec.queues)) != len(spec.queues):
            raise self.fail(["queues"], "a queue is listed twice")
        self.check_queue_hours()
        if spec.verification is not None:
            self.check_tool_defined(["verification", "tool"], spec.verification.tool)
            for level in ("basic", "strong"):
                lvl: VerificationLevel = getattr(spec.verification, level)
                self.check_slots(["verification", level, "slots"], lvl.slots)
                names = {s.name for s in lvl.slots}
                for key, value in lvl.args.items():
                    path: list[str | int] = ["verification", level, "args", key]
                    self.check_template(path, value, slots=(), result_fields=(), identity=True)
                    for ph in placeholders(value):
                        if ph.startswith("identity.") and ph.split(".", 1)[1] not in names:
                            raise self.fail(path, f"'{ph}' is not a slot of the {level} level")
            if spec.verification.record is not None:
                self.check_record(spec.verification)
        for key in ("greeting",):
            self.check_template([key], getattr(spec, key), slots=(), result_fields=(), identity=False)
        for key in FORCED_HANDOFF_PROMPTS:  # rendered by the call layer with the map-wide values only
            self.check_template(["prompts", key], getattr(spec.prompts, key), slots=(), result_fields=(),
                                identity=False)
        seen: dict[str, int] = {}
        for i, intent in enumerate(spec.intents):
            base: list[str | int] = ["intents", i]
            if intent.name in seen:
                raise self.fail([*base, "name"],
                                f"duplicate intent name '{intent.name}' (first at intents[{seen[intent.name]}])")
            seen[intent.name] = i
            self.check_intent(base, intent)

    def check_queue_hours(self) -> None:
        for queue, hours in self.spec.queue_hours.items():
            base: list[str | int] = ["queue_hours", queue]
            if queue not in self.spec.queues:
                raise self.fail(base, f"queue '{queue}' is not listed in 'queues' ({', '.join(self.spec.queues)})")
            closed = hours.when_closed
            paths: list[list[str | int]] = [[*base, "when_closed", "offers", k] for k in range(len(closed.offers))] \
                if closed.offers else [[*base, "when_closed", "offer"]]
            for path, offer in zip(paths, closed.options, strict=True):
                if offer == queue:
                    raise self.fail(path, "a closed queue cannot offer itself")
                if offer not in OFFER_DESTINATIONS and offer not in self.spec.queues:
                    raise self.fail(path, f"'{offer}' is not a queue listed in 'queues' "
                                          f"nor one of {', '.join(OFFER_DESTINATIONS)}")
            for key in ("say", "menu"):
                self.check_template([*base, "when_closed", key], getattr(closed, key), slots=(), result_fields=(),
                                    identity=False)

    def check_record(self, verification: VerificationSpec) -> None:
        record = verification.record
        assert record is not None
        base: list[str | int] = ["verification", "record"]
        self.check_tool_defined([*base, "tool"], record.tool)
        if self.tools[record.tool].write:
            raise self.fail([*base, "tool"], f"tool '{record.tool}' writes: a record lookup only reads")
        slots = {s.name: s for s in (*verification.basic.slots, *verification.strong.slots)}
        for name in record.codes:
            slot = slots.get(name)
            if slot is None:
                raise self.fail([*base, "codes", name], f"'{name}' is not a slot of the verification levels")
            if slot.format != "postcode":
                raise self.fail([*base, "codes", name], f"slot '{name}' is not 'format: postcode': only postcodes "
                                                        "are checked against the record")
        for key, value in record.args.items():
            path: list[str | int] = [*base, "args", key]
            self.check_template(path, value, slots=(), result_fields=(), identity=True)
            for ph in placeholders(value):
                if not ph.startswith("identity.") or ph.split(".", 1)[1] not in slots:
                    raise self.fail(path, f"'{ph}' is not a slot of the verification levels")
                if ph.split(".", 1)[1] in record.codes:
                    raise self.fail(path, f"'{ph}' is a code looked up here: the lookup comes before it is asked")

    def check_tool_defined(self, path: list[str | int], tool: str) -> None:
        if tool not in self.tools:
            known = ", ".join(sorted(self.tools)) or "none"
            raise self.fail(path, f"tool '{tool}' is not defined in 'tools' (defined: {known})")

    def check_queue(self, path: list[str | int], queue: str | None) -> None:
        if queue is not None and queue not in self.spec.queues:
            raise self.fail(path, f"queue '{queue}' is not listed in 'queues' ({', '.join(self.spec.queues)})")

    def check_slots(self, path: list[str | int], slots: Sequence[SlotSpec]) -> None:
        names: set[str] = set()
        for j, slot in enumerate(slots):
            if slot.name in names:
                raise self.fail([*path, j, "name"], f"duplicate slot name '{slot.name}'")
            if slot.name in NAMESPACES or slot.name in GLOBAL_NAMES:
                raise self.fail([*path, j, "name"], f"'{slot.name}' is reserved for templates")
            names.add(slot.name)

    def identity_fields(self) -> set[str]:
        v = self.spec.verification
        if v is None:
            return set()
        return {s.name for s in (*v.basic.slots, *v.strong.slots)} | set(v.returns) | {"level"}

    def check_template(
        self, path: list[str | int], template: str | None, *, slots: Sequence[str],
        result_fields: Sequence[str], identity: bool,
    ) -> None:
        if template is None:
            return
        try:
            names = placeholders(template)
        except TemplateError as exc:
            raise self.fail(path, f"bad template: {exc}") from None
        for name in names:
            if name in GLOBAL_NAMES:
                if name == "business_hours" and self.spec.business_hours is None:
                    raise self.fail(path, "template uses {business_hours} but 'business_hours' is not set")
                continue
            head, _, field = name.partition(".")
            if field and head == "result":
                if field not in result_fields:
                    raise self.fail(path, f"template references result field '{field}' not declared in "
                                          "output_contract.requires/optional")
            elif field and head == "identity":
                if not identity:
                    raise self.fail(path, f"template references '{name}' but the intent needs no verification")
                if field not in self.identity_fields():
                    raise self.fail(path, f"template references unknown identity field '{field}'")
            elif field:
                raise self.fail(path, f"unknown template namespace '{head}' (use result. or identity.)")
            elif name not in slots:
                known = ", ".join(slots) or "none"
                raise self.fail(path, f"template references unknown slot '{name}' (slots: {known})")

    def check_follow_up(self, base: list[str | int], intent: IntentDefinition, *, slots: Sequence[str],
                        result_fields: Sequence[str], identity: bool) -> None:
        follow_up = intent.follow_up
        assert follow_up is not None
        self.check_tool_defined([*base, "tool"], follow_up.tool)
        if follow_up.tool not in intent.tools:
            raise self.fail([*base, "tool"], f"tool '{follow_up.tool}' is not in this intent's tools allowlist")
        if not self.tools[follow_up.tool].async_write:
            raise self.fail([*base, "tool"], f"tool '{follow_up.tool}' is not 'async_write: true': a follow-up is "
                                             "a slow write queued after the answer, never waited for")
        if not any(self.tools[s.tool].write for s in intent.steps):
            raise self.fail(base, "a follow-up rides on the caller's yes to one of this intent's writes, and "
                                  "this intent has no write step")
        for key, value in follow_up.args.items():
            if isinstance(value, str):
                self.check_template([*base, "args", key], value, slots=slots, result_fields=result_fields,
                                    identity=identity)
        for key in ("say", "failed"):
            self.check_template([*base, key], getattr(follow_up, key), slots=slots, result_fields=result_fields,
                                identity=identity)

    def check_unverified_fields(self, base: list[str | int], intent: IntentDefinition,
                                result_fields: Sequence[str]) -> None:
        """``unverified_fields``: declared result fields, each once, on an intent that answers unverified
        callers, with an answer an unverified caller can be given."""
        fields = intent.unverified_fields
        if fields is None:
            return
        path: list[str | int] = [*base, "unverified_fields"]
        if intent.verification != "none":
            raise self.fail(path, f"this intent verifies every caller ('verification: {intent.verification}') "
                                  "before its tools run: no field is ever said unverified, leave this out")
        for k, name in enumerate(fields):
            if name not in result_fields:
                known = ", ".join(result_fields) or "none"
                raise self.fail([*path, k], f"'{name}' is not a result field declared in output_contract "
                                            f"(declared: {known})")
            if name in fields[:k]:
                raise self.fail([*path, k], f"'{name}' is listed twice")
        if intent.responses.answer is None:
            return  # it always hands off: nothing is said from a result
        for variant in intent.responses.answer:
            used = {p[7:] for p in placeholders(variant.say) if p.startswith("result.")} | set(variant.when)
            if used <= set(fields):
                return
        raise self.fail([*base, "responses", "answer"], "no answer variant can be said to an unverified caller: "
                                                        "add one that uses only the result fields in "
                                                        f"unverified_fields ({', '.join(fields) or 'none'})")

    def check_intent(self, base: list[str | int], intent: IntentDefinition) -> None:
        spec = self.spec
        if len(intent.examples) > MAX_EXAMPLES:
            raise self.fail([*base, "examples"], f"at most {MAX_EXAMPLES} examples per intent "
                                                 f"(found {len(intent.examples)}): keep the best, vary them")
        for k, pattern in enumerate(intent.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail([*base, "patterns", k], f"invalid regular expression: {exc}") from None
        self.check_slots([*base, "slots"], intent.slots)
        for k, tool in enumerate(intent.tools):
            self.check_tool_defined([*base, "tools", k], tool)
        if intent.verification != "none" and spec.verification is None:
            raise self.fail([*base, "verification"], f"'{intent.verification}' verification needs the map-wide "
                                                     "'verification' section")
        if intent.restricted and intent.handoff != "always" and intent.verification != "strong":
            raise self.fail([*base, "restricted"], "a restricted intent must have 'handoff: always' or "
                                                   "'verification: strong'")
        if intent.handoff == "always" and intent.steps:
            raise self.fail([*base, "steps"], "an intent that always hands off calls no tools")
        if intent.handoff == "never" and intent.responses.answer is None:
            raise self.fail([*base, "responses", "answer"], "required: what the agent says when the intent "
                                                            "completes")
        slot_names = [s.name for s in intent.slots]
        result_fields = (*intent.output_contract.requires, *intent.output_contract.optional)
        identity = intent.verification != "none"
        if intent.verification != "none" and spec.verification is not None:
            identity_tool = spec.verification.tool
            if identity_tool not in intent.tools:
                raise self.fail([*base, "tools"], f"verification needs the tool '{identity_tool}' in this "
                                                  "intent's tools allowlist")
            lookup = spec.verification.record
            if lookup is not None and lookup.tool not in intent.tools:
                raise self.fail([*base, "tools"], f"the record lookup needs the tool '{lookup.tool}' in this "
                                                  "intent's tools allowlist")
        for j, step in enumerate(intent.steps):
            path: list[str | int] = [*base, "steps", j]
            self.check_tool_defined([*path, "tool"], step.tool)
            if step.tool not in intent.tools:
                raise self.fail([*path, "tool"], f"tool '{step.tool}' is not in this intent's tools allowlist")
            if self.tools[step.tool].write and step.confirm is None:
                raise self.fail([*path, "confirm"], f"tool '{step.tool}' writes: a confirm question is required")
            self.check_template([*path, "confirm"], step.confirm, slots=slot_names,
                                result_fields=result_fields, identity=identity)
            for code, recover in step.recover.items():
                self.check_template([*path, "recover", code, "say"], recover.say, slots=slot_names,
                                    result_fields=result_fields, identity=identity)
                for k, name in enumerate(recover.ask_again):
                    if name not in slot_names:
                        raise self.fail([*path, "recover", code, "ask_again", k], f"'{name}' is not a slot of "
                                                                                  "this intent")
            for key, value in step.args.items():
                if isinstance(value, str):
                    self.check_template([*path, "args", key], value, slots=slot_names,
                                        result_fields=result_fields, identity=identity)
        if intent.follow_up is not None:
            self.check_follow_up([*base, "follow_up"], intent, slots=slot_names, result_fields=result_fields,
                                 identity=identity)
        for key in ("intro", "declined", "submitted", "handoff"):
            self.check_template([*base, "responses", key], getattr(intent.responses, key), slots=slot_names,
                                result_fields=result_fields, identity=identity)
        answer_path: list[str | int] = [*base, "responses", "answer"]
        for k, variant in enumerate(intent.responses.answer or ()):
            # a plain-string answer is one variant in the model but no list in the file
            plain = self.idx.line_of([*answer_path, k]) == self.idx.line_of(answer_path) and k == 0 \
                and len(intent.responses.answer or ()) == 1 and not variant.when
            self.check_template(answer_path if plain else [*answer_path, k, "say"], variant.say, slots=slot_names,
                                result_fields=result_fields, identity=identity)
            for fld in variant.when:
                if fld not in result_fields:
                    raise self.fail([*base, "responses", "answer", k, "when", fld],
                                    f"'{fld}' is not a result field declared in output_contract")
        self.check_unverified_fields(base, intent, result_fields)
        for j, slot in enumerate(intent.slots):
            for key in ("prompt", "reprompt"):
                self.check_template([*base, "slots", j, key], getattr(slot, key), slots=slot_names,
                                    result_fields=(), identity=identity)
        self.check_queue([*base, "escalation", "queue"], intent.escalation.queue)
        for k, rule in enumerate(intent.escalation.rules):
            self.check_queue([*base, "escalation", "rules", k, "queue"], rule.queue)
        for k, ctx in enumerate(intent.escalation.context):
            head, _, field = ctx.partition(".")
            ok = (ctx in slot_names) or (head == "result" and field in result_fields) or (
                head == "identity" and identity and field in self.identity_fields())
            if not ok:
                raise self.fail([*base, "escalation", "context", k], f"context '{ctx}' is not a slot, declared "
                                                                     "result field or identity field")
        if intent.handoff == "always" and intent.escalation.queue is None and not any(
            r.when == "restricted" and r.queue for r in intent.escalation.rules
        ):
            raise self.fail([*base, "escalation"], "an intent that always hands off must name its queue")
