"""The call's own decision and tool path, without audio, for the fault drills and fault tests.

:class:`EngineCall` runs a :class:`~ari_agent.conversation.engine.ConversationEngine` through the
call layer's :class:`~ari_agent.call.actions.ActionInterpreter` and
:class:`~ari_agent.call.tools.ToolCaller` (the acknowledgement past the intent's budget, the tool
timeout), exactly as the voice loop does, with a real :class:`~ari_agent.integrations.runner.ToolRunner`
behind it. What the caller would hear, the tool results and the transfer are recorded, with when
they happened.

:func:`callback_map` is the demo intent map plus a ``callback_request`` intent whose one write,
``record_write``, is an ``async_write`` tool: it goes through RQ (or the spool when redis is down).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ari_agent.call.actions import ActionInterpreter
from ari_agent.call.call_log import CallLog
from ari_agent.call.tools import ToolCaller
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, parse_intent_map
from ari_agent.seam import Action, CallTool, Event, Hangup, Listen, Say, Timeout, ToolResult, Transfer

CALLBACK_INTENT: dict[str, Any] = {
    "name": "callback_request",
    "owner": "Sam Reed (customer care)",
    "description": "Book a callback from a colleague.",
    "verification": "none",
    "tools": ["record_write"],
    "steps": [{"tool": "record_write", "args": {"reference": "callback request"},
               "confirm": "Would you like a colleague to call you back on this number?"}],
    "responses": {"intro": "I can arrange a callback.",
                  "answer": "Done: a colleague will call you back today.",
                  "submitted": "Thanks, your callback request is booked; a colleague will call you back today."},
    "output_contract": {"completes": "The caller has a callback booked."},
    "escalation": {"rules": [{"when": "tool_error", "reason": "the callback could not be booked"}]},
    "latency_budget": {"first_response_ms": 1000, "tool_call_ms": 700},
    "examples": ["can someone call me back", "I'd like a callback please", "please ring me back later",
                 "have a colleague phone me back", "book me a call back"],
    "keywords": ["call me back", "callback", "call back", "ring me back", "phone me back"],
}


def callback_map_yaml() -> str:
    """The text of :func:`callback_map` (an agent's ``conversation.intent_map`` file)."""
    data = yaml.safe_load(DEMO_MAP_PATH.read_text())
    data["tools"]["definitions"]["record_write"] = {"method": "POST", "url": "{base_url}/writes", "write": True,
                                                    "async_write": True, "timeout_ms": 5000}
    data["intents"].append(CALLBACK_INTENT)
    return yaml.safe_dump(data, sort_keys=False)


def callback_map() -> IntentMap:
    return parse_intent_map(callback_map_yaml(), "<demo map + callback_request>")


@dataclass
class Heard:
    t: float  # seconds since the call started
    text: str


@dataclass
class EngineCall:
    engine: ConversationEngine
    run_tool: Callable[[CallTool], Awaitable[ToolResult]]
    ack_text: str = "One moment while I check that."
    tool_timeout_s: float = 8.0
    said: list[Heard] = field(default_factory=list)
    tool_calls: list[CallTool] = field(default_factory=list)
    tool_outcomes: list[ToolResult | Timeout] = field(default_factory=list)
    transferred: Transfer | None = None
    transfer_t: float | None = None
    tool_started_t: float | None = None  # when the last tool call began
    hung_up: Hangup | None = None

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.call_log = CallLog(self.engine.call_id, self.started)
        self._tools = ToolCaller(self.run_tool, ack_text=self.ack_text, timeout_s=self.tool_timeout_s,
                                 speak=self._speak, call_log=self.call_log)
        self._interpreter = ActionInterpreter(self._decide, self)

    def _now(self) -> float:
        return time.monotonic() - self.started

    async def _decide(self, event: Event) -> list[Action]:
        return self.engine.handle(event)

    async def _speak(self, action: Say) -> None:
        self.said.append(Heard(self._now(), action.text))

    @property
    def ended(self) -> bool:
        return self._interpreter.ended

    async def feed(self, event: Event) -> None:
        await self._interpreter.feed(event)

    # the ActionHandler protocol
    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        await self._speak(action)
        return None

    async def listen(self, action: Listen) -> Event | None:
        return None  # the caller's next line comes from the test (feed)

    async def call_tool(self, action: CallTool) -> Event:
        self.tool_calls.append(action)
        self.tool_started_t = self._now()
        outcome = await self._tools.call(action, None)
        self.tool_outcomes.append(outcome)
        return outcome

    async def transfer(self, action: Transfer) -> None:
        self.transferred = action
        self.transfer_t = self._now()

    async def hangup(self, action: Hangup) -> None:
        self.hung_up = action
