"""Audio mode: each scenario is a real call through Asterisk, judged from what the call left behind.

The caller is the reactive test caller (``devtools/test_caller.py``): its turns are synthesised in a
caller voice (flite / espeak-ng, ``devtools/voices.py``) and put through the phone line simulation of
``devtools/phone_set.py`` (levelled, line noise when the turn asks for it, lost packets, G.711 µ-law).
The agent is whatever answers ``pbx.inbound_extension``; ``ari-agent eval --mode audio`` runs one in the
same process, but this runner never looks at it. The trace it judges comes from:

- the **call record** the agent wrote at the end of the call (``records``): intents, outcome, queue and
  reason, tools, turns, per-stage latencies, policy events, what the recogniser heard;
- the **caller-side recordings** (Asterisk's MixMonitor on the caller's channel: ``said.wav`` /
  ``heard.wav`` on one timeline): the agent's response time after each caller turn and barge-in stops;
- for a transfer, what a human gets: the channel variables on the caller's channel in the queue
  (``ARI_AGENT_REASON``, ``ARI_AGENT_CALL_ID``, ``ARI_AGENT_CONTEXT_KEY``, ...) and the full context in
  Redis under the call id. The call is hung up once they are read.

The record is found by the caller id: each test call has its own (the test call id), which the runner
hashes with the salt the agent was given (``records.salt``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.devtools.bench_latency import Scenario as LineScenario
from ari_agent.devtools.bench_latency import measure_call
from ari_agent.devtools.phone_set import Renderer, line
from ari_agent.devtools.test_caller import TestCaller, TestCallResult, read_wav_mono, write_wav
from ari_agent.errors import AriAgentError
from ari_agent.evaluation.audio_plan import AudioPlan, PlannedTurn, plan_scenario
from ari_agent.evaluation.scenario import Scenario
from ari_agent.evaluation.trace import CallTrace, ToolCallTrace
from ari_agent.media.pcm import Pcm, resample
from ari_agent.records.model import CallerHasher, CallRecord
from ari_agent.records.store import CallRecordStore
from ari_agent.telephony.ari import AriClient, AriError, AriNotFound

CONTEXT_VARIABLES = ("ARI_AGENT_INTENT", "ARI_AGENT_REASON", "ARI_AGENT_SUMMARY", "ARI_AGENT_CALL_ID",
                     "ARI_AGENT_CONTEXT_KEY", "ARI_AGENT_VERIFIED")
RECORD_WAIT_S = 20.0  # after the caller's script has ended, how long the agent may take to write the record


@dataclass
class AudioEvidence:
    """What one audio scenario's call left behind (the trace is judged from it)."""

    test_call_id: str
    voices: list[str]
    record: CallRecord | None = None
    result: TestCallResult | None = None
    variables: dict[str, str] = field(default_factory=dict)  # ARI_AGENT_* on the caller's channel, at the queue
    context: dict[str, Any] | None = None  # the Redis handoff context
    response_s: list[float] = field(default_factory=list)  # caller-side: end of caller turn -> agent speech
    barge_stop_s: list[float] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)

    def context_problems(self) -> list[str]:
        """Why the transfer's context is not what a human needs ([] when it is)."""
        r = self.record
        if r is None or r.outcome != "transferred":
            return []
        out = []
        if self.variables.get("ARI_AGENT_REASON") != (r.transfer_reason or ""):
            out.append(f"channel ARI_AGENT_REASON={self.variables.get('ARI_AGENT_REASON')!r}, "
                       f"record says {r.transfer_reason!r}")
        if self.variables.get("ARI_AGENT_CALL_ID") != r.call_id:
            out.append("channel ARI_AGENT_CALL_ID is not the call's id")
        if not self.variables.get("ARI_AGENT_CONTEXT_KEY"):
            out.append("no ARI_AGENT_CONTEXT_KEY on the channel")
        if self.context is None:
            out.append("no handoff context in Redis")
        elif not self.context.get("transcript"):
            out.append("the Redis context has no transcript")
        return out


