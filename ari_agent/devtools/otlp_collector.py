"""A minimal OTLP/HTTP trace receiver on loopback (aiohttp): keeps each export's protobuf body, decodes
the spans. For tests and for checking a tracing set-up by hand; not a collector for production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class OtlpReceiver:
    url: str = ""  # the traces endpoint, e.g. http://127.0.0.1:PORT/v1/traces
    exports: list[tuple[dict[str, str], bytes]] = field(default_factory=list)  # (headers, body) per export

    def spans(self) -> list[tuple[dict[str, str], Any]]:
        """Every span received, with its resource's attributes (needs the otel extra's protobufs)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        out: list[tuple[dict[str, str], Any]] = []
        for _, body in self.exports:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            for rs in req.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                out.extend((resource, s) for ss in rs.scope_spans for s in ss.spans)
        return out


def span_attributes(span: Any) -> dict[str, Any]:
    """A decoded span's attributes as plain values."""
    out: dict[str, Any] = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, kind) if kind else None
    return out


@asynccontextmanager
async def running_otlp_receiver() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()

    async def collect(request: web.Request) -> web.Response:
        receiver.exports.append((dict(request.headers), await request.read()))
        return web.Response(status=200, content_type="application/x-protobuf", body=b"")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[attr-defined]
    receiver.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/traces"  # type: ignore[attr-defined]
    try:
        yield receiver
    finally:
        await runner.cleanup()
