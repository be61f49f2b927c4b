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

One exception to "never looks at the agent": a caller answers a **read-back** ("I have 4 5 6 7. Is that
right?", asked when the recognisers were unsure of a value) as a person would, and a fixed script cannot
know when one comes. Given ``live_events`` (the serving conversation's event log, standing for what the
caller hears), the runner answers each read-back with an extra turn in the caller's voice: "yes" when the
value read back is one the caller's script says, else "no, " and the line the caller said last. The extra
turns are in the trace and the WER reference like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.conversation.intent_map import IntentMap
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
READ_BACK = re.compile(r"^I have (?P<value>.+)\. Is that right\?$")  # conversation/engine.py _ask_read_back
MAX_READ_BACK_ANSWERS = 4  # per call
# After its last line a caller stays on while the agent talks (a handoff says where the call goes, then
# moves it): this long, then it hangs up. 10 s cut off transfers announced after a slow turn.
CALLER_WAITS_S = 20.0
LiveEvents = Callable[[str], "Sequence[Mapping[str, Any]] | None"]  # agent channel id -> its event log so far


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
    # read-back answers the caller gave: (caller turns before it, what it said)
    extras: list[tuple[int, str]] = field(default_factory=list)

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


async def check_redis(url: str, timeout_s: float = 2.0) -> None:
    """Refuse an audio run up front when Redis (``redis.url``) does not answer: the agent would still
    transfer, but every transfer would lack its handoff context in Redis and be judged wrong, which
    reads as an agent failure. A clear error instead, the URL shown without its password."""
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from ari_agent.integrations.jobs import url_without_password

    shown = url_without_password(url)
    try:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise AriAgentError(f"redis.url {shown!r} is not a Redis URL: {exc}") from None
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise AriAgentError(
            f"Redis is not reachable at {shown} ({type(exc).__name__}): audio mode needs it, or every transfer "
            "lacks its handoff context and is judged wrong. Start redis-server (scripts/quickstart.sh starts one) "
            "or set redis.url / ARI_AGENT__REDIS__URL to one that answers") from None
    finally:
        with contextlib.suppress(RedisError, OSError):
            await client.aclose()


class AudioModeRunner:
    def __init__(self, caller: TestCaller, ari: AriClient, store: CallRecordStore, hasher: CallerHasher, *,
                 work_dir: Path, redis_url: str, backend_url: str | None = None,
                 renderer: Renderer | None = None, max_call_s: float = 150.0,
                 live_events: LiveEvents | None = None, intent_map: IntentMap | None = None) -> None:
        self.caller = caller
        self.ari = ari
        self.store = store
        self.hasher = hasher
        self.work_dir = work_dir
        self.redis_url = redis_url
        self.backend_url = backend_url
        self.renderer = renderer or Renderer(work_dir / "voices")
        self.max_call_s = max_call_s
        self.live_events = live_events
        self.intent_map = intent_map

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
                wavs, plan.modes, dtmf=plan.dtmf, tail_wait_s=1.5 if plan.hangs_up else CALLER_WAITS_S,
                max_duration_s=self.max_call_s, call_id=test_call_id))
            answering = asyncio.create_task(self._answer_read_backs(plan, ev)) \
                if self.live_events is not None and self.intent_map is not None else None
            try:
                ev.record = await self._watch(place, ev)
                ev.result = await place
            finally:
                if answering is not None:
                    answering.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await answering
        finally:
            if scenario.backend_faults:
                await self._faults("DELETE", None)
        modes = plan.modes
        for before, said in reversed(ev.extras):  # the answers, where they were spoken
            speech_before = sum(1 for t in plan.turns[:before] if t.kind == "speech" and t.text)
            ev.reference.insert(speech_before, said)
            modes = modes[:before] + "t" + modes[before:]
        if ev.result is not None:
            await asyncio.to_thread(_measure, ev, scenario.id, modes)
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

    async def _answer_read_backs(self, plan: AudioPlan, ev: AudioEvidence) -> None:
        """Answer the agent's read-backs while the call runs (see the module doc)."""
        assert self.live_events is not None and self.intent_map is not None
        call_dir = self.caller.host_calls_dir() / ev.test_call_id
        channel = f"{ev.test_call_id}-leg"
        seen = 0
        while len(ev.extras) < MAX_READ_BACK_ANSWERS:
            await asyncio.sleep(0.1)
            events = self.live_events(channel)
            if events is None:
                continue
            for i in range(seen, len(events)):
                m = READ_BACK.match(str(events[i].get("text") or "")) if events[i].get("kind") == "say" else None
                if m is None:
                    continue
                played = sum(1 for e in events[:i] if e.get("kind") in ("heard", "dtmf")) - len(ev.extras)
                played = max(0, min(played, len(plan.turns)))
                said = read_back_answer(self.intent_map, plan, m.group("value"), played)
                last = plan.turns[max(0, played - 1)]
                path = call_dir / f"extra{len(ev.extras) + 1}.wav"
                turn = PlannedTurn("speech", "t", said, voice=last.voice, synth=last.synth)
                await asyncio.to_thread(self._render_turn, turn, path, 100 + i)
                ev.extras.append((played, said))
            seen = len(events)

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


def read_back_answer(intent_map: IntentMap, plan: AudioPlan, spoken: str, turns: int) -> str:
    """What the caller says to "I have <spoken>. Is that right?" after its first ``turns`` turns: "yes" when
    ``spoken`` is how the agent reads back a value one of the script's lines gives; otherwise "no, " and the
    last line it said that gives a value of a number, code, date or time slot (the agent takes a new value
    in the answer to a read-back)."""
    from ari_agent.conversation.slots import parse_slot

    slots = [s for s in intent_map.slots() if s.type in ("digits", "number", "letters", "date", "time")]
    today = dt.date.today()

    def values(text: str) -> set[str]:
        out = set()
        for slot in slots:
            got = parse_slot(slot, text, today=today, date_order=intent_map.spec.date_order,
                             postcode=intent_map.spec.locale.postcode)
            if got is not None:
                out.add(got.spoken)
        return out

    texts = [t.text for t in plan.turns if t.kind == "speech" and t.text]
    if any(spoken in values(text) for text in texts):
        return "yes"
    said = [t.text for t in plan.turns[:turns] if t.kind == "speech" and t.text and values(t.text)]
    return f"no, {said[-1]}" if said else "no"

