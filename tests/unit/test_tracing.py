"""Call traces: the span tree built from a call's turn timings, emitted through the real OpenTelemetry SDK
and its real OTLP/HTTP exporter to a local receiver (aiohttp), decoded from the wire protobuf."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest

from ari_agent.call import tracing
from ari_agent.call.timing import TurnTiming
from ari_agent.call.tracing import CallSummary, CallTracer, call_plan, trace_call
from ari_agent.config import Config, TracingConfig
from ari_agent.devtools.otlp_collector import running_otlp_receiver, span_attributes

T0 = dt.datetime(2026, 12, 3, 12, 0, 0, tzinfo=dt.UTC)


def _summary(**kw: Any) -> CallSummary:
    base: dict[str, Any] = {"call_id": "call-abc", "started_wall": T0, "started_mono": 100.0,
                            "duration_s": 20.0, "ended_by": "handoff", "handoff_queue": "support",
                            "handoff_reason": "caller_asked"}
    return CallSummary(**(base | kw))


def _turns() -> list[TurnTiming]:
    return [
        TurnTiming(speech_end=104.0, endpoint_wait_ms=400, stt_final=104.2, engine_done=104.25,
                   tts_first_audio=104.5, first_rtp=104.52, text="my card number is 4111 1111 1111 1111"),
        TurnTiming(speech_end=110.0, endpoint_wait_ms=300, stt_final=110.3, engine_done=110.31, tool_done=111.0,
                   tts_first_audio=111.2, first_rtp=111.25, ack_played=True, text="reschedule please"),
        TurnTiming(speech_end=115.0, endpoint_wait_ms=300, stt_final=115.4, engine_done=115.41),  # call ended
    ]


def _ns(s: float) -> int:
    return round((T0.timestamp() + s - 100.0) * 1e9)


def test_the_plan_is_a_call_span_with_a_turn_per_caller_turn_and_a_span_per_stage() -> None:
    plan = call_plan(_summary(), _turns())
    assert (plan.name, plan.start_ns, plan.end_ns) == ("call", _ns(100.0), _ns(120.0))
    assert plan.attributes == {"ari_agent.call_id": "call-abc", "ari_agent.ended_by": "handoff",
                               "ari_agent.turns": 3, "ari_agent.handoff.queue": "support",
                               "ari_agent.handoff.reason": "caller_asked"}
    first, second, last = plan.children
    assert (first.start_ns, first.end_ns) == (_ns(103.6), _ns(104.52))
    assert [c.name for c in first.children] == ["turn.endpoint_wait", "turn.stt", "turn.engine",
                                                "turn.tts_first_audio", "turn.first_rtp"]
    assert first.attributes["ari_agent.turn.stt_final_ms"] == pytest.approx(200.0)
    assert first.attributes["ari_agent.turn.first_rtp_ms"] == pytest.approx(520.0)
    tool = next(c for c in second.children if c.name == "turn.tool")
    assert (tool.start_ns, tool.end_ns) == (_ns(110.31), _ns(111.0))
    tts = next(c for c in second.children if c.name == "turn.tts_first_audio")
    assert tts.start_ns == _ns(111.0)  # the reply is made once the tool has answered
    assert second.attributes["ari_agent.turn.ack_played"] is True
    # A turn whose reply never played ends at its last stage reached.
    assert last.end_ns == _ns(115.41) and [c.name for c in last.children][-1] == "turn.engine"
    for turn in plan.children:
        for c in turn.children:
            assert turn.start_ns <= c.start_ns <= c.end_ns <= turn.end_ns


def test_no_caller_words_are_put_on_a_span() -> None:
    plan = call_plan(_summary(), _turns())
    values = [str(v) for p in [plan, *plan.children] for v in p.attributes.values()]
    assert not [v for v in values if "4111" in v or "reschedule" in v]


def test_a_turn_without_an_end_of_speech_is_left_out_and_a_call_without_handoff_has_no_queue() -> None:
    plan = call_plan(_summary(ended_by="caller", handoff_queue=None, handoff_reason=None), [TurnTiming()])
    assert plan.children == []
    assert "ari_agent.handoff.queue" not in plan.attributes


def test_the_sdk_emits_the_plan_as_parented_spans() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer = CallTracer(TracingConfig(otlp_endpoint="http://unused"), exporter=exporter)
    tracer.record(call_plan(_summary(), _turns()))
    assert tracer.flush()
    spans = {(s.name, s.start_time): s for s in exporter.get_finished_spans()}
    assert len(spans) == 1 + 3 + 5 + 6 + 3
    call = spans[("call", _ns(100.0))]
    assert call.parent is None and call.end_time == _ns(120.0)
    turns = [s for s in spans.values() if s.name == "turn"]
    assert {t.parent.span_id for t in turns if t.parent} == {call.context.span_id}
    assert {s.context.trace_id for s in spans.values()} == {call.context.trace_id}
    stt = [s for s in spans.values() if s.name == "turn.stt"]
    assert {s.parent.span_id for s in stt if s.parent} == {t.context.span_id for t in turns}
    assert call.resource.attributes["service.name"] == "ari-agent"
    tracer.shutdown()


async def test_the_otlp_http_exporter_delivers_the_call_trace_to_a_collector() -> None:
    async with running_otlp_receiver() as receiver:
        tcfg = TracingConfig.model_validate({"otlp_endpoint": receiver.url, "service_name": "ari-agent-test",
                                             "headers": {"authorization": "Bearer s3cret-token"}})
        tracer = CallTracer(tcfg)
        tracer.record(call_plan(_summary(), _turns()))
        assert await asyncio.to_thread(tracer.flush, 10.0)
        await asyncio.to_thread(tracer.shutdown)
    assert receiver.exports, "the collector got no export"
    headers, body = receiver.exports[0]
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer s3cret-token"
    spans = receiver.spans()
    names = sorted(s.name for _, s in spans)
    assert names.count("call") == 1 and names.count("turn") == 3 and names.count("turn.tool") == 1
    resource, call = next((r, s) for r, s in spans if s.name == "call")
    attrs = span_attributes(call)
    assert attrs["ari_agent.call_id"] == "call-abc" and attrs["ari_agent.handoff.queue"] == "support"
    assert call.start_time_unix_nano == _ns(100.0) and call.end_time_unix_nano == _ns(120.0)
    assert resource["service.name"] == "ari-agent-test"
    assert b"4111" not in body and b"reschedule" not in body


def test_tracing_is_off_by_default_and_a_broken_tracer_never_raises(caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.call_tracer(Config()) is None
    trace_call(Config(), _summary(), _turns())  # off: nothing to do, nothing raised

    class Broken:
        def record(self, plan: Any) -> None:
            raise RuntimeError("exporter queue gone")

    cfg = Config.model_validate({"tracing": {"otlp_endpoint": "http://127.0.0.1:9/v1/traces"}})
    monkeypatch.setitem(tracing._TRACERS, ("http://127.0.0.1:9/v1/traces", "ari-agent"), Broken())
    with caplog.at_level(logging.ERROR, logger="ari_agent.call.tracing"):
        trace_call(cfg, _summary(), _turns())
    assert "call call-abc not traced: RuntimeError: exporter queue gone" in caplog.text


def test_the_endpoint_headers_are_secrets() -> None:
    tcfg = TracingConfig.model_validate({"otlp_endpoint": "http://c/v1/traces",
                                         "headers": {"authorization": "Bearer s3cret-token"}})
    assert "s3cret-token" not in repr(tcfg) and "s3cret-token" not in str(tcfg.model_dump())
