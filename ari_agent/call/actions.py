"""Carrying out the engine's actions: the one interpreter for a live call and for ``ari-agent chat``.

The engine answers each event with a batch of actions (DESIGN.md's seam). The interpreter runs them
in order through an :class:`ActionHandler`; an action that produces an event (a caller's answer, a
tool result, a barge-in) is fed back to the engine at once and its actions run before the rest of
the batch. A barge-in drops the rest of the batch: those prompts are moot. ``Transfer`` and
``Hangup`` end the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

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
    Say,
    Timeout,
    ToolResult,
    Transfer,
    Utterance,
)


class ActionHandler(Protocol):
    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        """Speak; an event (the caller's ``BargeIn``) cuts the rest of the batch (``rest``)."""
        ...

    async def listen(self, action: Listen) -> Event | None:
        """The caller's answer; None when it comes from outside (chat reads the next line)."""
        ...

    async def call_tool(self, action: CallTool) -> Event:
        """The tool's result (``ToolResult``) or a ``Timeout("tool")``."""
        ...

    async def transfer(self, action: Transfer) -> None: ...

    async def hangup(self, action: Hangup) -> None: ...


Decide = Callable[[Event], Awaitable[list[Action]]]


class ActionInterpreter:
    def __init__(self, decide: Decide, handler: ActionHandler,
                 observe: Callable[[Action], None] | None = None) -> None:
        self.decide = decide
        self.handler = handler
        self.observe = observe
        self.ended = False

    async def feed(self, event: Event) -> None:
        """Give ``event`` to the engine and carry out everything that follows from it."""
        queue = list(await self.decide(event))
        while queue and not self.ended:
            action = queue.pop(0)
            if self.observe is not None:
                self.observe(action)
            nxt: Event | None = None
            if isinstance(action, Say):
                nxt = await self.handler.say(action, queue)
                if nxt is not None:
                    queue = []
            elif isinstance(action, Listen):
                nxt = await self.handler.listen(action)
            elif isinstance(action, CallTool):
                nxt = await self.handler.call_tool(action)
            elif isinstance(action, Transfer):
                self.ended = True
                await self.handler.transfer(action)
            elif isinstance(action, Hangup):
                self.ended = True
                await self.handler.hangup(action)
            if nxt is not None:
                queue = list(await self.decide(nxt)) + queue


def describe_expectation(expect: Expectation) -> str:
    """What a Listen waits for, in a few words ("digits, slot order_number, 4 digits, keypad ok")."""
    parts: list[str] = [expect.kind]
    if expect.slot:
        parts.append(f"slot {expect.slot}")
    if expect.min_digits or expect.max_digits:
        lo, hi = expect.min_digits or 1, expect.max_digits
        parts.append(f"{lo} digits" if lo == hi else f"{lo}-{hi or '?'} digits")
    if expect.choices:
        parts.append("choices " + "/".join(expect.choices))
    if expect.dtmf:
        parts.append("keypad ok")
    return ", ".join(parts)


def action_record(action: Action) -> dict[str, Any]:
    """An action as a flat record (``kind`` + details): the call's event log and chat's transcript."""
    if isinstance(action, Say):
        return {"kind": "say", "text": action.text}
    if isinstance(action, Listen):
        return {"kind": "listen", "expect": action.expect.kind, "detail": describe_expectation(action.expect),
                "timeout_s": action.timeout_s}
    if isinstance(action, CallTool):
        return {"kind": "tool", "name": action.name, "args": dict(action.args), "key": action.idempotency_key}
    if isinstance(action, Transfer):
        return {"kind": "transfer", "queue": action.queue, "reason": action.reason, "context": dict(action.context)}
    return {"kind": "hangup", "reason": action.reason}


TRANSCRIPT_INDENT = "        "


def event_line(event: Event) -> str:
    """One line of a text transcript for an event reaching the engine (``chat``, ``eval``)."""
    if isinstance(event, Utterance):
        return f"CALLER  {event.text}"
    if isinstance(event, Dtmf):
        return f"CALLER  [keys {event.digits}]"
    if isinstance(event, Timeout):
        return f"CALLER  [{event.kind}]"
    if isinstance(event, BargeIn):
        return f"CALLER  [speaks over the prompt after hearing: \"{event.heard_text}\"]"
    if isinstance(event, CallStarted):
        return f"{TRANSCRIPT_INDENT}[call from {event.caller_id or 'unknown'}]"
    if isinstance(event, ToolResult):
        return f"{TRANSCRIPT_INDENT}[tool result {event.ok}]"
    return f"{TRANSCRIPT_INDENT}[{event}]"
