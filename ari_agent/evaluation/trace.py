"""What happened on one evaluated call: the facts the judge scores, whichever mode produced them.

Plain data, no I/O: text mode fills it from the engine's actions as they are carried out; audio
mode is to fill it from call records and caller-side recordings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCallTrace:
    name: str
    args: dict[str, Any]
    intent: str | None  # the request being served when the tool was called
    ok: bool = False
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0
    after_yes_no: bool = False  # the agent's last question before the call was a yes/no one
    in_transfer_only_mode: bool = False  # the kill switch was on when it was called


@dataclass
class CallTrace:
    scenario_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    transcript: list[str] = field(default_factory=list)  # "CALLER ..." / "AGENT ..." / "[...]" lines
    says: list[str] = field(default_factory=list)  # everything the agent said
    intents: list[str] = field(default_factory=list)  # requests recognised, in order
    tools: list[ToolCallTrace] = field(default_factory=list)
    outcome: str = "open"  # resolved | transferred | caller_hung_up | open (script ran out)
    queue: str | None = None
    reason: str | None = None  # handoff condition
    hangup_reason: str | None = None
    turns: int = 0  # caller turns given to the engine
    unused_turns: int = 0  # caller turns left when the call had already ended
    listens_after_kill_switch: int = 0
    kill_switch_on: bool = False
    notes: list[str] = field(default_factory=list)  # the engine's own notes (summary material)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # per stage, one figure per occurrence
    error: str | None = None  # the run itself failed (not the agent)
    # audio mode, at a transfer: what is wrong with the context a human gets (channel variables, Redis);
    # [] = all there; None = not checked (text mode has no channel)
    context_problems: list[str] | None = None

    def add_stage(self, stage: str, ms: float) -> None:
        self.stage_ms.setdefault(stage, []).append(ms)
