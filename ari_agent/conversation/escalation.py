"""Where a call goes when the agent hands it to a person, and what the person is told.

An intent's escalation contract maps conditions to queues and reasons; anything it does not cover
goes to the intent's queue, then to the map's fallback queue.

A queue with its own opening hours (``queue_hours``) that is closed when the caller would reach it
is not rung: the caller is told so (with the hours) and sent where the map's ``when_closed`` says
(``voicemail``, ``callback`` or another queue), condition ``queue_closed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time

from ari_agent.conversation.intent_map import Condition, IntentDefinition, IntentMap, Weekday

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
    """A closed queue's callers, sent on: where, and what the agent says first."""

    escalation: Escalation
    say: str
    closed_queue: str
    offer: str
    escalated_because: Condition


def divert_if_closed(intent_map: IntentMap, esc: Escalation, now: datetime | None) -> Diversion | None:
    """The diversion when ``esc.queue`` has opening hours that ``now`` is outside of, else None (no
    hours for that queue, or no clock: text scenarios without a time)."""
    hours = intent_map.spec.queue_hours.get(esc.queue)
    if hours is None or now is None or open_at(hours.days, now):
        return None
    offer = hours.when_closed.offer
    team = esc.queue.replace("_", " ").replace("-", " ")
    where = _OFFER_WORDS.get(offer) or f"talk to our {offer.replace('_', ' ').replace('-', ' ')} team"
    say = hours.when_closed.say or (f"Our {team} team is closed right now; they're open {hours.spoken}. "
                                    f"I'll put you through to {where}.")
    reason = f"{DEFAULT_REASONS['queue_closed']} ({esc.queue}; offered {offer})"
    diverted = replace(esc, queue=offer, condition="queue_closed", reason=reason)
    return Diversion(diverted, say, esc.queue, offer, esc.condition)

