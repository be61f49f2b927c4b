"""The context of a call taken out of the conversation's hands: a supervisor's takeover, or the call's
maximum duration reached while the engine was still waiting on the caller.

Read-only: the engine's public view (``state``, ``notes``, ``last_intent``) is read, never changed, so
this may run on the event loop while the engine works in its thread. The context has the keys of an
engine ``Transfer`` (intent, summary, verified identity, reason, condition, slots) so the channel
variables, the Redis record and the screen-pop read the same for every handoff.
"""

from __future__ import annotations

from typing import Any, Protocol

from ari_agent.conversation.engine import EngineState
from ari_agent.conversation.escalation import resolve
from ari_agent.conversation.intent_map import IntentDefinition, IntentMap


class EngineView(Protocol):
    @property
    def state(self) -> EngineState: ...
    @property
    def map(self) -> IntentMap: ...
    @property
    def notes(self) -> list[str]: ...
    @property
    def last_intent(self) -> IntentDefinition | None: ...
    @property
    def caller_id(self) -> str: ...


def engine_of(conversation: Any) -> EngineView | None:
    """The conversation engine of a call's conversation (``VoiceConversation.engine``), if it has one yet."""
    engine = getattr(conversation, "engine", None)
    return engine if engine is not None and hasattr(engine, "state") else None


def forced_context(engine: EngineView | None, condition: str, reason: str) -> dict[str, str]:
    """A Transfer-shaped context of where the conversation is."""
    context: dict[str, str] = {"condition": condition, "reason": reason}
    if engine is None:
        return {**context, "intent": "", "summary": "", "verified_identity": "not verified"}
    state = engine.state
    intent = state.intent or (engine.last_intent.name if engine.last_intent is not None else "")
    context.update(intent=intent, summary="; ".join(list(engine.notes)[-10:]),
                   verified_identity="not verified" if state.verified == "none" else state.verified,
                   caller_id=engine.caller_id, turns=str(state.turns))
    context.update({f"slot.{k}": v for k, v in state.slots.items()})
    return context


def max_duration_handoff(engine: EngineView | None, fallback_queue: str) -> tuple[str, dict[str, str]]:
    """Where a call that reached its maximum duration goes (the intent map's escalation for
    ``max_duration``; ``fallback_queue`` without an engine) and its context."""
    if engine is None:
        return fallback_queue, forced_context(None, "max_duration", "the call went on too long")
    intent = engine.last_intent
    esc = resolve(engine.map, intent, "max_duration")
    return esc.queue, forced_context(engine, "max_duration", esc.reason)
