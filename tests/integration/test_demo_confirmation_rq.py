"""The demo map's slow write end to end: a caller confirms an appointment, the agent queues the
confirmation text on a real redis-server, a real ``ari-agent worker`` sends it to the real demo backend
(``ari-agent backend`` in a subprocess), and the backend records it exactly once — also when the same
call is played again (same idempotency keys, as after a retry or an agent restart)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ari_agent.cli.chat import TextCall
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.conversation.nlu import build_classifier
from ari_agent.conversation.script import parse_script_line
from ari_agent.integrations.runner import ToolRunner
from ari_agent.seam import CallStarted

from .conftest_redis import Workers, demo_backend, redis_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

CALLER = ["I want to confirm my appointment", "1001", "SW1A 1AA", "yes please", "no thanks"]


def _messages(backend: str) -> dict[str, Any]:
    with urllib.request.urlopen(backend + "/messages", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


async def _wait_for_messages(backend: str, count: int, workers: Workers, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = await asyncio.to_thread(_messages, backend)
        if got["count"] >= count:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{got['count']} messages after {timeout_s} s\n{workers.logs()}")
        await asyncio.sleep(0.05)


async def _play(backend: str, redis_url: str, call_id: str) -> list[str]:
    intent_map = load_intent_map()
    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False)
    engine = ConversationEngine(intent_map, classifier, call_id=call_id, today=date.today())
    lines: list[str] = []
    async with ToolRunner(intent_map.tools_config, base_url=backend, redis_url=redis_url) as runner:
        call = TextCall(engine, runner.run, lines.append)
        await call.play(CallStarted(caller_id="+15551230001"))
        for text in CALLER:
            item = parse_script_line(text)
            assert item is not None
            await call.play(item)
    assert engine.ended, "\n".join(lines)
    return lines


async def test_the_confirmation_text_is_queued_then_sent_once(
        redis_server: str, demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    workers = Workers(redis_server, tmp_path, "ari-agent-writes")
    try:
        # No worker yet: the caller is told the text is sent once it is queued; nothing reached the backend.
        first = await _play(demo_backend, redis_server, "it-confirm-1")
        transcript = "\n".join(first)
        assert "I've sent a text message confirming it" in transcript, transcript
        assert '"state": "queued"' in transcript, transcript
        assert _messages(demo_backend)["count"] == 0
        workers.start()
        workers.start()  # two workers on the queue: still one message
        sent = await _wait_for_messages(demo_backend, 1, workers)
        # The same call again (same keys): the agent is answered from the finished job, the backend sends nothing.
        again = "\n".join(await _play(demo_backend, redis_server, "it-confirm-1"))
        assert "I've sent a text message confirming it" in again, again
        assert '"state": "already_done"' in again or '"state": "already_submitted"' in again, again
        await asyncio.sleep(1.0)  # a duplicate, if any, would have had time to land
    finally:
        workers.stop_all()
    final = _messages(demo_backend)
    assert final["count"] == 1, final
    message = sent["messages"][0]
    assert message["customer_id"] == "C-1001" and message["appointment_id"] == "A-100"
    assert message["to"] == "+15551230001" and "boiler service" in message["text"]
    assert message["idempotency_key"].startswith("appointment_confirm-")


def test_doctor_reports_redis_and_the_worker(redis_server: str, tmp_path: Path) -> None:  # noqa: F811
    from ari_agent.config import Config, RedisConfig
    from ari_agent.ops.doctor import check_write_queue

    def checks(url: str) -> dict[str, Any]:
        cfg = Config(redis=RedisConfig(url=url, spool_path=tmp_path / "spool.jsonl"))
        return {c.name: c for c in check_write_queue(cfg)}

    down = checks("redis://127.0.0.1:9/0")
    assert not down["redis"].ok and "spool.jsonl" in down["redis"].detail and not down["worker"].ok
    idle = checks(redis_server)
    assert idle["redis"].ok and not idle["worker"].ok and "ari-agent-writes" in idle["worker"].detail
    workers = Workers(redis_server, tmp_path, "ari-agent-writes")
    try:
        workers.start()
        deadline = time.monotonic() + 30
        while not (served := checks(redis_server))["worker"].ok:
            assert time.monotonic() < deadline, workers.logs()
            time.sleep(0.1)
        assert "it-worker-0" in served["worker"].detail and "send_confirmation" in served["worker"].detail
    finally:
        workers.stop_all()
