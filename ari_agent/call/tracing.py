"""OpenTelemetry traces of calls (optional): one trace per call, a span per caller turn, and a span per
stage of the turn (speech to text, conversation engine, tool, first audio of the reply).

Built **when the call has ended**, from what the call already measures (``call/timing.py``'s turn stage
times and the call's outcome), with explicit start and end times: nothing is added to the audio path,
and a slow or absent collector never delays a caller. Spans go to an OTLP/HTTP collector
(``tracing.otlp_endpoint``) from the SDK's batch processor thread.

No caller data is put on a span: not the words heard, not the caller's number, not tool arguments;
only the call id, how it ended, the handoff queue and reason, and the stage times.

Needs the ``otel`` extra (``pip install 'ari-agent[otel]'``); with an endpoint set and the extra absent
the agent logs one clear error and serves calls untraced.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ari_agent.call.timing import TurnTiming
from ari_agent.config import Config, TracingConfig

log = logging.getLogger("ari_agent.call.tracing")

Attr = str | int | float | bool


@dataclass
class SpanPlan:
    """One span to emit: a name, wall-clock start/end (ns since the epoch), attributes and children."""

    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Attr] = field(default_factory=dict)
    children: list[SpanPlan] = field(default_factory=list)


@dataclass(frozen=True)
class CallSummary:
    """What a call's trace is built from (the session fills it at the end of the call)."""

    call_id: str
    started_wall: dt.datetime  # wall clock at ``started_mono``
    started_mono: float
    duration_s: float
    ended_by: str
    handoff_queue: str | None = None
    handoff_reason: str | None = None


def _ns(summary: CallSummary, mono: float) -> int:
    """A monotonic instant of the call as wall-clock nanoseconds."""
    wall = summary.started_wall.timestamp() + (mono - summary.started_mono)
    return round(wall * 1e9)


def _turn_plan(summary: CallSummary, index: int, t: TurnTiming) -> SpanPlan:
    """A caller turn: from the end of the caller's speech (the endpointer's silence wait included) to the
    first reply packet on the line (or the latest stage reached), with a child span per stage."""
    speech_end = t.speech_end
    began = speech_end - t.endpoint_wait_ms / 1000.0
    stages: list[tuple[str, float, float | None]] = [
        ("endpoint_wait", began, speech_end),
        ("stt", speech_end, t.stt_final or None),
        ("engine", t.stt_final or speech_end, t.engine_done or None),
    ]
    if t.tool_done is not None:
        stages.append(("tool", t.engine_done or speech_end, t.tool_done))
    reply_from = t.tool_done if t.tool_done is not None else (t.engine_done or speech_end)
    if t.tts_first_audio is not None:
        stages.append(("tts_first_audio", reply_from, t.tts_first_audio))
    if t.first_rtp is not None:
        stages.append(("first_rtp", t.tts_first_audio or reply_from, t.first_rtp))
    ends = [e for _, _, e in stages if e is not None]
    end = max([speech_end, *ends])
    attrs: dict[str, Attr] = {"ari_agent.turn.index": index, "ari_agent.turn.ack_played": t.ack_played}
    for stage, ms in t.profile_ms().items():
        if ms is not None:
            attrs[f"ari_agent.turn.{stage}_ms"] = ms
    children = [SpanPlan(f"turn.{name}", _ns(summary, s), _ns(summary, max(s, e)))
                for name, s, e in stages if e is not None]
    return SpanPlan("turn", _ns(summary, began), _ns(summary, end), attrs, children)


def call_plan(summary: CallSummary, timings: Sequence[TurnTiming]) -> SpanPlan:
    """The call's trace as a tree of spans (pure: no I/O, no SDK)."""
    attrs: dict[str, Attr] = {"ari_agent.call_id": summary.call_id, "ari_agent.ended_by": summary.ended_by,
                              "ari_agent.turns": len(timings)}
    if summary.handoff_queue:
        attrs["ari_agent.handoff.queue"] = summary.handoff_queue
    if summary.handoff_reason:
        attrs["ari_agent.handoff.reason"] = summary.handoff_reason
    end_mono = summary.started_mono + summary.duration_s
    return SpanPlan("call", _ns(summary, summary.started_mono), _ns(summary, end_mono), attrs,
                    [_turn_plan(summary, i, t) for i, t in enumerate(timings) if t.speech_end > 0])


class CallTracer:
    """Emits call traces through the OpenTelemetry SDK (a tracer provider of its own, not the global one)."""

    def __init__(self, tcfg: TracingConfig, exporter: Any = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            headers = {k: v.get_secret_value() for k, v in tcfg.headers.items()}
            exporter = OTLPSpanExporter(endpoint=tcfg.otlp_endpoint, headers=headers, timeout=tcfg.export_timeout_s)
        self.provider = TracerProvider(resource=Resource.create({"service.name": tcfg.service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("ari_agent.call")

    def record(self, plan: SpanPlan) -> None:
        """Queue the call's spans for export (never blocks on the collector)."""
        from opentelemetry import trace

        def emit(p: SpanPlan, parent: Any) -> None:
            ctx = trace.set_span_in_context(parent) if parent is not None else None
            span = self._tracer.start_span(p.name, context=ctx, start_time=p.start_ns, attributes=p.attributes)
            for child in p.children:
                emit(child, span)
            span.end(end_time=p.end_ns)

        emit(plan, None)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued (blocking; for shutdown and tests)."""
        return bool(self.provider.force_flush(int(timeout_s * 1000)))

    def shutdown(self) -> None:
        self.provider.shutdown()


_TRACERS: dict[tuple[str, str], CallTracer | None] = {}


def call_tracer(cfg: Config) -> CallTracer | None:
    """The process's tracer for ``cfg.tracing`` (made once), or None when tracing is off or cannot run
    (the error is logged once, without the endpoint's headers, which may hold credentials)."""
    tcfg = cfg.tracing
    if not tcfg.otlp_endpoint:
        return None
    key = (tcfg.otlp_endpoint, tcfg.service_name)
    if key not in _TRACERS:
        try:
            _TRACERS[key] = CallTracer(tcfg)
            log.info("tracing: call traces go to %s (OTLP/HTTP)", tcfg.otlp_endpoint)
        except ImportError as exc:
            log.error("tracing: tracing.otlp_endpoint is set but the OpenTelemetry SDK is not installed (%s); "
                      "install the extra: pip install 'ari-agent[otel]'. Calls are served untraced.", exc.name)
            _TRACERS[key] = None
    return _TRACERS[key]


def trace_call(cfg: Config, summary: CallSummary, timings: Sequence[TurnTiming]) -> None:
    """Record a finished call's trace when tracing is on. Never raises: a trace is not worth a call."""
    try:
        tracer = call_tracer(cfg)
        if tracer is not None:
            tracer.record(call_plan(summary, timings))
    except Exception as exc:  # a broken exporter or odd timing must not disturb the call's teardown
        log.error("tracing: call %s not traced: %s: %s", summary.call_id, type(exc).__name__, exc)
