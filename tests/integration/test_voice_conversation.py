"""Whole conversations by audio alone on real Asterisk calls: the reactive test caller speaks (flite
voices, through G.711), the agent runs its full speech loop against the real demo backend.

Judged from the caller-side recording (heard.wav, written by Asterisk's MixMonitor) and the call's
event log: the agent's answer must be audible in what the caller heard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import TestCallResult, read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.governance.at_rest import generate_key_line
from ari_agent.governance.call_logs import find_call_log, read_call_log, storage_sealer
from ari_agent.media.match import audio_similarity
from ari_agent.media.segments import speech_segments
from ari_agent.metrics import REGISTRY
from ari_agent.ops.localpbx import LocalPbx

from .conftest import agent_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    async with running_demo_backend() as url:
        yield url


@pytest.fixture
async def voice_agent(pbx: LocalPbx, tmp_path: Path, backend_url: str) -> AsyncIterator[InProcessAgent]:
    cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url)
    async with InProcessAgent(cfg) as a:
        yield a


def conversation_of(agent: InProcessAgent, res: TestCallResult) -> VoiceConversation:
    assert agent.manager is not None
    for s in agent.manager.ended:
        if s.caller.id == f"{res.call_id}-leg" and isinstance(s.conversation, VoiceConversation):
            return s.conversation
    raise AssertionError(f"no voice conversation for {res.call_id}")


def said_texts(conv: VoiceConversation) -> list[str]:
    return [e["text"] for e in conv.events if e["kind"] == "say"]


def heard_contains(agent: InProcessAgent, res: TestCallResult, sentence: str) -> float:
    """How well the caller's recording matches the agent's rendering of ``sentence`` (best offset)."""
    from ari_agent.call.app import prompt_cache

    heard, _ = read_wav_mono(Path(res.heard))
    ref = prompt_cache(agent.cfg).tts.synthesize(sentence)
    return audio_similarity(heard, ref, max_lag_s=120)


async def test_order_status_by_voice(voice_agent: InProcessAgent, voice_dir: Path, backend_url: str) -> None:
    assert voice_agent.caller is not None and voice_agent.manager is not None
    async with aiohttp.ClientSession() as http, http.get(f"{backend_url}/orders/4567") as resp:
        order: dict[str, Any] = await resp.json()
    lines = ["Hi, I'd like to check the status of my order please.", "four five six seven",
             "No, that's all, thank you."]
    wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in lines]
    res = await voice_agent.caller.place_dialog(wavs, "ttt", tail_wait_s=6)
    await voice_agent.manager.wait_idle(15)
    conv = conversation_of(voice_agent, res)
    log = "\n".join(json.dumps(e) for e in conv.events)
    tools = [e for e in conv.events if e["kind"] == "tool"]
    assert tools and tools[0]["name"] == "lookup_order" and tools[0]["args"] == {"order_number": "4567"}, log
    # an unverified caller hears the status and the delivery day, never the carrier (the map's unverified_fields)
    answers = [t for t in said_texts(conv) if "has shipped and should arrive on" in t]
    assert answers, f"no answer with the backend's status in the event log:\n{log}"
    assert not any(order["carrier"] in t for t in said_texts(conv)), log
    sentence = answers[0].split(". ")[0] if ". " in answers[0] else answers[0]
    score = heard_contains(voice_agent, res, sentence)
    assert score >= 0.9, f"the answer is not audible in the caller's recording (corr {score:.3f})\n{log}"
    heard_pcm, _ = read_wav_mono(Path(res.heard))
    assert len(speech_segments(heard_pcm)) >= 3
    # Every answered turn's stage timings are in the log (event log above) and in the metrics.
    assert len(conv.timings) >= 3 and all(t.first_rtp is not None for t in conv.timings[:2]), conv.timings
    assert (REGISTRY.get_sample_value("ari_agent_turn_stage_seconds_count", {"stage": "first_rtp"}) or 0) >= 2


async def keypad_order_call(agent: InProcessAgent, voice_dir: Path) -> tuple[TestCallResult, VoiceConversation]:
    """One real call: the caller asks by voice, then keys the order number: 4567# (SendDTMF on the
    caller's channel), then says goodbye; returned once the agent is idle again."""
    assert agent.caller is not None and agent.manager is not None
    wavs = [synthesize_caller(t, "flite:slt", voice_dir) for t in ("I want to know where my order is.",
                                                                   "(keypad)", "No thanks, goodbye.")]
    res = await agent.caller.place_dialog(wavs, "tdt", dtmf="4567#", tail_wait_s=6)
    await agent.manager.wait_idle(15)
    return res, conversation_of(agent, res)