class AudioModeRunner:
    def __init__(self, caller: TestCaller, ari: AriClient, store: CallRecordStore, hasher: CallerHasher, *,
                 work_dir: Path, redis_url: str, backend_url: str | None = None,
                 renderer: Renderer | None = None, max_call_s: float = 150.0) -> None:
        self.caller = caller
        self.ari = ari
        self.store = store
        self.hasher = hasher
        self.work_dir = work_dir
        self.redis_url = redis_url
        self.backend_url = backend_url
        self.renderer = renderer or Renderer(work_dir / "voices")
        self.max_call_s = max_call_s

    async def run(self, scenario: Scenario, voice: str) -> tuple[CallTrace, AudioEvidence]:
        plan = plan_scenario(scenario, voice)
        test_call_id = "c" + uuid.uuid4().hex[:12]
        ev = AudioEvidence(test_call_id, plan.voices, reference=plan.reference)
        trace = CallTrace(scenario.id, started_at=dt.datetime.now(dt.UTC))
        wavs = await asyncio.to_thread(self._render, plan, scenario.id)
        if scenario.backend_faults:
            await self._faults("PUT", dict(scenario.backend_faults))
        try:
            place = asyncio.create_task(self.caller.place_dialog(
                wavs, plan.modes, dtmf=plan.dtmf, tail_wait_s=1.5 if plan.hangs_up else 10.0,
                max_duration_s=self.max_call_s, call_id=test_call_id))
            ev.record = await self._watch(place, ev)
            ev.result = await place
        finally:
            if scenario.backend_faults:
                await self._faults("DELETE", None)
        if ev.result is not None:
            await asyncio.to_thread(_measure, ev, scenario.id, plan.modes)
        _fill_trace(trace, ev, plan)
        return trace, ev

    # ------------------------------------------------------------------ the call
    async def _watch(self, place: asyncio.Task[TestCallResult], ev: AudioEvidence) -> CallRecord | None:
        """Wait for the agent's record of this call; at a transfer, read the context a human gets and end
        the call (the caller would otherwise wait in the queue)."""
        caller_hash = self.hasher.hash(ev.test_call_id)
        assert caller_hash is not None
        deadline: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            found = await asyncio.to_thread(self.store.by_caller, caller_hash)
            if found:
                record = found[-1]
                if record.outcome == "transferred" and not place.done():
                    await self._read_context(ev, record)
                    await self.ari.quietly(self.ari.hangup(f"{ev.test_call_id}-leg"))
                return record
            if place.done():
                deadline = deadline or loop.time() + RECORD_WAIT_S
                if loop.time() > deadline:
                    return None
            await asyncio.sleep(0.25)

    async def _read_context(self, ev: AudioEvidence, record: CallRecord) -> None:
        channel = f"{ev.test_call_id}-leg"
        for name in CONTEXT_VARIABLES:
            try:
                ev.variables[name] = await self.ari.get_variable(channel, name)
            except (AriNotFound, AriError):
                continue
        store = HandoffStore(self.redis_url)
        try:
            ev.context = await store.get(record.call_id)
        finally:
            await store.close()

    async def _faults(self, method: str, faults: dict[str, Any] | None) -> None:
        if self.backend_url is None:
            raise AriAgentError("backend_faults need the demo backend's URL (audio mode runs one)")
        async with aiohttp.ClientSession() as http, \
                http.request(method, f"{self.backend_url}/_faults", json=faults) as resp:
            if resp.status != 200:
                raise AriAgentError(f"the demo backend refused {method} /_faults {faults}: {await resp.text()}")

    # ------------------------------------------------------------------ the caller's audio
    def _render(self, plan: AudioPlan, scenario_id: str) -> list[Path]:
        out = self.work_dir / "turns" / scenario_id
        return [self._render_turn(t, out / f"turn{i + 1}.wav", seed=i + 1) for i, t in enumerate(plan.turns)]

    def _render_turn(self, turn: PlannedTurn, path: Path, seed: int) -> Path:
        if turn.kind == "silence":
            pcm: Pcm = np.zeros(int(9.0 * 8000), dtype=np.int16)
        elif turn.kind == "dtmf":
            pcm = np.zeros(1600, dtype=np.int16)  # not played: the caller keys the digits
        else:
            if turn.kind == "audio":
                assert turn.audio is not None
                raw, rate = read_wav_mono(Path(turn.audio))
                speech = resample(raw, rate, 8000) if rate != 8000 else raw
            else:
                assert turn.text is not None
                speech = self.renderer.speech(turn.text, turn.voice, turn.synth.rate if turn.synth else None)
            s = turn.synth
            loss = s.packet_loss if s and s.packet_loss else 0.0
            noisy = bool(s and (s.noise_snr_db is not None or loss))
            pcm = line(speech, "noise+loss" if loss else ("noise" if noisy else "clean"), loss, seed,
                       s.noise_snr_db if s else None)
            if turn.pause_ms:
                pcm = np.concatenate([np.zeros(turn.pause_ms * 8, dtype=np.int16), pcm])
        write_wav(path, pcm)
        return path


