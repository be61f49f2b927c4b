"""``ari-agent bench load``: N concurrent calls held through the real Asterisk for a set time.

Each of N caller slots places one reactive scripted call after another (the scenarios and voices of
``bench latency``) until the time is up, so N conversations are in progress at every moment. Reported:

- calls placed, and how each ended on the agent's side (agent / handoff / caller / error); a call is
  **dropped** when it was not answered, or the agent has no outcome for it, or the outcome is an error;
- channels and bridges left in Asterisk once the last call has ended (ARI lists them): leaks;
- the agent process's RSS sampled every ``sample_s`` (5 s); per-minute minima and means over the whole
  minutes at full concurrency, and the growth of the minimum (and of the mean) from minute 2 (0-based,
  seconds 120-180) to the last full minute; the sample after the calls end is shown apart;
- turn latency p50 / p95 **from the caller-side recordings** (as ``bench latency``), under that load.

The agent runs in this process (``InProcessAgent``, the same ``CallManager`` as ``ari-agent run``) with
sessions not kept, so memory is what serving costs; the callers live in Asterisk's dialplan and only
their channel state is polled from here, once a second.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ari_agent.config import Config
from ari_agent.devtools.backend_process import demo_backend_process
from ari_agent.devtools.bench_latency import BENCH_VOICES, SCENARIOS, Scenario, _p, measure_call
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import TestCaller, TestCallResult
from ari_agent.devtools.voices import synthesize_caller

SERVED = ("agent", "handoff", "caller")


@dataclass
class RssTimeline:
    """The agent process's RSS over the run: ``(seconds since start, bytes)`` samples, a few seconds apart.

    One reading swings by ±20 % with the stages the calls happen to be in, so growth is judged on each
    minute's **minimum** (the floor a leak would raise), and the per-minute means are reported beside it.
    """

    samples: list[tuple[float, int]] = field(default_factory=list)

    def minutes(self, until_s: float | None = None) -> list[list[int]]:
        """The samples of each whole minute ``[60k, 60k + 60)`` that ends by ``until_s`` (all if None)."""
        out: list[list[int]] = []
        for t, b in self.samples:
            k = int(t // 60)
            if until_s is not None and 60 * (k + 1) > until_s + 1e-6:
                continue
            while len(out) <= k:
                out.append([])
            out[k].append(b)
        return out

    def per_minute_min_mb(self, until_s: float | None = None) -> list[float | None]:
        return [round(min(m) / 2**20, 1) if m else None for m in self.minutes(until_s)]

    def per_minute_mean_mb(self, until_s: float | None = None) -> list[float | None]:
        return [round(sum(m) / len(m) / 2**20, 1) if m else None for m in self.minutes(until_s)]

    def growth(self, full_until_s: float, from_minute: int = 2) -> dict[str, Any]:
        """Growth of the per-minute minimum (and mean) from minute ``from_minute`` (0-based: minute 2 is
        seconds 120-180) to the last whole minute that ends by ``full_until_s``, the end of full
        concurrency. The final sample, taken after the calls have ended, takes no part.
        None where the run had no whole minute at or after ``from_minute``, or a minute had no sample."""
        mins = self.minutes(full_until_s)
        last = len(mins) - 1
        out: dict[str, Any] = {"from_minute": from_minute, "to_minute": last if last >= from_minute else None,
                               "growth_pct_of_minute_minimum": None, "growth_pct_of_minute_mean": None}
        if last < from_minute or not mins[from_minute] or not mins[last]:
            return out
        first_min, last_min = min(mins[from_minute]), min(mins[last])
        first_mean = sum(mins[from_minute]) / len(mins[from_minute])
        last_mean = sum(mins[last]) / len(mins[last])
        out["growth_pct_of_minute_minimum"] = round(100.0 * (last_min - first_min) / first_min, 2)
        out["growth_pct_of_minute_mean"] = round(100.0 * (last_mean - first_mean) / first_mean, 2)
        return out

    def report(self, full_until_s: float, sample_s: float) -> dict[str, Any]:
        return {
            "sample_every_s": sample_s,
            "full_concurrency_until_s": round(full_until_s, 1),
            "per_minute_min_mb": self.per_minute_min_mb(full_until_s),
            "per_minute_mean_mb": self.per_minute_mean_mb(full_until_s),
            **self.growth(full_until_s),
            "after_calls_mb": round(self.samples[-1][1] / 2**20, 1) if self.samples else None,
        }


async def _sample_rss(timeline: RssTimeline, t0: float, stop: asyncio.Event, sample_s: float) -> None:
    proc = psutil.Process(os.getpid())
    while not stop.is_set():
        timeline.samples.append((time.monotonic() - t0, proc.memory_info().rss))
        try:
            await asyncio.wait_for(stop.wait(), sample_s)
        except TimeoutError:
            pass
    timeline.samples.append((time.monotonic() - t0, proc.memory_info().rss))


async def _slot(caller: TestCaller, slot: int, plan: list[tuple[Scenario, str, list[Path]]], until: float,
                out: list[tuple[TestCallResult, Scenario, str]], errors: list[str]) -> None:
    n = 0
    while time.monotonic() < until:
        scenario, voice, wavs = plan[(slot + n) % len(plan)]
        n += 1
        try:
            res = await caller.place_dialog(wavs, scenario.modes, poll_s=1.0)
        except Exception as exc:  # a failed originate is a dropped call, counted, and the slot goes on
            errors.append(f"slot {slot}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(1.0)
            continue
        out.append((res, scenario, voice))


async def run_load_bench(cfg: Config, calls: int, minutes: float, work_dir: Path,
                         sample_s: float = 5.0) -> dict[str, Any]:
    if cfg.conversation.tools_base_url is None:  # the demo CRM in its own process, as in production
        async with demo_backend_process(work_dir) as url:
            conv = cfg.conversation.model_copy(update={"tools_base_url": url})
            return await run_load_bench(cfg.model_copy(update={"conversation": conv}), calls, minutes,
                                        work_dir, sample_s)
    # the bench measures the agent at this load: the admission limit (agent.max_calls) is what it informs
    agent_cfg = cfg.agent.model_copy(update={"recordings_dir": work_dir / "recordings",
                                             "max_calls": max(cfg.agent.max_calls, calls)})
    cfg = cfg.model_copy(update={"agent": agent_cfg})
    plan = [(sc, voice, [synthesize_caller(line, voice, work_dir / "voices") for line in sc.lines])
            for sc in SCENARIOS for voice in BENCH_VOICES]
    results: list[tuple[TestCallResult, Scenario, str]] = []
    errors: list[str] = []
    timeline = RssTimeline()
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None and agent.ari is not None
        manager = agent.manager
        manager.keep_sessions = False
        await manager.settled()  # start-up's background rendering: not part of the calls' memory or CPU
        t0 = time.monotonic()
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(timeline, t0, stop, sample_s))
        until = t0 + 60.0 * minutes
        caller = agent.caller
        await asyncio.gather(*(_slot(caller, i, plan, until, results, errors) for i in range(calls)))
        await manager.wait_idle(30)
        stop.set()
        await sampler
        wall_s = time.monotonic() - t0
        outcomes = {o.caller_channel: o.ended_by for o in manager.outcomes}
        await asyncio.sleep(2.0)  # let Asterisk finish tearing down the last calls
        left_channels = [c.get("name", c.get("id")) for c in await agent.ari.list_channels()]
        left_bridges = [b.get("id") for b in await agent.ari.list_bridges()]
    ended = [outcomes.get(res.channels[0], "no outcome") for res, _, _ in results]
    dropped = [res.call_id for (res, _, _), how in zip(results, ended, strict=True)
               if not res.answered or how not in SERVED]
    measures = []
    for res, sc, voice in results:
        try:
            measures.append(measure_call(res, sc, voice))
        except Exception as exc:  # a missing recording is reported, not fatal to the report
            errors.append(f"{res.call_id}: recording unreadable: {exc}")
    lat = [x for m in measures for x in m.turn_latencies_s]
    return {
        "concurrent_calls": calls,
        "minutes": minutes,
        "wall_s": round(wall_s, 1),
        "calls_placed": len(results) + len(errors),
        "calls_completed": len(results),
        "ended_by": {k: ended.count(k) for k in sorted(set(ended))},
        "dropped_calls": len(dropped) + sum(1 for e in errors if "recording" not in e),
        "dropped_call_ids": dropped[:20],
        "errors": errors[:20],
        "leaked_channels": left_channels,
        "leaked_bridges": left_bridges,
        # Whole minutes of full concurrency only: every slot places calls until ``minutes`` are up.
        "rss": timeline.report(60.0 * minutes, sample_s),
        "turn_latency_ms": {"p50": _p(lat, 50), "p95": _p(lat, 95), "n": len(lat),
                            "agent_cut_in": sum(1 for x in lat if x < 0)},
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
