"""Where a call goes when the agent hands it to a person, and what the person is told.

An intent's escalation contract maps conditions to queues and reasons; anything it does not cover
goes to the intent's queue, then to the map's fallback queue.

A queue with its own opening hours (``queue_hours``) that is closed when the caller would reach it
is not rung: the caller is told so (with the hours) and sent where the map's ``when_closed`` says
(``voicemail``, ``callback`` or another queue), condition ``queue_closed``. With several ``offers`` the
caller is asked to choose first (:func:`menu_question`, :func:`menu_choice`: words or keys 1-3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time

from ari_agent.conversation.intent_map import Condition, IntentDefinition, IntentMap, Weekday
from ari_agent.conversation.slots.choice import parse_choice
from ari_agent.conversation.slots.words import tokens

DEFAULT_REASONS: dict[str, str] = {
    "caller_request": "the caller asked for a person",
    "no_match": "the agent could not tell what the caller needs",
    "silence": "the caller stopped responding",
    "slot_unfilled": "the agent could not get a required detail from the caller",
    "verification_failed": "identity verification failed",
    "tool_error": "a back-office system failed",
    "output_contract": "a back-office system returned incomplete data",
    "confirmation_unclear": "the caller's confirmation was unclear",
    "restricted": "this request is handled by people only",
    "exclusion": "the request is excluded from automation",
    "max_turns": "the conversation went on too long",
    "max_duration": "the call went on too long",
    "kill_switch": "automation is switched off (transfer-only mode)",
    "policy": "a policy check stopped an action",
    "after_hours": "the request cannot be handled outside business hours",
    "third_party": "the caller asked on someone else's behalf",
    "frustration": "the caller sounded frustrated",
    "queue_closed": "the queue the caller needed is closed",
}
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OFFER_WORDS = {"voicemail": "leave a voicemail", "callback": "ask for a call back"}


@dataclass(frozen=True)
class Escalation:
    queue: str
    condition: Condition
    reason: str
    context_fields: tuple[str, ...]


def resolve(intent_map: IntentMap, intent: IntentDefinition | None, condition: Condition,
            detail: str = "") -> Escalation:
    """The queue and reason for handing off ``intent`` (or no intent yet) because of ``condition``."""
    queue = intent_map.spec.fallback_queue
    reason = DEFAULT_REASONS.get(condition, condition)
    fields: tuple[str, ...] = ()
    if intent is not None:
        esc = intent.escalation
        fields = esc.context or tuple(s.name for s in intent.slots)
        queue = esc.queue or queue
        for rule in esc.rules:
            if rule.when == condition:
                queue = rule.queue or queue
                reason = rule.reason or reason
                break
    if detail:
        reason = f"{reason} ({detail})"
    return Escalation(queue=queue, condition=condition, reason=reason, context_fields=fields)


def open_at(days: Mapping[Weekday, str], now: datetime) -> bool:
    """Whether opening hours ``days`` (weekday -> "HH:MM-HH:MM" | "closed"; a day not listed is closed)
    include ``now``."""
    span = days.get(WEEKDAYS[now.weekday()], "closed")
    if span == "closed":
        return False
    start, end = (time.fromisoformat(p) for p in span.split("-"))
    return start <= now.time() < end


@dataclass(frozen=True)
class Diversion:
    """A closed queue's callers, sent on: where, and what the agent says first. With a menu
    (``options`` of 2-3) the escalation's queue is the first option until the caller has chosen."""

    escalation: Escalation
    say: str
    closed_queue: str
    offer: str
    escalated_because: Condition
    options: tuple[str, ...] = ()
    question: str = ""  # the menu's question ("" without a menu)

    @property
    def menu(self) -> bool:
        return len(self.options) > 1


def team_words(offer: str) -> str:
    return offer.replace("_", " ").replace("-", " ")


def offer_words(offer: str) -> str:
    """How an offer is named to the caller: "leave a voicemail", "talk to our general team"."""
    return _OFFER_WORDS.get(offer) or f"talk to our {team_words(offer)} team"


