"""The ARI events stream comes back by itself when its server goes away and returns (a real aiohttp
WebSocket server on loopback stands in for Asterisk's /ari/events; the Asterisk restart itself is
tests/integration/test_fault_asterisk_restart.py)."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from ari_agent.config import AriConfig
from ari_agent.devtools.backend_process import free_port
from ari_agent.telephony.event_stream import AriEventStream


async def serve_events(port: int, seen_apps: list[str]) -> web.AppRunner:
    async def events(request: web.Request) -> web.WebSocketResponse:
        seen_apps.append(request.query.get("app", ""))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "StasisStart", "application": "t", "channel": {"id": "c1"}}')
        async for msg in ws:
            if msg.type == WSMsgType.CLOSE:
                break
        return ws

    app = web.Application()
    app.router.add_get("/ari/events", events)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def wait_until(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_stream_reconnects_when_the_server_returns_and_reports_how_long_it_was_down() -> None:
    port = free_port()
    seen: list[str] = []
    runner = await serve_events(port, seen)
    connects: list[int] = []
    stream = AriEventStream(f"http://127.0.0.1:{port}", "agent-7", "Basic eA==", initial_backoff_s=0.02,
                            max_backoff_s=0.1, on_connect=lambda: connects.append(1))
    received: list[str] = []

    async def consume() -> None:
        async for event in stream.events():
            received.append(event.type)

    task = asyncio.create_task(consume())
    try:
        await wait_until(lambda: stream.connected.is_set() and received)
        assert stream.last_down_s is None  # a first connect is not a reconnect
        await runner.cleanup()  # "Asterisk stops": the socket drops, connects are refused
        await wait_until(lambda: not stream.connected.is_set())
        await asyncio.sleep(0.5)  # several refused attempts while it is away
        assert stream.last_error is not None
        runner = await serve_events(port, seen)
        await wait_until(lambda: stream.connects == 2 and len(received) == 2)
        assert stream.last_down_s is not None and stream.last_down_s >= 0.5
        assert stream.last_error is None and len(connects) == 2
        assert seen == ["agent-7", "agent-7"]  # subscribes its own app again
    finally:
        stream.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


def test_default_backoff_is_capped_for_a_fast_reconnect() -> None:
    """The cap is what bounds the reconnect after Asterisk is back (docs/runbook.md): keep it small."""
    cfg = AriConfig()
    assert cfg.reconnect_initial_s <= cfg.reconnect_max_s <= 1.0
