"""Tool calls on a live call: past the intent's budget an acknowledgement plays ("One moment while I
check that."); a tool that never answers becomes ``Timeout("tool")`` (the engine hands off)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ari_agent.call.call_log import CallLog
from ari_agent.call.timing import TurnTiming
from ari_agent.metrics import ACKNOWLEDGEMENTS, TOOL_CALLS
from ari_agent.seam import CallTool, Say, Timeout, ToolResult

log = logging.getLogger(__name__)


class ToolCaller:
    def __init__(self, run_tool: Callable[[CallTool], Awaitable[ToolResult]], *, ack_text: str, timeout_s: float,
                 speak: Callable[[Say], Awaitable[object]], call_log: CallLog,
                 audit: Callable[[CallTool, str], None] | None = None) -> None:
        self.run_tool = run_tool
        self.audit = audit  # told every call's outcome (ok, an error code, timeout, cancelled)
        self.ack_text = ack_text
        self.timeout_s = timeout_s
        self.speak = speak  # plays the acknowledgement (and logs it)
        self.call_log = call_log

    async def call(self, action: CallTool, turn: TurnTiming | None) -> ToolResult | Timeout:
        task = asyncio.ensure_future(self.run_tool(action))
        outcome = "cancelled"
        try:
            done, _ = await asyncio.wait({task}, timeout=action.budget_ms / 1000)
            if not done:
                if turn is not None:
                    turn.ack_played = True
                log.info("call %s: %s past its %d ms budget: acknowledging", self.call_log.call_id, action.name,
                         action.budget_ms)
                ACKNOWLEDGEMENTS.inc()
                await self.speak(Say(self.ack_text, prompt_id="ack", interruptible=False))
                done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
            if not done:
                log.warning("call %s: %s did not answer within %.1fs", self.call_log.call_id, action.name,
                            self.timeout_s)
                TOOL_CALLS.labels(action.name, "timeout").inc()
                outcome = "timeout"
                return Timeout("tool")
            result = task.result()
            outcome = "ok" if result.ok else (result.error or "error")
            TOOL_CALLS.labels(action.name, outcome).inc()
            self.call_log.add("tool_result", ok=result.ok, error=result.error, submitted=result.submitted)
            return result
        finally:
            if turn is not None:
                turn.tool_done = time.monotonic()
            if not task.done():
                task.cancel()
            if self.audit is not None:
                self.audit(action, outcome)