async def test_order_number_by_dtmf_is_accepted(voice_agent: InProcessAgent, voice_dir: Path) -> None:
    """The caller asks by voice, then keys the order number: 4567# (SendDTMF on the caller's channel)."""
    res, conv = await keypad_order_call(voice_agent, voice_dir)
    log = "\n".join(json.dumps(e) for e in conv.events)
    assert any(e["kind"] == "dtmf" and e["digits"] == "4567" for e in conv.events), log
    answers = [t for t in said_texts(conv) if "has shipped" in t]
    assert answers, log
    assert heard_contains(voice_agent, res, answers[0]) >= 0.9


async def test_the_call_log_is_stored_redacted_and_sealed(pbx: LocalPbx, tmp_path: Path, backend_url: str,
                                                          voice_dir: Path) -> None:
    """A real call with ``storage.encrypt_at_rest``: its event log is on disk once the call ends, sealed
    (no plain text in the file), and opens with the key to the call's own events, redacted."""
    key = generate_key_line("it1")
    cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url,
                       storage__encrypt_at_rest="true", storage__encryption_keys=key)
    async with InProcessAgent(cfg) as agent:
        assert agent.manager is not None
        _, conv = await keypad_order_call(agent, voice_dir)
        session = next(s for s in agent.manager.ended if s.conversation is conv)
    path = find_call_log(cfg, session.call_id)
    assert path == session.outcome.call_log and path.name == "events.jsonl.enc"
    assert path.stat().st_mode & 0o777 == 0o600
    blob = path.read_bytes()
    assert blob.startswith(b"ARIE1") and b"lookup_order" not in blob and b"4567" not in blob
    stored = read_call_log(path, storage_sealer(cfg))
    log = "\n".join(json.dumps(e) for e in stored)
    assert [e["kind"] for e in stored] == [e["kind"] for e in conv.events], log
    assert any(e["kind"] == "dtmf" and e["digits"] == "4567" for e in stored), log  # an order number: kept
    assert any(e["kind"] == "tool" and e["name"] == "lookup_order" for e in stored), log
    assert [e["text"] for e in stored if e["kind"] == "say"] == said_texts(conv), log


async def set_faults(backend_url: str, **faults: Any) -> None:
    async with aiohttp.ClientSession() as http, http.put(f"{backend_url}/_faults", json=faults) as resp:
        assert resp.status == 200, await resp.text()


ORDER_LINES = ("Hi, I'd like to check the status of my order please.", "four five six seven",
               "No, that's all, thank you.")


async def test_barge_in_stops_the_prompt(voice_agent: InProcessAgent, voice_dir: Path) -> None:
    """The caller talks over the greeting: the agent's audio stops within 300 ms of the caller's onset
    (measured on the caller-side recordings), the engine learns what was heard, and the request is served."""
    from ari_agent.devtools.bench_latency import SCENARIOS, measure_call

    assert voice_agent.caller is not None and voice_agent.manager is not None
    wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in ORDER_LINES]
    res = await voice_agent.caller.place_dialog(wavs, "btt", barge_after_s=1.5, tail_wait_s=6)
    await voice_agent.manager.wait_idle(15)
    conv = conversation_of(voice_agent, res)
    log = "\n".join(json.dumps(e) for e in conv.events)
    barge = [e for e in conv.events if e["kind"] == "barge_in"]
    assert barge, log
    greeting = said_texts(conv)[0]
    assert greeting.startswith(barge[0]["heard"]) and barge[0]["heard"] != greeting, log
    m = measure_call(res, SCENARIOS[2], "flite:rms")
    assert m.barge_stops_s, f"no barge-in found in the recordings: said={m.said} heard={m.heard}"
    assert m.barge_stops_s[0] <= 0.3, f"agent audio stopped {m.barge_stops_s[0] * 1000:.0f} ms after caller onset"
    assert any(e["kind"] == "tool" and e["name"] == "lookup_order" for e in conv.events), log


