"""Supervision in the agent process, with fakes: the takeover request's checks, the context a taken-over
(or too long) call carries, the live card, the takeover itself (channel variables, handoff, audit), and
the maximum call duration handing the caller to the intent's queue."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ari_agent.call.forced_handoff import forced_context, max_duration_handoff
from ari_agent.call.live_calls import live_card
from ari_agent.call.manager import CallManager
from ari_agent.call.supervision import Supervision
from ari_agent.call.takeover import TakeoverError, TakeoverRequest, TakeoverResult
from ari_agent.config import Config, load_config
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.seam import CallStarted, Utterance
from ari_agent.telephony.events import Channel


@pytest.mark.parametrize("raw", [
    "not json", "[]", '{"call_id": "c1", "by": "boss"}',  # no destination
    '{"call_id": "c1", "by": "boss", "queue": "support", "interface": "PJSIP/1"}',  # both
    '{"call_id": "c1", "by": "boss", "interface": "PJSIP/1,,Dial(x)"}',  # dialplan injection
    '{"call_id": "c 1", "by": "boss", "queue": "support"}', '{"call_id": "c1", "by": 3, "queue": "support"}'])
def test_bad_takeover_requests_are_refused(raw: str) -> None:
    with pytest.raises(TakeoverError):
        TakeoverRequest.from_json(raw)


def test_a_takeover_request_round_trips() -> None:
    req = TakeoverRequest.new("call-1", "boss", interface="Local/supervisor-desk@agent-desk/n")
    again = TakeoverRequest.from_json(req.to_json())
    assert again == req and again.target == "takeover" and req.request_id.startswith("tk-")
    assert TakeoverRequest.new("call-1", "boss", queue="billing").target == "billing"
    assert TakeoverResult.from_json("{}") is None


def _engine(demo_map: IntentMap, classifier: IntentClassifier) -> ConversationEngine:
    engine = ConversationEngine(demo_map, classifier, call_id="call-1")
    engine.handle(CallStarted(caller_id="+15551230001"))
    engine.handle(Utterance("where is my order"))
    engine.handle(Utterance("four five six seven"))
    return engine


def test_the_context_of_a_call_taken_out_of_the_engines_hands(demo_map: IntentMap,
                                                              classifier: IntentClassifier) -> None:
    engine = _engine(demo_map, classifier)
    before = engine.state
    ctx = forced_context(engine, "supervisor_takeover", "taken over by supervisor boss")
    assert ctx["intent"] == "order_status" and ctx["condition"] == "supervisor_takeover"
    assert ctx["verified_identity"] == "not verified" and ctx["caller_id"] == "+15551230001"
    assert "request: order_status" in ctx["summary"]
    assert engine.state == before  # read-only
    queue, ctx = max_duration_handoff(engine, "support")
    assert queue == "support" and ctx["condition"] == "max_duration" and ctx["intent"] == "order_status"
    assert max_duration_handoff(None, "fallback")[0] == "fallback"


@dataclass
class FakeConversation:
    engine: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeCall:
    call_id: str
    conversation: Any
    caller: Channel = field(default_factory=lambda: Channel("chan-1", caller_number="+15551230001"))
    started_at: float = 0.0
    caller_gone: asyncio.Event = field(default_factory=asyncio.Event)
    handoffs: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    ok: bool = True
    media_lost: asyncio.Event = field(default_factory=asyncio.Event)

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None,
                      **_: Any) -> bool:
        self.handoffs.append((queue, reason, dict(context or {})))
        return self.ok


@dataclass
class SpeakingConversation(FakeConversation):
    """A conversation that can announce a forced handoff: records what it said, and when (relative to
    the handoffs of ``call``); ``hang``: never finishes saying it; ``fail``: raises."""

    call: Any = None
    said: list[tuple[str, int]] = field(default_factory=list)
    hang: bool = False
    fail: bool = False
    released: int = 0

    async def announce_handoff(self, text: str) -> bool:
        self.said.append((text, len(self.call.handoffs)))
        if self.fail:
            raise RuntimeError("tts down")
        if self.hang:
            await asyncio.sleep(3600)
        return True

    def handoff_failed(self) -> None:
        self.released += 1


class FakeAri:
    def __init__(self) -> None:
        self.variables: list[tuple[str, str, str]] = []

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        self.variables.append((channel_id, name, value))


def test_the_live_card_is_redacted_and_follows_the_engine(demo_map: IntentMap, classifier: IntentClassifier) -> None:
    said = [{"kind": "heard", "text": "my card is 4111 1111 1111 1111"}, {"kind": "say", "text": "Hi"}]
    conv = FakeConversation(_engine(demo_map, classifier), said)
    card = live_card(FakeCall("call-1", conv, started_at=100.0), now_mono=160.0, now_wall=1000.0)
    assert card["started_at"] == 940.0 and card["intent"] == "order_status" and card["state"] == "with_agent"
    assert "4111 1111" not in json.dumps(card) and card["transcript"][0]["who"] == "caller"
    empty = live_card(FakeCall("call-2", FakeConversation()))
    assert empty["phase"] == "starting" and empty["intent"] == ""


def _cfg(tmp_path: Path, **env: str) -> Config:
    return load_config(None, env={"ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
                                  "ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(tmp_path / "audit.jsonl"), **env})


async def test_a_takeover_sets_the_interface_hands_off_and_is_audited(tmp_path: Path, demo_map: IntentMap,
                                                                      classifier: IntentClassifier) -> None:
    ari = FakeAri()
    call = FakeCall("call-1", FakeConversation(_engine(demo_map, classifier)))
    sup = Supervision(_cfg(tmp_path), ari, lambda: {call.call_id: call})  # type: ignore[arg-type]
    req = TakeoverRequest.new("call-1", "boss", interface="PJSIP/1001")
    result = await sup.take_over(call, req)
    assert result.ok and result.detail == "handed to PJSIP/1001"
    assert ("chan-1", "__ARI_AGENT_TAKEOVER_INTERFACE", "PJSIP/1001") in ari.variables
    queue, reason, ctx = call.handoffs[0]
    assert (queue, reason, ctx["intent"], ctx["taken_over_by"]) == ("takeover", "supervisor_takeover",
                                                                     "order_status", "boss")
    call.caller_gone.set()
    late = await sup.take_over(call, TakeoverRequest.new("call-1", "boss", queue="billing"))
    assert not late.ok and late.detail == "the caller has hung up" and len(call.handoffs) == 1
    await sup.close()
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["data"]["ok"]) for r in lines] == [("takeover", True), ("takeover", False)]


@dataclass
class Outcome:
    ended_by: str = "unknown"


async def test_the_maximum_duration_hands_the_caller_to_the_intents_queue(tmp_path: Path, demo_map: IntentMap,
                                                                         classifier: IntentClassifier) -> None:
    cfg = _cfg(tmp_path, ARI_AGENT__AGENT__MAX_CALL_S="0.05", ARI_AGENT__SUPERVISION__ENABLED="false")
    manager = CallManager(cfg, FakeAri(), FakeConversation)  # type: ignore[arg-type]
    assert manager.session_cfg.agent.max_call_s == pytest.approx(0.05 + cfg.agent.max_call_grace_s)
    call = FakeCall("call-1", FakeConversation(_engine(demo_map, classifier)))
    call.outcome = Outcome()  # type: ignore[attr-defined]
    manager.sessions["call-1"] = call  # type: ignore[assignment]
    await manager._max_duration(call)  # type: ignore[arg-type]
    assert [(q, r) for q, r, _ in call.handoffs] == [("support", "max_duration")]
    assert call.handoffs[0][2]["intent"] == "order_status"
    gone = FakeCall("call-2", FakeConversation())
    gone.outcome = Outcome()  # type: ignore[attr-defined]
    gone.caller_gone.set()
    manager.sessions["call-2"] = gone  # type: ignore[assignment]
    await manager._max_duration(gone)  # type: ignore[arg-type]
    assert gone.handoffs == []


async def test_a_redis_that_stays_away_is_one_warning_not_one_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    from ari_agent.call.live_calls import follow_channel
    from ari_agent.devtools.backend_process import free_port

    lost: list[int] = []

    async def on_message(raw: object) -> None:
        raise AssertionError("nothing can arrive from a Redis that is not there")

    caplog.set_level("DEBUG", logger="ari_agent.call.live_calls")
    task = asyncio.create_task(follow_channel(f"redis://127.0.0.1:{free_port()}/0", "ch", on_message,
                                              what="takeover requests", on_lost=lambda: lost.append(1),
                                              retry_s=0.01))
    while len(lost) < 5:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mine = [r for r in caplog.records if r.name == "ari_agent.call.live_calls"]
    assert [r.levelname for r in mine].count("WARNING") == 1
    assert sum(1 for r in mine if r.levelname == "DEBUG") >= 4


def _speaking_call(demo_map: IntentMap, classifier: IntentClassifier, **kw: Any) -> FakeCall:
    conv = SpeakingConversation(_engine(demo_map, classifier), **kw)
    call = FakeCall("call-1", conv)
    conv.call = call
    return call


async def test_a_takeover_is_announced_before_the_caller_is_moved(tmp_path: Path, demo_map: IntentMap,
                                                                  classifier: IntentClassifier) -> None:
    call = _speaking_call(demo_map, classifier)
    sup = Supervision(_cfg(tmp_path), FakeAri(), lambda: {call.call_id: call})  # type: ignore[arg-type]
    result = await sup.take_over(call, TakeoverRequest.new("call-1", "boss", queue="billing"))
    assert result.ok and call.conversation.said == [(demo_map.spec.prompts.takeover, 0)]  # said, then moved
    assert [q for q, _, _ in call.handoffs] == ["billing"]
    call.ok = False  # ARI refuses the handoff: the line goes back to the conversation
    await sup.take_over(call, TakeoverRequest.new("call-1", "boss", queue="billing"))
    assert call.conversation.released == 1
    await sup.close()


@pytest.mark.parametrize("trouble", ["fail", "media_lost", "caller_leaves"])
async def test_a_takeover_that_cannot_be_announced_transfers_at_once(tmp_path: Path, demo_map: IntentMap,
                                                                     classifier: IntentClassifier,
                                                                     trouble: str) -> None:
    call = _speaking_call(demo_map, classifier, fail=trouble == "fail", hang=trouble != "fail")
    sup = Supervision(_cfg(tmp_path), FakeAri(), lambda: {call.call_id: call})  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    if trouble == "media_lost":
        loop.call_later(0.05, call.media_lost.set)
    started = loop.time()
    if trouble == "caller_leaves":  # gone while it plays: nothing is handed off, nothing waits
        loop.call_later(0.05, call.caller_gone.set)
        result = await asyncio.wait_for(sup.take_over(call, TakeoverRequest.new("call-1", "boss", queue="billing")),
                                        2.0)
        assert call.conversation.said and loop.time() - started < 1.0
        await sup.close()
        return
    result = await asyncio.wait_for(sup.take_over(call, TakeoverRequest.new("call-1", "boss", queue="billing")), 2.0)
    assert result.ok and [q for q, _, _ in call.handoffs] == ["billing"]
    assert loop.time() - started < 1.0  # no waiting on a line that cannot be heard
    await sup.close()


async def test_the_maximum_duration_is_announced_from_the_maps_prompt(tmp_path: Path, demo_map: IntentMap,
                                                                      classifier: IntentClassifier) -> None:
    cfg = _cfg(tmp_path, ARI_AGENT__AGENT__MAX_CALL_S="0.05", ARI_AGENT__SUPERVISION__ENABLED="false")
    manager = CallManager(cfg, FakeAri(), FakeConversation)  # type: ignore[arg-type]
    call = _speaking_call(demo_map, classifier)
    call.outcome = Outcome()  # type: ignore[attr-defined]
    manager.sessions["call-1"] = call  # type: ignore[assignment]
    await manager._max_duration(call)  # type: ignore[arg-type]
    assert call.conversation.said == [(demo_map.spec.prompts.max_duration, 0)]
    assert [(q, r) for q, r, _ in call.handoffs] == [("support", "max_duration")]
    call.media_lost.set()  # media gone: straight to the handoff, nothing said
    call.handoffs.clear()
    await manager._max_duration(call)  # type: ignore[arg-type]
    assert len(call.conversation.said) == 1 and len(call.handoffs) == 1


def test_the_forced_handoff_prompts_are_the_maps_and_checked_at_load(demo_map: IntentMap) -> None:
    from ari_agent.call.forced_handoff import forced_prompt
    from ari_agent.conversation.intent_map import parse_intent_map
    from ari_agent.errors import ConfigError

    class View:
        def __init__(self, m: IntentMap) -> None:
            self.map = m

    assert forced_prompt(None, "takeover") == demo_map.spec.prompts.takeover
    assert forced_prompt(View(demo_map), "max_duration") == demo_map.spec.prompts.max_duration  # type: ignore[arg-type]
    broken = Path(__file__).parents[2] / "data/conversation/broken_maps/forced_handoff_prompt_unknown_name.yaml"
    text = broken.read_text()
    with pytest.raises(ConfigError) as err:
        parse_intent_map(text, "map.yaml")
    assert err.value.key_path == "prompts.takeover" and "caller_name" in err.value.reason
    with pytest.raises(ConfigError) as err:
        parse_intent_map(text.replace('"Hold on, {caller_name}."', '""'), "map.yaml")
    assert err.value.key_path == "prompts.takeover"
    ok = parse_intent_map(text.replace("{caller_name}", "this is {business_name}"), "map.yaml")
    assert forced_prompt(View(ok), "takeover") == "Hold on, this is us."  # type: ignore[arg-type]
