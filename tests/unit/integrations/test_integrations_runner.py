"""ToolRunner against a scripted HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ari_agent.errors import ConfigError
from ari_agent.integrations.circuit import CircuitState
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.jobs import SubmitState, WriteJob
from ari_agent.integrations.runner import ToolRunner
from ari_agent.integrations.tools_config import ToolsConfig
from ari_agent.seam import CallTool, ToolResult

ORDER = {"order_number": "4567", "status": "shipped", "eta": "2026-11-26", "carrier": "UPS",
         "items": [{"name": "Headphones", "quantity": 1}]}
APPOINTMENT = {"appointment_id": "A-100", "customer_id": "C-1001", "date": "2026-11-27", "time": "10:30",
               "status": "confirmed", "description": "Boiler service"}
SECRET = "tok-9f8e7d6c5b4a-super-secret"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    delay_s: float = 0.0


@dataclass
class Script:
    replies: dict[str, deque[Reply]] = field(default_factory=dict)
    default: dict[str, Reply] = field(default_factory=dict)
    hits: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def queue(self, route: str, *replies: Reply) -> None:
        self.replies.setdefault(route, deque()).extend(replies)

    def count(self, route: str) -> int:
        return sum(1 for r, _, _ in self.hits if r == route)


def make_app(script: Script) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
        script.hits.append((route, request.path_qs, dict(request.headers)))
        pending = script.replies.get(route)
        reply = pending.popleft() if pending else script.default.get(route, Reply(500, {"error": "unscripted"}))
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body)
        return web.json_response(reply.body, status=reply.status)

    app = web.Application()
    app.router.add_get("/orders/{n}", handle)
    app.router.add_post("/appointments/{id}/confirm", handle)
    app.router.add_get("/faq/{topic}", handle)
    return app


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, Script]]:
    script = Script()
    srv = TestServer(make_app(script), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv, script
    finally:
        await srv.close()


def config(**overrides: Any) -> ToolsConfig:
    lookup: dict[str, Any] = {"url": "{base_url}/orders/{order_number}", "timeout_ms": 300, "retries": 2,
                              "backoff_ms": 20, "headers": {"Authorization": "Bearer ${secret:BACKEND_TOKEN}"}}
    lookup.update(overrides)
    return ToolsConfig.model_validate({
        "circuit_breaker": {"failure_threshold": 3, "open_s": 5},
        "definitions": {
            "lookup_order": lookup,
            "confirm_appointment": {"method": "POST", "url": "{base_url}/appointments/{appointment_id}/confirm",
                                    "write": True, "timeout_ms": 300,
                                    "headers": {"Authorization": "Bearer ${secret:BACKEND_TOKEN}"}},
            "faq": {"url": "{base_url}/faq/{topic}", "timeout_ms": 300, "retries": 0},
        },
    })


ENV = {"ARI_AGENT_SECRET_BACKEND_TOKEN": SECRET}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def call(name: str, args: dict[str, Any], n: int = 1) -> CallTool:
    return CallTool(name, args, idempotency_key(f"call-{n}", name, args), f"tool-{n}")


async def no_sleep(_: float) -> None:
    return None


async def test_a_read_returns_contract_checked_data_with_secret_headers(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.queue("/orders/{n}", Reply(200, {**ORDER, "internal": "dropped"}))
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV) as runner:
        result = await runner.run(call("lookup_order", {"order_number": 4567}))
    assert result == ToolResult("tool-1", True, ORDER, None, False)
    (_route, path, headers), = script.hits
    assert path == "/orders/4567"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert "Idempotency-Key" not in headers


async def test_reads_are_retried_with_exponential_backoff(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.queue("/orders/{n}", Reply(503, {"error": "busy"}), Reply(502, "bad gateway"), Reply(200, ORDER))
    delays: list[float] = []

    async def record_sleep(s: float) -> None:
        delays.append(s)

    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV, sleep=record_sleep) as runner:
        result = await runner.run(call("lookup_order", {"order_number": "4567"}))
    assert result.ok and script.count("/orders/{n}") == 3
    assert len(delays) == 2
    assert 0.010 <= delays[0] <= 0.020 and 0.020 <= delays[1] <= 0.040  # 20 ms * 2**n, jittered down


async def test_read_retries_stop_after_the_configured_count(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.default["/orders/{n}"] = Reply(503, {"error": "down", "detail": "maintenance"})
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV, sleep=no_sleep) as runner:
        result = await runner.run(call("lookup_order", {"order_number": "4567"}))
    assert not result.ok and result.error == "backend_error"
    assert result.data == {"http_status": 503, "detail": "maintenance"}
    assert script.count("/orders/{n}") == 3  # 1 + retries: 2


async def test_not_found_is_an_answer_and_is_not_retried(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.queue("/orders/{n}", Reply(404, {"error": "not_found", "detail": "no order 1"}))
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV, sleep=no_sleep) as runner:
        result = await runner.run(call("lookup_order", {"order_number": "1"}))
        assert result.error == "not_found" and script.count("/orders/{n}") == 1
        assert runner.breakers["lookup_order"].consecutive_failures == 0


async def test_writes_send_the_idempotency_key_and_are_never_retried(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.queue("/appointments/{id}/confirm", Reply(503, {"error": "busy"}), Reply(200, APPOINTMENT))
    c = call("confirm_appointment", {"appointment_id": "A-100"})
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV, sleep=no_sleep) as runner:
        result = await runner.run(c)
        assert not result.ok and result.error == "backend_error"
        assert script.count("/appointments/{id}/confirm") == 1
        again = await runner.run(c)  # the engine may ask again: same key, the backend dedups
    assert again.ok and again.data["status"] == "confirmed"
    keys = [h["Idempotency-Key"] for r, _, h in script.hits if r == "/appointments/{id}/confirm"]
    assert keys == [c.idempotency_key, c.idempotency_key]


async def test_a_slow_read_times_out(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.default["/faq/{topic}"] = Reply(200, {"topic": "hours", "answer": "9-5"}, delay_s=1.0)
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV) as runner:
        started = time.perf_counter()
        result = await runner.run(call("faq", {"topic": "hours"}))
    assert result.error == "timeout"
    assert time.perf_counter() - started < 0.8


async def test_a_response_off_contract_is_an_error_result(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    script.queue("/orders/{n}", Reply(200, {"order_number": "4567", "status": "lost in space"}),
                 Reply(200, "<html>oops</html>"))
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV, sleep=no_sleep) as runner:
        first = await runner.run(call("lookup_order", {"order_number": "4567"}))
        second = await runner.run(call("lookup_order", {"order_number": "4567"}))
    assert first.error == "contract_violation" and "status" in first.data["detail"]
    assert second.error == "contract_violation"


async def test_bad_calls_are_refused_before_any_io(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    async with ToolRunner(config(), base_url=str(srv.make_url("")), env=ENV) as runner:
        unknown = await runner.run(call("launch_rocket", {}))
        invalid = await runner.run(call("lookup_order", {"order": "4567"}))
        bad_key = await runner.run(CallTool("confirm_appointment", {"appointment_id": "A-1"}, "has spaces!", "t"))
    assert unknown.error == "unknown_tool"
    assert invalid.error == "invalid_request" and "order_number" in invalid.data["detail"]
    assert bad_key.error == "invalid_request"
    assert script.hits == []


async def test_circuit_opens_fails_fast_then_half_opens_and_closes(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    clock = FakeClock()
    script.queue("/orders/{n}", *[Reply(500, {"error": "x"})] * 3)
    async with ToolRunner(config(retries=0), base_url=str(srv.make_url("")), env=ENV, clock=clock) as runner:
        for n in range(3):
            assert (await runner.run(call("lookup_order", {"order_number": "1"}, n))).error == "backend_error"
        assert runner.breaker_states()["lookup_order"] == CircuitState.OPEN
        started = time.perf_counter()
        fast = await runner.run(call("lookup_order", {"order_number": "1"}, 9))
        assert fast.error == "circuit_open" and time.perf_counter() - started < 0.5
        assert script.count("/orders/{n}") == 3  # nothing was sent
        # other tools keep their own breaker
        script.queue("/faq/{topic}", Reply(200, {"topic": "hours", "answer": "9-5"}))
        assert (await runner.run(call("faq", {"topic": "hours"}))).ok
        clock.now += 5  # open_s elapsed: one trial goes through
        script.queue("/orders/{n}", Reply(200, ORDER))
        assert runner.breaker_states()["lookup_order"] == "half_open"
        trial = await runner.run(call("lookup_order", {"order_number": "4567"}, 10))
        assert trial.ok and runner.breaker_states()["lookup_order"] == CircuitState.CLOSED


async def test_a_failed_trial_reopens_the_circuit(server: tuple[TestServer, Script]) -> None:
    srv, script = server
    clock = FakeClock()
    script.default["/orders/{n}"] = Reply(503, {"error": "x"})
    async with ToolRunner(config(retries=0), base_url=str(srv.make_url("")), env=ENV, clock=clock) as runner:
        for n in range(3):
            await runner.run(call("lookup_order", {"order_number": "1"}, n))
        clock.now += 5
        assert (await runner.run(call("lookup_order", {"order_number": "1"}, 5))).error == "backend_error"
        assert (await runner.run(call("lookup_order", {"order_number": "1"}, 6))).error == "circuit_open"
    assert script.count("/orders/{n}") == 4


async def test_an_unreachable_backend_counts_toward_the_circuit() -> None:
    async with ToolRunner(config(retries=0), base_url="http://127.0.0.1:9", env=ENV) as runner:
        results = [await runner.run(call("lookup_order", {"order_number": "1"}, n)) for n in range(4)]
    assert [r.error for r in results] == ["unreachable", "unreachable", "unreachable", "circuit_open"]


async def test_secrets_never_reach_the_logs(server: tuple[TestServer, Script],
                                            caplog: pytest.LogCaptureFixture) -> None:
    srv, script = server
    caplog.set_level(logging.DEBUG)
    script.queue("/orders/{n}", Reply(200, ORDER), Reply(500, {"error": "x", "detail": f"echo {SECRET}"}),
                 Reply(200, {"status": "?"}))
    script.queue("/appointments/{id}/confirm", Reply(401, {"error": "unauthorized"}))
    async with ToolRunner(config(retries=0), base_url=str(srv.make_url("")), env=ENV, sleep=no_sleep) as runner:
        results = [
            await runner.run(call("lookup_order", {"order_number": "4567"}, 1)),
            await runner.run(call("lookup_order", {"order_number": "4567"}, 2)),
            await runner.run(call("lookup_order", {"order_number": "4567"}, 3)),
            await runner.run(call("confirm_appointment", {"appointment_id": "A-1"}, 4)),
        ]
    async with ToolRunner(config(retries=0), base_url="http://127.0.0.1:9", env=ENV) as runner:
        results.append(await runner.run(call("lookup_order", {"order_number": "4567"}, 5)))
    assert [r.error for r in results] == [None, "backend_error", "contract_violation", "unauthorized", "unreachable"]
    assert all(h["Authorization"] == f"Bearer {SECRET}" for _, _, h in script.hits)
    assert caplog.records, "expected log output to check"
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(r) for r in results)  # a backend echoing it back is redacted too
    assert SECRET not in repr(runner.config)


async def test_a_missing_secret_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="ARI_AGENT_SECRET_BACKEND_TOKEN") as info:
        ToolRunner(config(), base_url="http://127.0.0.1:9", env={})
    assert info.value.key_path == "definitions.lookup_order.headers"


async def test_without_redis_an_async_write_is_performed_inline_once() -> None:
    """``ari-agent chat`` and the text evaluation have no redis: the write is sent at once, answered
    ``performed`` only when the backend did it, ``queue_unavailable`` when it refused."""
    from ari_agent.devtools.demo_backend import running_demo_backend
    from ari_agent.integrations.tools_config import demo_tools_config

    args = {"customer_id": "C-1001", "appointment_id": "A-100"}
    call = CallTool("send_confirmation", args, idempotency_key("c1", "confirm", args), "t1")
    bad = {"customer_id": "C-9999", "appointment_id": "A-100"}
    refused = CallTool("send_confirmation", bad, idempotency_key("c1", "confirm", bad), "t2")
    async with running_demo_backend() as url, ToolRunner(demo_tools_config(), base_url=url) as runner:
        first, again, no = await runner.run(call), await runner.run(call), await runner.run(refused)
        async with aiohttp.ClientSession() as session, session.get(url + "/messages") as resp:
            sent = await resp.json()
    assert first.ok and not first.submitted and first.data["state"] == "performed"  # done, not queued
    assert again.ok and again.data["state"] == "performed"  # answered from the backend's stored response
    assert not no.ok and no.error == "queue_unavailable"
    assert sent["count"] == 1 and sent["messages"][0]["to"] == "+15551230001"


class FakeQueue:
    def __init__(self, fail: bool = False) -> None:
        self.jobs: list[WriteJob] = []
        self.fail = fail

    def submit(self, job: WriteJob) -> SubmitState:
        if self.fail:
            raise ConnectionError("redis is down")
        time.sleep(0.01)  # rq is synchronous: the runner must call it off the event loop
        seen = any(j.idempotency_key == job.idempotency_key for j in self.jobs)
        self.jobs.append(job)
        return SubmitState.ALREADY_SUBMITTED if seen else SubmitState.QUEUED

    def close(self) -> None:
        pass


async def test_async_writes_are_submitted_at_once() -> None:
    cfg = ToolsConfig.model_validate({"definitions": {"record_write": {
        "method": "POST", "url": "{base_url}/writes", "write": True, "async_write": True,
        "headers": {"X-Key": "${secret:BACKEND_TOKEN}"}}}})
    queue = FakeQueue()
    runner = ToolRunner(cfg, base_url="http://backend.invalid", env=ENV, write_queue=queue)
    c = call("record_write", {"reference": "r-1"})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    t = asyncio.create_task(ticker())
    first = await runner.run(c)
    second = await runner.run(c)
    t.cancel()
    await runner.aclose()
    assert first == ToolResult(c.call_id, True, {"idempotency_key": c.idempotency_key, "state": "queued"}, None, True)
    assert second.submitted and second.data["state"] == "already_submitted"
    assert ticks >= 3, "the event loop was blocked while enqueuing"
    job = queue.jobs[0]
    assert job.request.url == "http://backend.invalid/writes"
    assert job.request.json_body == {"reference": "r-1", "payload": {}}
    assert job.request.header_templates == {"X-Key": "${secret:BACKEND_TOKEN}",
                                            "Idempotency-Key": c.idempotency_key}
    assert SECRET not in repr(job.to_payload())


async def test_a_queue_outage_is_an_error_result() -> None:
    cfg = ToolsConfig.model_validate({"definitions": {"record_write": {
        "method": "POST", "url": "{base_url}/writes", "write": True, "async_write": True}}})
    runner = ToolRunner(cfg, base_url="http://x.invalid", write_queue=FakeQueue(fail=True))
    result = await runner.run(call("record_write", {"reference": "r-1"}))
    assert result.error == "queue_unavailable" and not result.submitted


async def test_redis_down_is_queue_unavailable_not_a_hang() -> None:
    cfg = ToolsConfig.model_validate({"definitions": {"record_write": {
        "method": "POST", "url": "{base_url}/writes", "write": True, "async_write": True}}})
    async with ToolRunner(cfg, base_url="http://x.invalid", redis_url="redis://127.0.0.1:9/0") as runner:
        started = time.perf_counter()
        result = await runner.run(call("record_write", {"reference": "r-1"}))
    assert result.error == "queue_unavailable" and time.perf_counter() - started < 3
