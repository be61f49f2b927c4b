"""Governance in the call layer, on the fake line of ``tests/unit/call`` (real speech loop, real engine):
tool calls and transfers are audited; the kill switch hands a call in progress off at its next turn
and sends a new call straight to the queue. The switch is flipped through the override file with
Redis unreachable (the watch's own poll finds it)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ari_agent.call.services import VoiceLoopSettings, VoiceServices
from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.governance.approval import load_checked_map
from ari_agent.governance.audit import AuditLog, verify_file
from ari_agent.governance.killswitch import KillSwitchWatch
from ari_agent.governance.runtime import Governance
from ari_agent.integrations.runner import ToolRunner
from ari_agent.media.pcm import Codec
from ari_agent.seam import CallTool, ToolResult
from ari_agent.speech.tts import PromptCache
from ari_agent.telephony.rtp_transport import RtpEndpoint
from tests.unit.call.conftest import FakeLine, FastTicker, ScriptedRecognizer, ToneVoice

KEY = b"wiring-test-audit-key-0123456789"


class Call:
    def __init__(self, services: VoiceServices, texts: list[str], call_id: str) -> None:
        self.endpoint = RtpEndpoint(Codec.ULAW, lambda f: None, send_silence=True)
        self.ticker = FastTicker(self.endpoint)
        self.ticker.start()
        self.line = FakeLine(call_id=call_id, endpoint=self.endpoint)
        recognizer = ScriptedRecognizer(texts)
        services.recognizer = lambda: recognizer  # type: ignore[method-assign]
        self.conversation = VoiceConversation(services)
        self.task = asyncio.create_task(self.conversation.run(self.line))

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.conversation.events]

    async def until(self, predicate: Callable[[], bool], deadline_s: float = 10.0) -> None:
        deadline = time.monotonic() + deadline_s
        while not predicate():
            assert not self.task.done() or predicate(), self.conversation.events
            assert time.monotonic() < deadline, self.conversation.events
            await asyncio.sleep(0.005)

    async def until_listening(self, n: int) -> None:
        await self.until(lambda: self.kinds().count("listen") >= n and not self.endpoint.playing)
        await asyncio.sleep(0.005)

    async def end(self) -> None:
        await asyncio.wait_for(self.task, 10)
        await self.ticker.stop()


@pytest.fixture
async def services(demo_map: IntentMap, classifier: IntentClassifier,
                   tmp_path: Path) -> AsyncIterator[VoiceServices]:
    async with running_demo_backend() as backend:
        loaded = load_checked_map(DEMO_MAP_PATH, production=False, key=None)
        watch = KillSwitchWatch("redis://127.0.0.1:1/0", override_file=tmp_path / "killswitch.on", poll_s=0.02)
        governance = Governance(loaded, AuditLog(tmp_path / "audit.jsonl", KEY, map_version=loaded.version), watch)
        await governance.start()
        s = VoiceServices(demo_map, classifier, ToolRunner(demo_map.tools_config, base_url=backend),
                          PromptCache(ToneVoice(), tmp_path / "prompts"), VoiceLoopSettings(tool_timeout_s=2.0),
                          governance=governance)
        yield s
        await s.aclose()


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    assert verify_file(tmp_path / "audit.jsonl", KEY).ok
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


async def test_tool_calls_and_transfers_are_audited(services: VoiceServices, tmp_path: Path) -> None:
    call = Call(services, ["where is my order", "four five six seven", "I want to talk to a person"], "call-a")
    for turn in (1, 2, 3):
        await call.until_listening(turn)
        await call.line.say()
    await call.end()
    assert services.governance is not None and services.governance.audit is not None
    services.governance.audit.flush()
    records = _audit(tmp_path)
    tool = next(r for r in records if r["kind"] == "tool_call")
    assert tool["data"] == {**tool["data"], "call_id": "call-a", "tool": "lookup_order", "outcome": "ok"}
    assert tool["map_version"] == services.governance.map_version
    transfer = next(r for r in records if r["kind"] == "transfer")
    assert transfer["data"] == {**transfer["data"], "call_id": "call-a", "ok": True}
    assert call.line.handoffs and call.line.handoffs[0].queue == transfer["data"]["queue"]


async def test_kill_switch_hands_off_calls_in_progress_and_new_calls(services: VoiceServices,
                                                                      tmp_path: Path) -> None:
    gov = services.governance
    assert gov is not None and gov.kill_switch is not None
    call = Call(services, ["where is my order", "four five six seven"], "in-progress")
    await call.until_listening(1)
    await call.line.say()
    await call.until_listening(2)  # asked for the order number
    (tmp_path / "killswitch.on").write_text("")
    await call.until(lambda: call.conversation.engine.kill_switch)
    await call.line.say()  # the caller answers: this turn ends in the handoff, no tool call
    await call.end()
    assert [h.reason for h in call.line.handoffs] == ["kill_switch"]
    assert "tool" not in call.kinds()
    said = [e["text"] for e in call.conversation.events if e["kind"] == "say"]
    assert services.intent_map.spec.prompts.kill_switch in said

    fresh = Call(services, [], "new-call")
    await fresh.end()
    assert [h.reason for h in fresh.line.handoffs] == ["kill_switch"]
    assert "listen" not in fresh.kinds()  # straight to the queue: not even the greeting's question
    assert gov.audit is not None
    gov.audit.flush()
    transfers = [r["data"] for r in _audit(tmp_path) if r["kind"] == "transfer"]
    assert [(t["call_id"], t["reason"]) for t in transfers] == [("in-progress", "kill_switch"),
                                                                ("new-call", "kill_switch")]


async def test_a_tool_that_never_answers_is_audited_as_timeout(services: VoiceServices, tmp_path: Path) -> None:
    class Silent:
        async def run(self, call: CallTool) -> ToolResult:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        async def aclose(self) -> None:
            pass

    real = services.tools
    services.tools = Silent()  # type: ignore[assignment]
    services.settings = VoiceLoopSettings(tool_timeout_s=0.2)
    try:
        call = Call(services, ["where is my order", "four five six seven"], "call-t")
        for turn in (1, 2):
            await call.until_listening(turn)
            await call.line.say()
        await call.end()
    finally:
        services.tools = real
    assert services.governance is not None and services.governance.audit is not None
    services.governance.audit.flush()
    tools = [r["data"] for r in _audit(tmp_path) if r["kind"] == "tool_call"]
    assert [(t["call_id"], t["tool"], t["outcome"]) for t in tools] == [("call-t", "lookup_order", "timeout")]
