"""Every real call writes its call record: a caller asks for a person by voice through the real Asterisk,
the agent hands off to the support queue, and the record read back from the records database says so;
the queue's member answers, and the ACD's AMI events (``records.acd``) add that human leg to the record."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from ari_agent.call.tracing import call_tracer
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.otlp_collector import running_otlp_receiver, span_attributes
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.records.acd import AcdFollower
from ari_agent.records.kpi import SlaTargets, compute_kpis
from ari_agent.records.model import CallerHasher
from ari_agent.records.store import CallRecordStore

from .conftest import agent_config
from .conftest_redis import redis_server  # noqa: F401

pytestmark = pytest.mark.integration
SALT = "records-integration-salt"


async def test_a_real_call_writes_its_record(pbx: LocalPbx, tmp_path: Path, voice_dir: Path,
                                             redis_server: str) -> None:  # noqa: F811
    url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    store = CallRecordStore(url)
    try:
        async with running_demo_backend() as backend, running_otlp_receiver() as collector:
            cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend,
                               redis__url=redis_server, records__url=url, records__salt=SALT,
                               tracing__otlp_endpoint=collector.url)
            acd = AcdFollower(store, cfg.ami)  # the support desk's answer, from the real queue's AMI events
            try:
                assert await acd.start(), acd.ami.last_error
                async with InProcessAgent(cfg) as agent:
                    assert agent.caller is not None and agent.manager is not None
                    wavs = [synthesize_caller("Hi, what are your opening hours?", "flite:slt", voice_dir),
                            synthesize_caller("Can I speak to a real person please?", "flite:slt", voice_dir)]
                    res = await agent.caller.place_dialog(wavs, "tt", tail_wait_s=12)
                    await agent.manager.wait_idle(20)
                    assert agent.manager.records is not None and agent.manager.records.written >= 1
                deadline = asyncio.get_running_loop().time() + 30
                while acd.stored < 1 and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # a later AgentComplete (the desk's talk time) lands too
                tracer = call_tracer(cfg)  # the call's trace went to the OTLP collector (tracing.otlp_endpoint)
                assert tracer is not None and await asyncio.to_thread(tracer.flush, 10.0)
            finally:
                await acd.close()
        records = store.by_caller(CallerHasher(SALT).hash(res.call_id) or "")
    finally:
        store.close()
    assert len(records) == 1, records
    r = records[0]
    assert r.source == "call" and r.call_id.startswith("call-")
    assert r.outcome == "transferred" and r.transfer_queue == "support" and r.transfer_reason == "caller_request", r
    assert r.turns >= 2 and len(r.heard) >= 2 and all(r.heard), r  # what was heard depends on the recogniser
    assert r.caller_hash and res.call_id not in r.caller_hash
    assert r.ended_at is not None and r.started_at < r.ended_at <= dt.datetime.now(dt.UTC)
    assert r.duration_s is not None and 2 < r.duration_s < 120
    assert "stt_final" in r.stage_ms and "first_rtp" in r.stage_ms, r.stage_ms
    assert len(r.config_version) == 16
    assert r.answer_s is not None and 0 <= r.answer_s < 10, r  # the greeting's start, for the service level
    assert 0 <= r.no_match_turns <= len(r.heard)
    # The desk answered: the ACD's AgentConnect put the human leg in the record, and the SLA counts it.
    assert acd.stored >= 1 and acd.dropped == 0
    assert r.human_answered is True and r.human_wait_s is not None and 0 <= r.human_wait_s < 15, r
    day = r.started_at.replace(hour=0, minute=0, second=0, microsecond=0)
    k = compute_kpis([r], day, day + dt.timedelta(days=1), sla=SlaTargets(answer_s=10.0, queue_answer_s=15.0))
    assert (k.sla_queue_reported, k.sla_queue_answer, k.sla_adherence) == (1, 1.0, 1.0)
    traced = [s for _, s in collector.spans() if span_attributes(s).get("ari_agent.call_id") == r.call_id]
    assert len(traced) == 1, collector.spans()
    call_span = traced[0]
    assert span_attributes(call_span)["ari_agent.handoff.queue"] == "support"
    turns = [s for _, s in collector.spans() if s.name == "turn" and s.parent_span_id == call_span.span_id]
    assert len(turns) >= 2 and all(s.trace_id == call_span.trace_id for s in turns)
    assert all(call_span.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano
               <= call_span.end_time_unix_nano for s in turns)
    print(f"real call: first prompt after {r.answer_s:.2f} s; the support desk answered after {r.human_wait_s:g} s "
          f"in the queue (handled {r.human_handle_s} s)")


async def test_a_broken_records_database_never_breaks_the_call(pbx: LocalPbx, tmp_path: Path, voice_dir: Path,
                                                               redis_server: str) -> None:  # noqa: F811
    """The records database is unreachable: the call is served and handed off as usual, the failure logged."""
    async with running_demo_backend() as backend:
        cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend,
                           redis__url=redis_server, records__url="postgresql+psycopg://u:p@127.0.0.1:1/none",
                           records__salt=SALT)
        async with InProcessAgent(cfg) as agent:
            assert agent.caller is not None and agent.manager is not None
            wavs = [synthesize_caller("Can I speak to a real person please?", "flite:rms", voice_dir)]
            await agent.caller.place_dialog(wavs, "t", tail_wait_s=12)  # two handoff lines after it: 8 s was tight
            await agent.manager.wait_idle(20)
            outcomes = list(agent.manager.outcomes)
            assert agent.manager.records is not None and agent.manager.records.failed == 1
    assert [o.ended_by for o in outcomes] == ["handoff"] and outcomes[0].handoff_queue == "support"
