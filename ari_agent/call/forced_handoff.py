"""The context of a call taken out of the conversation's hands: a supervisor's takeover, or the call's
maximum duration reached while the engine was still waiting on the caller.

Before such a handoff the caller hears a short line from the map's prompts (``prompts.takeover``,
``prompts.max_duration``: :func:`say_before_handoff`). Saying it never holds the transfer up: no
conversation that can speak, the caller or the media gone, TTS failing → the transfer goes ahead at once.

Read-only: the engine's public view (``state``, ``notes``, ``last_intent``) is read, never changed, so
this may run on the event loop while the engine works in its thread. The context has the keys of an
engine ``Transfer`` (intent, summary, verified identity, reason, condition, slots) so the channel
variables, the Redis record and the screen-pop read the same for every handoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from ari_agent.call.awaiting import first_of
from ari_agent.conversation.engine import EngineState
from ari_agent.conversation.escalation import resolve
from ari_agent.conversation.intent_map import IntentDefinition, IntentMap, Prompts
from ari_agent.conversation.templates import TemplateError, render

log = logging.getLogger(__name__)


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


ForcedPrompt = Literal["takeover", "max_duration"]


def forced_prompt(engine: EngineView | None, which: ForcedPrompt) -> str:
    """The map's line for this forced handoff, rendered with the map-wide values (the defaults of
    ``Prompts`` without an engine)."""
    if engine is None:
        return str(getattr(Prompts(), which))
    spec = engine.map.spec
    template = str(getattr(spec.prompts, which))
    try:
        return render(template, spec.global_values())
    except TemplateError:  # refused at load; a map built in code may still carry one
        return str(getattr(Prompts(), which))


async def say_before_handoff(call: object, text: str) -> bool:
    """Say ``text`` on ``call`` (a ``CallSession``: its conversation's ``announce_handoff``) before a
    forced handoff; True when it was heard out. Gives up at once when the call's media is lost or the
    caller leaves while it plays; never raises."""
    speak: Callable[[str], Awaitable[bool]] | None = getattr(getattr(call, "conversation", None),
                                                              "announce_handoff", None)
    gone: asyncio.Event | None = getattr(call, "caller_gone", None)
    lost: asyncio.Event | None = getattr(call, "media_lost", None)
    if speak is None or not text or any(e is not None and e.is_set() for e in (gone, lost)):
        return False
    waits: dict[str, Awaitable[Any]] = {"said": speak(text)}
    if gone is not None:
        waits["gone"] = gone.wait()
    if lost is not None:
        waits["lost"] = lost.wait()
    said: asyncio.Future[bool] = asyncio.ensure_future(waits.pop("said"))
    try:
        await first_of(said=said, **waits)
    except Exception as exc:  # the announcement must never stop the handoff
        log.warning("handoff announcement failed (%s): transferring without it", type(exc).__name__)
        return False
    if not said.done() or said.cancelled() or said.exception() is not None:
        return False
    return bool(said.result())


def handoff_not_done(call: object) -> None:
    """The forced handoff failed: give the line back to the conversation (``handoff_failed``)."""
    release = getattr(getattr(call, "conversation", None), "handoff_failed", None)
    if callable(release):
        release()
