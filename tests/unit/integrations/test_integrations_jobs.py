"""The write job function and its payload, without redis (RQ runs it with a connection)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from ari_agent.devtools.demo_backend import DemoStore, create_app
from ari_agent.integrations.contracts import RecordWriteRequest
from ari_agent.integrations.http_adapter import PreparedRequest, prepare_request
from ari_agent.integrations.jobs import WriteFailed, WriteJob, WriteQueue, perform_write
from ari_agent.integrations.tools_config import HttpToolSpec, WriteQueueSettings

SPEC = HttpToolSpec(method="POST", url="{base_url}/writes", write=True, async_write=True, timeout_ms=2000,
                    headers={"X-Api-Key": "${secret:DEMO_KEY}"}, request="RecordWriteRequest",
                    response="RecordWriteResponse")


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[str]:
    server = TestServer(create_app(DemoStore(tmp_path / "db", today=dt.date(2026, 11, 24)), close_store=True),
                        host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def job(base_url: str, ref: str, *, key: str = "key-1", query: dict[str, str] | None = None,
        contract: str = "RecordWriteResponse") -> WriteJob:
    req = prepare_request("record_write", SPEC, base_url, RecordWriteRequest(reference=ref), key)
    if query:
        req = PreparedRequest(req.tool, req.method, req.url, query, req.json_body, req.header_templates, 2000)
    return WriteJob(req, key, contract)


def test_payload_round_trips_through_json() -> None:
    j = job("http://x", "r")
    payload = json.loads(json.dumps(j.to_payload()))
    assert WriteJob.from_payload(payload) == j
    assert payload["request"]["header_templates"] == {"X-Api-Key": "${secret:DEMO_KEY}", "Idempotency-Key": "key-1"}


async def test_a_write_is_performed_and_a_rerun_is_replayed(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_AGENT_SECRET_DEMO_KEY", "k")
    first = await asyncio.to_thread(perform_write, job(backend, "r-1").to_payload())
    rerun = await asyncio.to_thread(perform_write, job(backend, "r-1").to_payload())
    assert first == {"ok": True, "http_status": 200, "replayed": False,
                     "data": {"write_id": 1, "reference": "r-1", "idempotency_key": "key-1"}}
    assert rerun == {**first, "replayed": True}


async def test_transient_failures_raise_so_rq_retries(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_AGENT_SECRET_DEMO_KEY", "k")
    with pytest.raises(WriteFailed, match="backend_error"):
        await asyncio.to_thread(perform_write, job(backend, "r", query={"fail": "503"}).to_payload())
    with pytest.raises(WriteFailed, match="unreachable"):
        await asyncio.to_thread(perform_write, job("http://127.0.0.1:9", "r").to_payload())
    monkeypatch.delenv("ARI_AGENT_SECRET_DEMO_KEY")
    with pytest.raises(WriteFailed, match="ARI_AGENT_SECRET_DEMO_KEY"):
        await asyncio.to_thread(perform_write, job(backend, "r").to_payload())


async def test_refusals_and_bad_answers_are_final(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARI_AGENT_SECRET_DEMO_KEY", "k")
    refused = await asyncio.to_thread(perform_write, job(backend, "r", query={"fail": "409"}).to_payload())
    assert refused["ok"] is False and refused["error"] == "rejected"
    wrong = await asyncio.to_thread(perform_write, job(backend, "r", key="key-2", contract="FaqResponse").to_payload())
    assert wrong["ok"] is False and wrong["error"] == "contract_violation"


def test_submit_refuses_unsafe_keys() -> None:
    import redis

    wq = WriteQueue(redis.Redis(port=9), WriteQueueSettings())
    with pytest.raises(ValueError, match="idempotency key"):
        wq.submit(job("http://x", "r", key="not safe!"))
