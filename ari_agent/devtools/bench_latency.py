"""``ari-agent bench latency``: turn latency and barge-in stop time measured on the line.

N concurrent real calls through Asterisk; each caller is a reactive scripted caller
(``[ari-agent-test-dialog]``: speaks after the agent's prompt ends, or over it for barge-in) with a
synthetic voice at phone quality. Figures come **from the caller-side recordings alone** (MixMonitor's
``said.wav`` / ``heard.wav`` on the caller's channel share one timeline):
- turn latency: end of a caller utterance → start of the agent's next speech;
- barge-in stop: onset of caller speech over a prompt → the agent's audio stops.
The agent's own per-stage timings are reported beside them only to show where time goes.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ari_agent.call.voice_loop import VoiceConversation, describe
from ari_agent.config import Config
from ari_agent.devtools.backend_process import demo_backend_process
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.resource_meter import measure
from ari_agent.devtools.test_caller import TestCallResult, read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.media.segments import Segment, speech_segments


@dataclass(frozen=True)
class Scenario:
    name: str
    lines: tuple[str, ...]
    modes: str


SCENARIOS = (
    Scenario("order_status", ("Hi, I'd like to check the status of my order please.", "four five six seven",
                              "No, that's all, thank you."), "ttt"),
    Scenario("opening_hours", ("What time are you open on Saturday?", "No thanks, goodbye."), "tt"),
    Scenario("barge_in", ("I want to check my order.", "four five six seven", "No, that's all, thank you."),
             "btt"),
)
BENCH_VOICES = ("flite:rms", "flite:slt", "flite:awb", "flite:kal16")


@dataclass
class CallMeasure:
    scenario: str
    voice: str
    turn_latencies_s: list[float]
    barge_stops_s: list[float]
    said: list[Segment]
    heard: list[Segment]


def measure_call(res: TestCallResult, scenario: Scenario, voice: str) -> CallMeasure:
    said_pcm, _ = read_wav_mono(Path(res.said))
    heard_pcm, _ = read_wav_mono(Path(res.heard))
    said = speech_segments(said_pcm)
    heard = speech_segments(heard_pcm, bridge_gap_ms=150)
    latencies: list[float] = []
    stops: list[float] = []
    for i, seg in enumerate(said):
        overlapping = [h for h in heard if h.start_s < seg.start_s < h.end_s]
        if overlapping:  # the caller spoke over the agent: a barge-in
            stops.append(overlapping[0].end_s - seg.start_s)
            continue
        # The agent's answer: its first speech that starts after the caller began this segment. It may
        # start before the caller has finished (the agent cut in: a negative latency, counted as such).
        nxt = next((h for h in heard if h.start_s > seg.start_s), None)
        if nxt is None or nxt.start_s - seg.end_s >= 10.0:
            continue
        if i + 1 < len(said) and said[i + 1].start_s < nxt.start_s:
            continue  # the caller paused mid-turn and went on: the turn ends with a later segment
        latencies.append(nxt.start_s - seg.end_s)
    return CallMeasure(scenario.name, voice, latencies, stops, said, heard)


def _p(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)) * 1000, 1) if values else None


def _stage_profile(convs: list[VoiceConversation]) -> dict[str, float | None]:
    stages: dict[str, list[float]] = {}
    for c in convs:
        for t in c.timings:
            for k, v in t.profile_ms().items():
                if v is not None:
                    stages.setdefault(k, []).append(v)
    return {k: round(statistics.median(v), 1) for k, v in stages.items()}


async def run_latency_bench(cfg: Config, calls: int, work_dir: Path, plot: Path | None = None,
                            rounds: int = 1) -> dict[str, Any]:
    """With no ``conversation.tools_base_url`` configured, the demo backend runs as its own process
    (as in production: its CPU is not the agent's)."""
    if cfg.conversation.tools_base_url is None:
        async with demo_backend_process(work_dir) as url:
            conv = cfg.conversation.model_copy(update={"tools_base_url": url})
            return await run_latency_bench(cfg.model_copy(update={"conversation": conv}), calls, work_dir, plot,
                                           rounds)
    # the bench measures the agent at this load: the admission limit (agent.max_calls) is what it informs
    agent_cfg = cfg.agent.model_copy(update={"recordings_dir": work_dir / "recordings",
                                             "max_calls": max(cfg.agent.max_calls, calls)})
    cfg = cfg.model_copy(update={"agent": agent_cfg})
    plans = [[(SCENARIOS[(r * calls + i) % len(SCENARIOS)], BENCH_VOICES[(r * calls + i) % len(BENCH_VOICES)])
              for i in range(calls)] for r in range(rounds)]
    plan = [p for round_plan in plans for p in round_plan]
    wavs = [[synthesize_caller(line, voice, work_dir / "voices") for line in sc.lines] for sc, voice in plan]
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None
        caller, manager = agent.caller, agent.manager
        # the map's lines are rendered in the background at start-up: not a call's CPU, nor its wait
        await manager.settled()

        async def all_rounds() -> list[TestCallResult]:
            out: list[TestCallResult] = []
            for r in range(rounds):  # rounds run one after another; the calls of a round concurrently
                batch = list(zip(wavs[r * calls:(r + 1) * calls], plans[r], strict=True))
                out += await asyncio.gather(*(caller.place_dialog(w, sc.modes) for w, (sc, _) in batch))
                if r + 1 < rounds:  # (the last round winds down below, outside the measured window)
                    # the round's calls wind down before the next round's callers arrive: one still ending counts
                    # against agent.max_calls, and a caller passed on for capacity is a call the bench loses
                    await manager.wait_idle(10)
            return out

        results, usage = await measure(all_rounds(), sample_s=0.2)
        await manager.wait_idle(10)
        convs = [s.conversation for s in manager.ended if isinstance(s.conversation, VoiceConversation)]
        by_leg = {s.caller.id: s.conversation for s in manager.ended}
        outcomes = [o.ended_by for o in manager.outcomes]
    measures = [measure_call(r, sc, v) for r, (sc, v) in zip(results, plan, strict=True)]
    lat = [x for m in measures for x in m.turn_latencies_s]
    stops = [x for m in measures for x in m.barge_stops_s]
    out: dict[str, Any] = {
        "calls": calls,
        "rounds": rounds,
        "turn_latency_ms": {"p50": _p(lat, 50), "p95": _p(lat, 95), "n": len(lat),
                            "agent_cut_in": sum(1 for x in lat if x < 0)},
        "barge_in_stop_ms": {"p50": _p(stops, 50), "p95": _p(stops, 95), "n": len(stops)},
        **usage.per_call(calls * rounds, calls),
        "agent_stage_profile_median_ms": _stage_profile(convs),
        "call_outcomes": {k: outcomes.count(k) for k in sorted(set(outcomes))},
        "heard_by_agent": [t.text for c in convs for t in c.timings][:40],
        "per_call": [{"scenario": m.scenario, "voice": m.voice,
                      "turn_latency_ms": [round(x * 1000) for x in m.turn_latencies_s],
                      "barge_stop_ms": [round(x * 1000) for x in m.barge_stops_s],
                      "agent_turns": _turns(by_leg.get(f"{r.call_id}-leg"))}
                     for m, r in zip(measures, results, strict=True)],
    }
    if plot is not None:
        _plot(lat, stops, plot, calls)
        out["plot"] = str(plot)
    return out


def _turns(conv: object) -> list[dict[str, Any]]:
    return describe(conv.timings) if isinstance(conv, VoiceConversation) else []


def _plot(lat: list[float], stops: list[float], path: Path, calls: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].hist([x * 1000 for x in lat], bins=20, color="#3b7dd8")
    axes[0].set_title(f"turn latency on the line ({calls} concurrent calls)")
    axes[0].set_xlabel("end of caller speech → agent speech (ms)")
    axes[1].hist([x * 1000 for x in stops], bins=10, color="#d8743b")
    axes[1].set_title("barge-in stop time")
    axes[1].set_xlabel("caller onset → agent audio stops (ms)")
    for ax in axes:
        ax.set_ylabel("count")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