async def test_slow_backend_gets_an_acknowledgement(voice_agent: InProcessAgent, voice_dir: Path,
                                                    backend_url: str) -> None:
    assert voice_agent.caller is not None and voice_agent.manager is not None
    await set_faults(backend_url, delay_ms=1400, path_prefix="/orders")
    wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in ORDER_LINES]
    res = await voice_agent.caller.place_dialog(wavs, "ttt", tail_wait_s=6)
    await voice_agent.manager.wait_idle(15)
    conv = conversation_of(voice_agent, res)
    log = "\n".join(json.dumps(e) for e in conv.events)
    said = said_texts(conv)
    ack = voice_agent.cfg.conversation.ack_text
    assert ack in said, log
    answers = [t for t in said if "has shipped" in t]
    assert answers and said.index(ack) < said.index(answers[0]), log
    assert heard_contains(voice_agent, res, ack) >= 0.9
    assert heard_contains(voice_agent, res, answers[0]) >= 0.9


async def test_backend_timeout_hands_off_with_context(voice_agent: InProcessAgent, voice_dir: Path,
                                                      backend_url: str, ari: Any) -> None:
    assert voice_agent.caller is not None and voice_agent.manager is not None
    await set_faults(backend_url, delay_ms=30000, path_prefix="/orders")
    wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in ORDER_LINES[:2]]
    place = asyncio.create_task(voice_agent.caller.place_dialog(wavs, "tt", tail_wait_s=25))
    manager = voice_agent.manager
    deadline = asyncio.get_running_loop().time() + 90
    while not any(o.ended_by == "handoff" for o in manager.outcomes):
        assert asyncio.get_running_loop().time() < deadline, "no handoff"
        await asyncio.sleep(0.2)
    outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
    assert outcome.handoff_queue == "support"
    # The caller is now in the real queue, connected to the (stand-in) human desk, with the context.
    variables = {}
    for name in ("ARI_AGENT_INTENT", "ARI_AGENT_REASON", "ARI_AGENT_SUMMARY"):
        variables[name] = await ari.get_variable(outcome.caller_channel, name)
    assert variables["ARI_AGENT_INTENT"] == "order_status", variables
    assert variables["ARI_AGENT_REASON"], variables
    await ari.hangup(outcome.caller_channel)
    res = await place
    conv = conversation_of(voice_agent, res)
    log = "\n".join(json.dumps(e) for e in conv.events)
    assert any(e["kind"] == "tool_result" and not e["ok"] for e in conv.events) or \
        any(e["kind"] == "transfer" for e in conv.events), log
    transfer = [e for e in conv.events if e["kind"] == "transfer"]
    assert transfer and transfer[0]["queue"] == "support", log
    handoff_prompt = [t for t in said_texts(conv) if "colleague" in t]
    assert handoff_prompt, log
    assert heard_contains(voice_agent, res, handoff_prompt[-1]) >= 0.9


async def test_call_with_whisper_engine_on_a_generated_model(pbx: LocalPbx, tmp_path: Path, backend_url: str,
                                                           voice_dir: Path) -> None:
    """The production STT engine wired into a real call: whisper.cpp worker processes loading a tiny
    random-weight ggml model the test writes. Its transcripts are noise, so the agent must handle
    them like any no-match (clarify, then hand off) — never crash or drop the call."""
    pytest.importorskip("pywhispercpp", reason="the whisper extra is installed by scripts/test.sh")
    from ari_agent.devtools.ggml_tiny import write_tiny_whisper_model

    model = write_tiny_whisper_model(tmp_path / "tiny-whisper.bin")
    cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url,
                       stt__engine="whisper", stt__whisper__model_path=str(model), stt__whisper__threads="1")
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None
        wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in ORDER_LINES[:2]]
        res = await agent.caller.place_dialog(wavs, "tt", tail_wait_s=12)
        await agent.manager.wait_idle(15)
        conv = conversation_of(agent, res)
        log = "\n".join(json.dumps(e) for e in conv.events)
        heard = [e for e in conv.events if e["kind"] == "heard"]
        assert heard and all(e["error"] is None for e in heard), log
        assert conv.transcripts[0].engine.startswith("whisper"), conv.transcripts[0]
        outcome = agent.manager.outcomes[-1]
        assert outcome.ended_by in ("handoff", "caller", "agent"), outcome
