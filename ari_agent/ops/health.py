"""Liveness and readiness of ``ari-agent run``, next to ``/metrics`` on ``metrics.bind``.

- ``GET /healthz``: 200 while the process and its event loop answer (liveness: restart me if not).
- ``GET /readyz``: 200 only while the agent takes calls: its ARI events WebSocket is connected and it
  is not draining; 503 with the reason otherwise (``starting``, ``ari_disconnected``, ``draining``).
  A router or orchestrator sends calls only to ready agents; a draining agent still finishes its calls.

Both answer small JSON bodies and carry no caller data. The server binds loopback by default
(``metrics.bind``); bind it to the pod address in Kubernetes (deploy/kubernetes/) for kubelet probes.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ari_agent.errors import AriAgentError
from ari_agent.metrics import REGISTRY


class OpsServerError(AriAgentError, ValueError):
    """The health/metrics server cannot start (bad ``metrics.bind``, address in use)."""


class ReadinessSource(Protocol):
    def readiness(self) -> tuple[bool, str]: ...


class ServeState:
    """What the probes look at: the call manager once it is built (``starting`` until then)."""

    def __init__(self) -> None:
        self.source: ReadinessSource | None = None

    def readiness(self) -> tuple[bool, str]:
        if self.source is None:
            return False, "starting"
        return self.source.readiness()


def ops_app(state: ReadinessSource) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        ready, reason = state.readiness()
        return web.json_response({"ready": ready, "reason": reason}, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) → (host, port); a clear ValueError otherwise."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise OpsServerError(f"metrics.bind {bind!r}: expected host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


async def start_ops_server(bind: str, state: ReadinessSource) -> tuple[web.AppRunner, int]:
    """Serve /healthz, /readyz and /metrics on ``bind``; returns the runner and the bound port (port 0
    picks a free one)."""
    host, port = parse_bind(bind)
    runner = web.AppRunner(ops_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OpsServerError(f"metrics.bind {bind!r}: cannot listen: {exc.strerror or exc}") from None
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound
