"""Redis down while **real calls** go through the PBX and make their slow writes.

``ari-agent bench drill redis-outage --calls-per-cycle N`` and
``tests/integration/test_fault_redis_outage_calls.py``. Real processes: the local Asterisk, the agent
(:class:`~ari_agent.devtools.harness.InProcessAgent`, the same ``CallManager`` as ``ari-agent run``, in
voice mode), a redis-server (AOF, ``appendfsync always``), an ``ari-agent worker`` (restarted when it
exits), the demo backend in its own process. The intent map is the demo map plus ``callback_request``
(:func:`~ari_agent.devtools.drill_calls.callback_map`): its one write, ``record_write``, is an
``async_write`` tool, queued on RQ — or, while redis is down, fsync'd to the agent's spool and replayed.

Each cycle places ``calls`` calls at once (flite voice: "can someone call me back please", "yes
please", "no thanks, goodbye"), stops redis (SIGKILL by default) once every call is answered, keeps it
down for ``down_s`` — or, with ``until_spooled``, until every call's write has gone to the spool — then
starts it again on the same port and data while the calls go on.

Counted per call from the agent's own event log and the caller's recording: placed, answered, the
write made, the booked answer said and heard, how the call ended. Counted at the end in the
**backend** (``GET /writes/counts``, per idempotency key): every accepted write applied exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ari_agent.config import Config
from ari_agent.devtools.backend_process import BackendProcess
from ari_agent.devtools.drill_calls import CALLBACK_INTENT, callback_map_yaml
from ari_agent.devtools.drill_services import RedisProcess, StopMode, WorkerSupervisor
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.integrations.runner import ToolRunner
from ari_agent.media.match import audio_similarity

CALLER_LINES = ("Hello, can someone call me back please?", "Yes please.", "No thanks, goodbye.")
CALLER_VOICE = "flite:rms"
BOOKED = str(CALLBACK_INTENT["responses"]["submitted"])
WRITE_TOOL = "record_write"
HEARD_MIN = 0.9  # caller-side recording vs the agent's rendering of the booked answer (audio_similarity)
SERVED = ("agent", "caller")  # how a completed call ends: the agent's goodbye, or the caller hanging up


@dataclass
class RealCallSettings:
    cycles: int = 10
    calls_per_cycle: int = 2
    down_s: float = 30.0
    up_s: float = 5.0
    stop_mode: StopMode = "kill"
    drain_timeout_s: float = 120.0
    answer_timeout_s: float = 30.0


@dataclass
class CallRun:
    call_id: str
    cycle: int
    answered: bool = False
    ended_by: str = "no outcome"
    said: list[str] = field(default_factory=list)
    write_keys: list[str] = field(default_factory=list)
    write_results: list[dict[str, Any]] = field(default_factory=list)  # the tool_result events
    heard_booked: float = 0.0  # audio_similarity of the caller's recording and the booked answer
    error: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    ended_at: float = 0.0  # time.monotonic() when the call was over

    @property
    def accepted(self) -> bool:
        return bool(self.write_results) and all(r.get("ok") and r.get("submitted") for r in self.write_results)

    @property
    def said_booked(self) -> bool:
        return BOOKED in self.said

    @property
    def completed(self) -> bool:
        """Answered, the write accepted, the booked answer said and heard, ended as a served call."""
        return (self.answered and self.accepted and self.said_booked and self.heard_booked >= HEARD_MIN
                and self.ended_by in SERVED)

    @property
    def dropped(self) -> bool:
        """The call broke: not answered, an error, or torn down by neither the agent nor the caller."""
        return self.error is not None or not self.answered or self.ended_by not in (*SERVED, "handoff")


@dataclass
class CycleReport:
    cycle: int
    calls: list[CallRun]
    down_s: float  # measured
    spooled: int  # writes that went to the spool during this cycle
    down_at: float  # time.monotonic() when redis was stopped
    up_at: float  # ... and answering again
    stopped_before_any_write: bool  # no call had reached its write when redis stopped


class OutageRig:
    """Redis, the worker and the demo backend for the drill; :meth:`agent_config` points an agent at them."""

    def __init__(self, work_dir: Path, *, workers: int = 1) -> None:
        self.work_dir = work_dir
        self.redis = RedisProcess(work_dir / "redis")
        self.backend = BackendProcess(work_dir / "backend", "--write-delay-after-ms", "10")
        self.map_path = work_dir / "callback-map.yaml"
        self.spool_path = work_dir / "agent-spool.jsonl"
        self.workers = WorkerSupervisor(self.redis.url, callback_map_queue(), work_dir / "workers", count=workers)

    async def __aenter__(self) -> OutageRig:
        await asyncio.to_thread(self.work_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self.map_path.write_text, callback_map_yaml())
        await asyncio.to_thread(self.redis.start)
        try:
            await asyncio.to_thread(self.backend.start)
            await self.workers.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.workers.stop()
        await asyncio.to_thread(self.backend.stop)
        await asyncio.to_thread(self.redis.stop, "term")

    def agent_config(self, base: Config) -> Config:
        """``base`` (ARI, PBX, voices) with the agent on this rig; recordings and call logs in the work dir."""
        return base.model_copy(update={
            "conversation": base.conversation.model_copy(update={
                "mode": "voice", "tools_base_url": self.backend.url, "intent_map": self.map_path,
                "business_hours": False}),
            "redis": base.redis.model_copy(update={"url": self.redis.url, "spool_path": self.spool_path}),
            "agent": base.agent.model_copy(update={"recordings_dir": self.work_dir / "recordings"}),
            "storage": base.storage.model_copy(update={"call_logs_dir": self.work_dir / "call-logs"}),
        })

    def write_counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.backend.get_json("/writes/counts")["per_key"]
        return counts


def callback_map_queue() -> str:
    from ari_agent.devtools.drill_calls import callback_map

    return callback_map().tools_config.write_queue.name


def agent_tools(agent: InProcessAgent) -> ToolRunner:
    """The agent's one tool runner (shared by its calls), to read its spool figures."""
    assert agent.manager is not None
    conversation = agent.manager.conversation_factory()
    tools: ToolRunner = conversation.s.tools  # type: ignore[attr-defined]  # a VoiceConversation's services
    return tools


