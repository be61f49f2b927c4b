"""The /metrics endpoint (Prometheus text format) on a loopback address by default."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ari_agent.metrics import REGISTRY


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_metrics_server(bind: str) -> web.AppRunner:
    """Serve /metrics on ``host:port``; returns the runner (``await runner.cleanup()`` to stop)."""
    host, _, port = bind.rpartition(":")
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    return runner
