"""Redis down during calls: the calls go on, every accepted slow write is applied once.

Real redis-server (AOF, SIGKILLed and restarted), real ``ari-agent worker``, real demo backend. The
long drill is ``ari-agent bench drill redis-outage --cycles 100 --down-s 30`` (docs/fault-drills.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu.classifier import build_classifier
from ari_agent.conversation.nlu.interface import IntentClassifier
from ari_agent.devtools.backend_process import BackendProcess
from ari_agent.devtools.drill_calls import EngineCall, callback_map
from ari_agent.devtools.drill_redis import OutageSettings, passed, run_redis_outage_drill
from ari_agent.devtools.drill_services import RedisProcess, WorkerSupervisor
from ari_agent.integrations.runner import ToolRunner
from ari_agent.seam import CallStarted, ToolResult, Utterance

pytestmark = [pytest.mark.integration, pytest.mark.fault]


async def test_short_outage_drill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    settings = OutageSettings(cycles=3, down_s=2.0, up_s=2.0, rate_per_s=5.0, drain_timeout_s=120)
    figures = await run_redis_outage_drill(settings, tmp_path)
    print("\nREDIS OUTAGE FIGURES " + json.dumps(figures, sort_keys=True))
    assert figures["submitted_during_outage"] > 0 and figures["spooled_total"] > 0, figures
    assert passed(figures), figures  # 0 lost, 0 duplicated, 0 refused


async def _callback_call(n: int, runner: ToolRunner, intent_map: IntentMap,
                         classifier: IntentClassifier) -> EngineCall:
    call = EngineCall(ConversationEngine(intent_map, classifier, call_id=f"outage-{n}"), runner.run)
    await call.feed(CallStarted(caller_id=f"+1555100{n:04d}"))
    await call.feed(Utterance("can someone call me back please", 0.95, True))
    await call.feed(Utterance("yes please", 0.95, True))
    return call


async def test_calls_during_an_outage_are_told_the_truth_and_their_writes_land_once(tmp_path: Path) -> None:
    intent_map = callback_map()
    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False)
    redis_srv = RedisProcess(tmp_path / "redis")
    backend = BackendProcess(tmp_path / "backend")
    await asyncio.to_thread(redis_srv.start)
    await asyncio.to_thread(backend.start)
    workers = WorkerSupervisor(redis_srv.url, intent_map.tools_config.write_queue.name, tmp_path / "workers")
    try:
        await workers.start()
        async with ToolRunner(intent_map.tools_config, base_url=backend.url, redis_url=redis_srv.url,
                              spool_path=tmp_path / "spool.jsonl", spool_replay_interval_s=0.5) as runner:
            before = await _callback_call(0, runner, intent_map, classifier)
            await asyncio.to_thread(redis_srv.stop, "kill")
            during = await asyncio.gather(*(_callback_call(n, runner, intent_map, classifier) for n in range(1, 6)))
            await asyncio.to_thread(redis_srv.start)
            calls = [before, *during]
            keys = {c.tool_calls[0].idempotency_key for c in calls}
            deadline = time.monotonic() + 90
            while True:
                counts = (await asyncio.to_thread(backend.get_json, "/writes/counts"))["per_key"]
                if keys <= set(counts) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        for call in calls:
            outcome = call.tool_outcomes[0]
            assert isinstance(outcome, ToolResult) and outcome.ok and outcome.submitted, outcome
            assert call.transferred is None, [h.text for h in call.said]
            assert any("callback request is booked" in h.text for h in call.said), [h.text for h in call.said]
        states = [o.data["state"] for c in calls for o in c.tool_outcomes if isinstance(o, ToolResult)]
        assert states == ["queued"] + ["spooled"] * len(during), states
        assert {k: counts.get(k, 0) for k in keys} == {k: 1 for k in keys}  # applied, each exactly once
    finally:
        await workers.stop()
        await asyncio.to_thread(backend.stop)
        await asyncio.to_thread(redis_srv.stop, "term")


async def test_with_neither_redis_nor_a_spool_the_caller_is_handed_off_not_promised(tmp_path: Path) -> None:
    intent_map = callback_map()
    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False)
    (tmp_path / "not-a-dir").write_text("x")  # the spool cannot be created under a file
    redis_srv = RedisProcess(tmp_path / "redis")  # never started: connection refused
    async with ToolRunner(intent_map.tools_config, base_url="http://127.0.0.1:9", redis_url=redis_srv.url,
                          spool_path=tmp_path / "not-a-dir" / "spool.jsonl") as runner:
        call = await _callback_call(9, runner, intent_map, classifier)
    outcome = call.tool_outcomes[0]
    assert isinstance(outcome, ToolResult) and outcome.error == "queue_unavailable"
    assert call.transferred is not None and call.transferred.reason == "tool_error"
    assert not any("booked" in h.text for h in call.said)