def _session_of(agent: InProcessAgent, call_id: str) -> Any:
    assert agent.manager is not None
    for s in [*agent.manager.sessions.values(), *agent.manager.ended]:
        if s.caller.id == f"{call_id}-leg":
            return s
    return None


async def _place(agent: InProcessAgent, wavs: list[Path], run: CallRun) -> CallRun:
    assert agent.caller is not None and agent.manager is not None
    try:
        res = await agent.caller.place_dialog(wavs, "t" * len(wavs), tail_wait_s=4, call_id=run.call_id,
                                              poll_s=0.5)
    except Exception as exc:  # a failed originate is a dropped call, counted
        run.error = f"{type(exc).__name__}: {exc}"
        return run
    run.answered = res.answered
    run.ended_at = time.monotonic()
    deadline = time.monotonic() + 15
    while (session := _session_of(agent, run.call_id)) is not None and session.call_id in agent.manager.sessions:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    if session is None:
        run.error = "the agent never served the call"
        return run
    run.ended_by = session.outcome.ended_by
    run.events = [dict(e) for e in session.conversation.events]
    run.said = [e["text"] for e in run.events if e["kind"] == "say"]
    run.write_keys = [e["key"] for e in run.events if e["kind"] == "tool" and e["name"] == WRITE_TOOL]
    run.write_results = [e for e in run.events if e["kind"] == "tool_result"]
    if run.said_booked:
        try:
            heard, _ = await asyncio.to_thread(read_wav_mono, Path(res.heard))
            ref = await asyncio.to_thread(session.conversation.s.prompts.tts.synthesize, BOOKED)
            run.heard_booked = round(await asyncio.to_thread(audio_similarity, heard, ref, max_lag_s=120), 3)
        except Exception as exc:  # an unreadable recording: not heard, reported
            run.error = f"recording: {type(exc).__name__}: {exc}"
    return run


