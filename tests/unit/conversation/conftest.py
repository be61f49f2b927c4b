"""Fixtures for the conversation tests: the demo map, one classifier per session, and a runner for
text scenarios (tests/data/conversation/scenarios/*.txt).

Scenario format, one directive per line:

    # title: free text                     headers (first lines): title, today, caller_id, kill_switch
    > where is my order                    a caller script line (see conversation/script.py):
    > #dtmf 4567#                          utterance, #dtmf, #silence, #bargein <heard>, #timeout tool,
    > #killswitch                          #killswitch
    ! ok {"status": "shipped"}             the ToolResult for the last CallTool (ok | error CODE | submitted)
    < say: order number                    expectations on the actions of the last event, matched in
    < listen: digits                       order as a subsequence: say (substring), listen (kind),
    < tool: lookup_order {"order_number": "4567"}     tool (name + args subset), no tool, nothing,
    < transfer: support tool_error         transfer (queue reason), context: key=substring,
    < context: intent=order_status         hangup (reason)
    < hangup: completed
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.script import Control, parse_script_line
from ari_agent.seam import (
    Action,
    CallStarted,
    CallTool,
    Event,
    Hangup,
    Listen,
    Say,
    Timeout,
    ToolResult,
    Transfer,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "conversation"
SCENARIOS = DATA / "scenarios"
TODAY = date(2026, 3, 4)  # a Wednesday


@pytest.fixture
def make_engine(demo_map: IntentMap, classifier: IntentClassifier) -> Callable[..., ConversationEngine]:
    def make(**kw: Any) -> ConversationEngine:
        kw.setdefault("call_id", "test-call")
        kw.setdefault("today", TODAY)
        return ConversationEngine(kw.pop("intent_map", demo_map), kw.pop("classifier", classifier), **kw)

    return make


@dataclass
class ScenarioRun:
    engine: ConversationEngine
    log: list[str] = field(default_factory=list)
    last: list[Action] = field(default_factory=list)
    last_call: CallTool | None = None
    last_transfer: Transfer | None = None
    pos: int = 0  # expectations match after this index of ``last``

    def feed(self, event: Event) -> None:
        self.last = self.engine.handle(event)
        self.pos = 0
        self.log.append(f"  event {event}")
        for a in self.last:
            self.log.append(f"    -> {a}")
            if isinstance(a, CallTool):
                self.last_call = a
            if isinstance(a, Transfer):
                self.last_transfer = a

    def expect(self, spec: str, where: str) -> None:
        kind, _, arg = spec.partition(":")
        kind, arg = kind.strip(), arg.strip()
        if kind == "nothing":
            assert not self.last, f"{where}: expected no actions, got {self.last}"
            return
        if kind == "no tool":
            assert not any(isinstance(a, CallTool) for a in self.last), f"{where}: unexpected tool call"
            return
        if kind == "context":
            key, _, want = arg.partition("=")
            assert self.last_transfer is not None, f"{where}: no transfer yet"
            got = self.last_transfer.context.get(key.strip(), "")
            assert want.strip().lower() in got.lower(), f"{where}: context[{key}]={got!r}, wanted {want!r}"
            return
        for i in range(self.pos, len(self.last)):
            if self._matches(kind, arg, self.last[i], where):
                self.pos = i + 1
                return
        raise AssertionError(f"{where}: no action matching '{spec}' in {self.last[self.pos:]}")

    @staticmethod
    def _matches(kind: str, arg: str, a: Action, where: str) -> bool:
        if kind == "say":
            return isinstance(a, Say) and arg.lower() in a.text.lower()
        if kind == "listen":
            return isinstance(a, Listen) and (not arg or a.expect.kind == arg.split()[0])
        if kind == "tool":
            name, _, args = arg.partition(" ")
            if not isinstance(a, CallTool) or a.name != name:
                return False
            want = json.loads(args) if args.strip() else {}
            return all(a.args.get(k) == v for k, v in want.items())
        if kind == "transfer":
            queue, _, reason = arg.partition(" ")
            return isinstance(a, Transfer) and a.queue == queue and (not reason or a.reason == reason.strip())
        if kind == "hangup":
            return isinstance(a, Hangup) and (not arg or a.reason == arg)
        raise AssertionError(f"{where}: unknown expectation '{kind}'")


def run_scenario_file(path: Path, demo_map: IntentMap, classifier: IntentClassifier) -> ScenarioRun:
    headers: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        if line.startswith("# ") and ":" in line:
            key, _, value = line[2:].partition(":")
            headers.setdefault(key.strip(), value.strip())
    engine = ConversationEngine(
        demo_map, classifier, call_id=path.stem,
        today=date.fromisoformat(headers.get("today", TODAY.isoformat())),
        kill_switch=headers.get("kill_switch", "false") == "true",
    )
    run = ScenarioRun(engine)
    run.feed(CallStarted(caller_id=headers.get("caller_id", "+15551230001")))
    for n, raw in enumerate(lines, 1):
        where = f"{path.name}:{n}"
        line = raw.rstrip()
        try:
            if line.startswith("> "):
                item = parse_script_line(line[2:])
                assert item is not None, f"{where}: empty caller line"
                if isinstance(item, Control):
                    if item.kind == "kill_switch":
                        engine.kill_switch = True
                        run.feed(Timeout("silence"))
                    continue
                run.feed(item)
            elif line.startswith("! "):
                assert run.last_call is not None, f"{where}: no tool call to answer"
                status, _, rest = line[2:].partition(" ")
                call_id = run.last_call.call_id
                if status == "ok":
                    run.feed(ToolResult(call_id, True, json.loads(rest or "{}")))
                elif status == "submitted":
                    run.feed(ToolResult(call_id, True, json.loads(rest or "{}"), submitted=True))
                elif status == "error":
                    run.feed(ToolResult(call_id, False, {"detail": "test"}, error=rest.strip()))
                else:
                    raise AssertionError(f"{where}: bad tool result line")
            elif line.startswith("< "):
                run.expect(line[2:], where)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- conversation so far ---\n" + "\n".join(run.log)) from None
    return run


@pytest.fixture
def run_scenario(demo_map: IntentMap, classifier: IntentClassifier) -> Callable[[Path], ScenarioRun]:
    return lambda path: run_scenario_file(path, demo_map, classifier)
