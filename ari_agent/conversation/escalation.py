"""Where a call goes when the agent hands it to a person, and what the person is told.

An intent's escalation contract maps conditions to queues and reasons; anything it does not cover
goes to the intent's queue, then to the map's fallback queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ari_agent.conversation.intent_map import Condition, IntentDefinition, IntentMap

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
}


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
