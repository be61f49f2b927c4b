"""/healthz and /readyz of ``ari-agent run`` (ops/health.py) on a real aiohttp server (port 0)."""

from __future__ import annotations

import aiohttp
import pytest

from ari_agent.ops.health import ServeState, parse_bind, start_ops_server


class Source:
    def __init__(self) -> None:
        self.state = (True, "ready")

    def readiness(self) -> tuple[bool, str]:
        return self.state


async def get(port: int, path: str) -> tuple[int, dict[str, object] | str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


async def test_readiness_follows_the_manager_and_liveness_stays_up() -> None:
    state = ServeState()
    runner, port = await start_ops_server("127.0.0.1:0", state)
    try:
        assert await get(port, "/readyz") == (503, {"ready": False, "reason": "starting"})
        assert await get(port, "/healthz") == (200, {"status": "alive"})
        source = Source()
        state.source = source
        assert await get(port, "/readyz") == (200, {"ready": True, "reason": "ready"})
        for reason in ("ari_disconnected", "draining"):
            source.state = (False, reason)
            assert await get(port, "/readyz") == (503, {"ready": False, "reason": reason})
            assert (await get(port, "/healthz"))[0] == 200
        status, body = await get(port, "/metrics")
        assert status == 200 and "ari_agent_draining" in str(body)
    finally:
        await runner.cleanup()


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_bind("[::1]:80") == ("::1", 80)
    assert parse_bind(":9464") == ("127.0.0.1", 9464)
    for bad in ("9464", "host:", "host:http", "h:70000"):
        with pytest.raises(ValueError, match="expected host:port"):
            parse_bind(bad)


async def test_address_in_use_is_one_clear_error() -> None:
    from ari_agent.errors import AriAgentError

    runner, port = await start_ops_server("127.0.0.1:0", ServeState())
    try:
        with pytest.raises(AriAgentError, match="cannot listen"):
            await start_ops_server(f"127.0.0.1:{port}", ServeState())
    finally:
        await runner.cleanup()