def _measure(ev: AudioEvidence, scenario_id: str, modes: str) -> None:
    """Response times and barge-in stops from the caller-side recordings (devtools/bench_latency.py)."""
    assert ev.result is not None
    if not (Path(ev.result.said).exists() and Path(ev.result.heard).exists()):
        return
    m = measure_call(ev.result, LineScenario(scenario_id, tuple(ev.reference), modes), ",".join(ev.voices))
    ev.response_s, ev.barge_stop_s = m.turn_latencies_s, m.barge_stops_s


def _fill_trace(trace: CallTrace, ev: AudioEvidence, plan: AudioPlan) -> None:
    r = ev.record
    trace.transcript.append(f"        [test call {ev.test_call_id}, voice {', '.join(ev.voices) or '-'}, "
                            f"modes {plan.modes}{', keys ' + plan.dtmf if plan.dtmf else ''}]")
    for said in ev.reference:
        trace.transcript.append(f"CALLER  (said) {said}")
    if r is None:
        trace.error = "the agent wrote no call record for this call"
        trace.ended_at = dt.datetime.now(dt.UTC)
        return
    trace.started_at, trace.ended_at = r.started_at, r.ended_at
    trace.intents = list(r.intents)
    trace.outcome = r.outcome if r.outcome in ("resolved", "transferred", "caller_hung_up") else "open"
    if r.outcome == "error":
        trace.error = "the call ended in an agent error"
    trace.queue, trace.reason = r.transfer_queue, r.transfer_reason
    if r.outcome == "transferred":
        trace.context_problems = ev.context_problems()
    trace.turns = r.turns
    trace.tools = [ToolCallTrace(t.name, {}, None, ok=t.ok, error=t.error, ms=t.ms or 0.0) for t in r.tool_calls]
    trace.stage_ms = {k: list(v) for k, v in r.stage_ms.items()}
    if ev.response_s:
        trace.stage_ms["response_caller_side"] = [round(s * 1000, 1) for s in ev.response_s]
    if ev.barge_stop_s:
        trace.stage_ms["barge_stop_caller_side"] = [round(s * 1000, 1) for s in ev.barge_stop_s]
    for heard in r.heard:
        trace.transcript.append(f"AGENT   (heard) {heard}")
    trace.transcript.append(f"        [record {r.call_id}: {r.outcome}"
                            + (f" to {r.transfer_queue} ({r.transfer_reason})" if r.outcome == "transferred" else "")
                            + (f", tools {[t.name for t in r.tool_calls]}" if r.tool_calls else "") + "]")
    if ev.variables:
        trace.transcript.append("        [at the queue: " + ", ".join(f"{k}={v!r}" for k, v in ev.variables.items()
                                                                     if k != "ARI_AGENT_SUMMARY") + "]")
