"""Text mode: each scenario drives the real ``ConversationEngine`` against the real tools.

Every scenario gets a fresh demo backend (``devtools.demo_backend``: real aiohttp over a fresh
SQLite database, so one scenario's writes never leak into the next) and a fresh ``ToolRunner``;
the engine's actions are carried out by the same ``ActionInterpreter`` as a phone call and
``ari-agent chat``, with a handler that records what happened (``CallTrace``) instead of speaking.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from ari_agent.call.actions import ActionInterpreter, action_record, event_line
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.evaluation.scenario import Scenario
from ari_agent.evaluation.trace import CallTrace, ToolCallTrace
from ari_agent.integrations.runner import ToolRunner
from ari_agent.records.call_facts import REQUEST_NOTE, hangup_outcome
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Event,
    Hangup,
    Listen,
    Say,
    Timeout,
    Transfer,
)


class TextModeRunner:
    """Runs scenarios on one intent map and classifier; ``force_kill_switch`` runs every call in
    transfer-only mode (the "automation off" configuration)."""

    def __init__(self, intent_map: IntentMap, classifier: IntentClassifier, *, today: dt.date,
                 force_kill_switch: bool = False) -> None:
        self.map = intent_map
        self.classifier = classifier
        self.today = today
        self.force_kill_switch = force_kill_switch

    async def run(self, scenario: Scenario) -> CallTrace:
        trace = CallTrace(scenario.id, started_at=dt.datetime.now(dt.UTC))
        async with running_demo_backend(self.today) as base_url:
            if scenario.backend_faults:
                await _set_faults(base_url, dict(scenario.backend_faults))
            async with ToolRunner(self.map.tools_config, base_url=base_url) as tools:
                await self._play(scenario, tools, trace)
        trace.ended_at = dt.datetime.now(dt.UTC)
        return trace

    async def _play(self, scenario: Scenario, tools: ToolRunner, trace: CallTrace) -> None:
        kill = scenario.kill_switch or self.force_kill_switch
        engine = ConversationEngine(self.map, self.classifier, call_id=f"eval-{scenario.id}", kill_switch=kill,
                                    today=self.today)
        call = _RecordingCall(engine, tools, trace)
        trace.kill_switch_on = kill
        await call.feed(CallStarted(caller_id=scenario.caller_id))
        for turn in scenario.turns:
            if call.ended:
                trace.unused_turns += 1
                continue
            if turn.hangup:
                trace.transcript.append("CALLER  [hangs up]")
                trace.outcome = "caller_hung_up"
                break
            if turn.kill_switch:
                engine.kill_switch = True
                trace.kill_switch_on = True
                trace.transcript.append("        [kill switch turned on]")
                await call.feed(Timeout("silence"))  # as in chat: the next turn ends in the transfer
                continue
            for event in turn.events():
                if call.ended:
                    break
                if not isinstance(event, BargeIn):
                    trace.turns += 1
                await call.feed(event)
        call.finish()


class _RecordingCall:
    """The ``ActionHandler`` of text mode: carries out the engine's actions and records them."""

    def __init__(self, engine: ConversationEngine, tools: ToolRunner, trace: CallTrace) -> None:
        self.engine = engine
        self.tools = tools
        self.trace = trace
        self.notes_seen = 0
        self.last_listen: Listen | None = None
        self.interpreter = ActionInterpreter(self._decide, self, observe=self._observe)

    @property
    def ended(self) -> bool:
        return self.interpreter.ended or self.engine.ended

    async def feed(self, event: Event) -> None:
        self.trace.transcript.append(event_line(event))
        await self.interpreter.feed(event)

    def finish(self) -> None:
        self._collect_notes()
        if self.trace.outcome == "open" and not self.ended:
            phase = self.engine.state.phase
            self.trace.transcript.append(f"        [end of script; call still open in phase '{phase}']")

    async def _decide(self, event: Event) -> list[Action]:
        t0 = time.perf_counter()
        actions = self.engine.handle(event)
        self.trace.add_stage("engine", (time.perf_counter() - t0) * 1000)
        self._collect_notes()
        return actions

    def _collect_notes(self) -> None:
        new = self.engine.notes[self.notes_seen:]
        self.notes_seen = len(self.engine.notes)
        for note in new:
            self.trace.notes.append(note)
            if note.startswith(REQUEST_NOTE):
                name = note[len(REQUEST_NOTE):].split(" ", 1)[0]
                self.trace.intents.append(name)

    def _observe(self, action: Action) -> None:
        r = action_record(action)
        if isinstance(action, Say):
            self.trace.says.append(action.text)
            self.trace.transcript.append(f"AGENT   {action.text}")
        elif isinstance(action, Listen):
            if self.trace.kill_switch_on:
                self.trace.listens_after_kill_switch += 1
            self.last_listen = action
            self.trace.transcript.append(f"        [listen: {r['detail']}]")
        elif isinstance(action, CallTool):
            self.trace.transcript.append(f"        [tool {action.name} {r['args']}]")
        elif isinstance(action, Transfer):
            self.trace.transcript.append(f"        [TRANSFER to queue '{action.queue}', reason {action.reason}]")
        elif isinstance(action, Hangup):
            self.trace.transcript.append(f"        [HANGUP: {action.reason}]")

    # ---------------------------------------------------------------- ActionHandler

    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        return None

    async def listen(self, action: Listen) -> Event | None:
        return None  # the scenario's next turn is the answer

    async def call_tool(self, action: CallTool) -> Event:
        intent = self.engine.state.intent
        record = ToolCallTrace(action.name, dict(action.args), intent,
                               after_yes_no=self.last_listen is not None and self.last_listen.expect.kind == "yes_no",
                               in_transfer_only_mode=self.trace.kill_switch_on)
        t0 = time.perf_counter()
        result = await self.tools.run(action)
        record.ms = (time.perf_counter() - t0) * 1000
        self.trace.add_stage("tool", record.ms)
        record.ok, record.error = result.ok, result.error
        record.data = {k: v for k, v in result.data.items() if not isinstance(v, (list, dict))}
        self.trace.tools.append(record)
        self.trace.transcript.append(f"        [result {'ok' if result.ok else 'error ' + str(result.error)}]")
        return result

    async def transfer(self, action: Transfer) -> None:
        self.trace.outcome = "transferred"
        self.trace.queue = action.queue
        self.trace.reason = action.reason

    async def hangup(self, action: Hangup) -> None:
        # A goodbye before any request was served is the caller leaving, not a resolution.
        self._collect_notes()
        self.trace.outcome = hangup_outcome(action.reason, self.trace.notes)  # the same rule as a call record's
        self.trace.hangup_reason = action.reason


async def _set_faults(base_url: str, faults: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.put(f"{base_url}/_faults", json=faults) as resp:
        if resp.status != 200:
            from ari_agent.errors import AriAgentError

            raise AriAgentError(f"the demo backend refused backend_faults {faults}: {await resp.text()}")