def menu_question(options: tuple[str, ...]) -> str:
    """ "You can leave a voicemail, ask for a call back, or talk to our general team. Which would you like?" """
    words = [offer_words(o) for o in options]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + ("," if len(words) > 2 else "") + \
        f" or {words[-1]}"
    return f"You can {listed}. Which would you like?"


_MENU_SYNONYMS: dict[str, tuple[str, ...]] = {
    "voicemail": ("voicemail", "voice mail", "a message", "leave a message", "message", "mailbox", "record"),
    "callback": ("call back", "callback", "call me back", "ring me back", "phone me back", "call me", "ring me",
                 "a call", "call later"),
}
_SPEAK = ("talk", "speak", "someone", "somebody", "person", "human", "agent", "team", "colleague")
_MENU_NUMBERS = {"1": 0, "one": 0, "2": 1, "two": 1, "to": 1, "too": 1, "3": 2, "three": 2}
_MENU_FILLER = frozenset("option number press the please um uh er erm ok okay".split())


def menu_choice(text: str, options: tuple[str, ...]) -> str | None:
    """Which of ``options`` the caller chose in ``text`` ("a call back please", "the general team",
    "option two", "the last one"); None when none or more than one is named."""
    words = [w for w in tokens(text) if w not in _MENU_FILLER]
    if len(words) == 1 and words[0] in _MENU_NUMBERS and _MENU_NUMBERS[words[0]] < len(options):
        return options[_MENU_NUMBERS[words[0]]]
    queues = [o for o in options if o not in _MENU_SYNONYMS]
    choices: dict[str, tuple[str, ...]] = {}
    for o in options:
        if o in _MENU_SYNONYMS:
            choices[o] = _MENU_SYNONYMS[o]
        else:  # a queue: its name, its team's words, and (the only queue offered) asking for a person
            choices[o] = (team_words(o), f"{team_words(o)} team", *(_SPEAK if len(queues) == 1 else ()))
    return parse_choice(text, choices)


def menu_phrases(options: tuple[str, ...]) -> tuple[str, ...]:
    """What the caller may say to the menu (the recogniser's hints)."""
    out: list[str] = []
    for o in options:
        out.extend(_MENU_SYNONYMS.get(o, (team_words(o), f"{team_words(o)} team")))
    return (*out, "one", "two", "three")


def divert_if_closed(intent_map: IntentMap, esc: Escalation, now: datetime | None, *,
                     chosen: str | None = None) -> Diversion | None:
    """The diversion when ``esc.queue`` has opening hours that ``now`` is outside of, else None (no
    hours for that queue, or no clock: text scenarios without a time). ``chosen``: the option the caller
    picked from the menu (the caller then goes there; no menu)."""
    hours = intent_map.spec.queue_hours.get(esc.queue)
    if hours is None or now is None or open_at(hours.days, now):
        return None
    options = hours.when_closed.options
    offer = chosen if chosen in options else options[0]
    menu = len(options) > 1 and chosen is None
    team = team_words(esc.queue)
    closed = f"Our {team} team is closed right now; they're open {hours.spoken}."
    if menu:
        say = hours.when_closed.say or closed
        question = hours.when_closed.menu or menu_question(options)
    elif chosen is not None and len(options) > 1:
        say, question = f"Okay, I'll put you through to {offer_words(offer).replace('talk to ', '')}.", ""
    else:
        say = hours.when_closed.say or f"{closed} I'll put you through to {offer_words(offer)}."
        question = ""
    reason = f"{DEFAULT_REASONS['queue_closed']} ({esc.queue}; offered {', '.join(options)}"
    reason += f"; caller chose {offer})" if chosen is not None and len(options) > 1 else ")"
    diverted = replace(esc, queue=offer, condition="queue_closed", reason=reason)
    return Diversion(diverted, say, esc.queue, offer, esc.condition, options if menu else (), question)