def caller_wavs(voice_dir: Path) -> list[Path]:
    return [synthesize_caller(line, CALLER_VOICE, voice_dir) for line in CALLER_LINES]


async def outage_cycle(agent: InProcessAgent, rig: OutageRig, wavs: list[Path], *, cycle: int, calls: int,
                       down_s: float, stop_mode: StopMode = "kill", until_spooled: bool = False,
                       answer_timeout_s: float = 30.0) -> CycleReport:
    """``calls`` real calls at once; redis stopped once all are answered, for ``down_s`` (with
    ``until_spooled``: at least ``down_s`` and until each call's write has gone to the spool), then
    started again while the calls go on. Returns when every call has ended."""
    assert agent.manager is not None
    spooler = agent_tools(agent).spooler
    spooled_before = spooler.spooled_total if spooler is not None else 0
    stamp = int(time.time() * 1000) % 10**7
    # the test caller's dialplan answers extensions "c..." only (dialplan/test-caller.conf)
    runs = [CallRun(f"cro{cycle:03d}n{i}t{stamp}", cycle) for i in range(calls)]
    tasks = [asyncio.create_task(_place(agent, wavs, run)) for run in runs]
    deadline = time.monotonic() + answer_timeout_s
    while not all(_session_of(agent, r.call_id) is not None or tasks[i].done() for i, r in enumerate(runs)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    wrote_before = sum(any(e["kind"] == "tool" for e in _session_of(agent, r.call_id).conversation.events)
                       for r in runs if _session_of(agent, r.call_id) is not None)
    t_down = time.monotonic()
    await asyncio.to_thread(rig.redis.stop, stop_mode)
    try:
        until = t_down + down_s
        while time.monotonic() < until or until_spooled:
            spooled = (spooler.spooled_total if spooler is not None else 0) - spooled_before
            if until_spooled and time.monotonic() >= until and (spooled >= calls or all(t.done() for t in tasks)):
                break
            if time.monotonic() > t_down + down_s + 90:
                break
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(rig.redis.start)
    t_up = time.monotonic()
    done = await asyncio.gather(*tasks)
    spooled = (spooler.spooled_total if spooler is not None else 0) - spooled_before
    return CycleReport(cycle, list(done), round(t_up - t_down, 2), spooled, t_down, t_up, wrote_before == 0)


async def drained(rig: OutageRig, agent: InProcessAgent, keys: set[str], timeout_s: float) -> dict[str, int]:
    """The backend's per-key write counts once every key has landed and the spool is empty (or at the timeout)."""
    spooler = agent_tools(agent).spooler
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await asyncio.to_thread(rig.write_counts)
        spooling = spooler is not None and (spooler.spooling or bool(spooler.spool.pending()))
        if (keys <= set(counts) and not spooling) or time.monotonic() > deadline:
            await asyncio.sleep(1.0)  # a duplicate, if any, would have had time to land
            return await asyncio.to_thread(rig.write_counts)
        await asyncio.sleep(0.25)


async def run_real_call_outage_drill(settings: RealCallSettings, base: Config, work_dir: Path,
                                     progress: Any = None) -> dict[str, Any]:
    t_start = time.monotonic()
    wavs = await asyncio.to_thread(caller_wavs, work_dir / "voices")
    cycles: list[CycleReport] = []
    async with OutageRig(work_dir) as rig, InProcessAgent(rig.agent_config(base)) as agent:
        assert agent.ari is not None
        for cycle in range(settings.cycles):
            report = await outage_cycle(agent, rig, wavs, cycle=cycle, calls=settings.calls_per_cycle,
                                        down_s=settings.down_s, stop_mode=settings.stop_mode,
                                        answer_timeout_s=settings.answer_timeout_s)
            cycles.append(report)
            if progress is not None:
                progress(cycle + 1, settings.cycles, sum(len(c.calls) for c in cycles))
            await asyncio.sleep(settings.up_s)
        runs = [r for c in cycles for r in c.calls]
        keys = {k for r in runs if r.accepted for k in r.write_keys}
        t_drain = time.monotonic()
        counts = await drained(rig, agent, keys, settings.drain_timeout_s)
        drain_s = time.monotonic() - t_drain
        spooler = agent_tools(agent).spooler
        spool_left = len(spooler.spool.pending()) if spooler is not None else 0
        await asyncio.sleep(1.0)
        left_channels = [str(c.get("name", c.get("id"))) for c in await agent.ari.list_channels()]
    return figures(settings, cycles, counts, spool_left, left_channels, rig.workers, drain_s,
                   time.monotonic() - t_start)


def figures(settings: RealCallSettings, cycles: list[CycleReport], counts: dict[str, int], spool_left: int,
            left_channels: list[str], workers: WorkerSupervisor, drain_s: float, elapsed_s: float) -> dict[str, Any]:
    runs = [r for c in cycles for r in c.calls]
    made = [k for r in runs for k in r.write_keys]
    accepted = {k for r in runs if r.accepted for k in r.write_keys}
    lost = sorted(accepted - set(counts))
    problems = [{"call": r.call_id, "answered": r.answered, "ended_by": r.ended_by, "error": r.error,
                 "said_booked": r.said_booked, "heard_booked": r.heard_booked, "writes": r.write_results}
                for r in runs if not r.completed][:10]
    return {
        "mode": "real_calls",
        "cycles": settings.cycles,
        "calls_per_cycle": settings.calls_per_cycle,
        "down_s": settings.down_s,
        "up_s": settings.up_s,
        "stop_mode": settings.stop_mode,
        "calls_placed": len(runs),
        "calls_answered": sum(r.answered for r in runs),
        "calls_completed": sum(r.completed for r in runs),
        "calls_dropped": sum(r.dropped for r in runs),
        "calls_handed_off": sum(r.ended_by == "handoff" for r in runs),
        "ended_by": dict(Counter(r.ended_by for r in runs)),
        "booked_answer_heard": sum(r.heard_booked >= HEARD_MIN for r in runs),
        "heard_booked_min": min((r.heard_booked for r in runs), default=0.0),
        "writes_made": len(made),
        "writes_accepted": len(accepted),
        "writes_refused": sum(1 for r in runs for x in r.write_results if not (x.get("ok") and x.get("submitted"))),
        "writes_spooled": sum(c.spooled for c in cycles),
        "cycles_all_writes_during_outage": sum(c.spooled >= len(c.calls) for c in cycles),
        "writes_landed": len(accepted & set(counts)),
        "lost": len(lost),
        "lost_keys_sample": lost[:10],
        "duplicated": sum(n - 1 for k, n in counts.items() if k in set(made) and n > 1),
        "unexpected": len(set(counts) - set(made)),
        "backend_writes": sum(counts.values()),
        "spool_left": spool_left,
        "leaked_channels": left_channels,
        "worker_processes_started": workers.started,
        "outage_s_measured": {"min": min((c.down_s for c in cycles), default=0.0),
                              "max": max((c.down_s for c in cycles), default=0.0)},
        "drain_after_last_outage_s": round(drain_s, 1),
        "elapsed_s": round(elapsed_s, 1),
        "problem_calls": problems,
    }


def passed(figures: dict[str, Any]) -> bool:
    return bool(figures["calls_placed"] > 0 and figures["calls_completed"] == figures["calls_placed"]
                and figures["calls_dropped"] == 0 and figures["lost"] == 0 and figures["duplicated"] == 0
                and figures["unexpected"] == 0 and figures["writes_refused"] == 0
                and figures["writes_landed"] == figures["writes_made"] == figures["calls_placed"]
                and figures["writes_spooled"] > 0 and not figures["leaked_channels"])
