"""``ari-agent bench drill redis-outage``: redis goes away while calls keep writing, again and again.

Real processes: a redis-server (AOF, ``appendfsync always``), an ``ari-agent worker`` (restarted
whenever it exits, as systemd would), the demo backend. The agent side is the call's own tool path,
:class:`~ari_agent.integrations.runner.ToolRunner` with the durable spool, in this process: one
``record_write`` (an ``async_write`` tool) every ``1/rate`` seconds, each with its own idempotency
key, as concurrent calls would. Each cycle keeps redis up for ``up_s``, then stops it (SIGKILL by
default) for ``down_s`` and starts it again on the same port and data.

Counted at the end in the **backend** (its ``writes`` table, per idempotency key): every write the
agent accepted (``ok``: queued in RQ or spooled) must be applied exactly once. ``refused`` writes
(``queue_unavailable``: neither redis nor the spool could store them — the caller is handed off,
never told it is done) are reported apart and must be 0 for calls to have continued.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ari_agent.devtools.backend_process import BackendProcess
from ari_agent.devtools.drill_services import RedisProcess, StopMode, WorkerSupervisor
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.runner import ToolRunner
from ari_agent.integrations.tools_config import WriteQueueSettings, demo_tools_config
from ari_agent.seam import CallTool, ToolResult

log = logging.getLogger("ari_agent.devtools.drill_redis")

QUEUE = "drill-writes"


@dataclass
class OutageSettings:
    cycles: int = 100
    down_s: float = 30.0
    up_s: float = 5.0
    rate_per_s: float = 2.0
    stop_mode: StopMode = "kill"
    drain_timeout_s: float = 300.0
    seed: int = 13


@dataclass
class _Submitted:
    key: str
    result: ToolResult
    ms: float
    during_outage: bool


@dataclass
class _Tally:
    submitted: list[_Submitted] = field(default_factory=list)

    def accepted(self) -> list[_Submitted]:
        return [s for s in self.submitted if s.result.ok and s.result.submitted]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


async def _write(runner: ToolRunner, n: int, outage: asyncio.Event, tally: _Tally) -> None:
    args = {"reference": f"drill-{n:06d}", "payload": {"n": n}}
    key = idempotency_key(f"drill-call-{n}", "record_write", args)
    during = outage.is_set()
    t0 = time.perf_counter()
    result = await runner.run(CallTool("record_write", args, key, f"drill-call-{n}"))
    tally.submitted.append(_Submitted(key, result, (time.perf_counter() - t0) * 1000, during or outage.is_set()))


async def _submit_forever(runner: ToolRunner, rate: float, outage: asyncio.Event, tally: _Tally,
                          stop: asyncio.Event) -> None:
    tasks: set[asyncio.Task[None]] = set()
    n = 0
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    while not stop.is_set():
        task = asyncio.create_task(_write(runner, n, outage, tally))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        next_at += 1.0 / rate
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
        except TimeoutError:
            pass
    await asyncio.gather(*tasks)


async def _drained(backend: BackendProcess, keys: set[str], timeout_s: float, runner: ToolRunner) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts: dict[str, int] = (await asyncio.to_thread(backend.get_json, "/writes/counts"))["per_key"]
        spooling = runner.spooler is not None and runner.spooler.spooling
        if (keys <= set(counts) and not spooling) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(1.0)


async def run_redis_outage_drill(settings: OutageSettings, work_dir: Path,
                                 progress: Any = None) -> dict[str, Any]:
    rng = random.Random(settings.seed)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    redis_srv = RedisProcess(work_dir / "redis")
    backend = BackendProcess(work_dir, "--write-delay-after-ms", "10")
    await asyncio.to_thread(redis_srv.start)
    await asyncio.to_thread(backend.start)
    workers = WorkerSupervisor(redis_srv.url, QUEUE, work_dir)
    tools = demo_tools_config().model_copy(update={"write_queue": WriteQueueSettings(name=QUEUE)})
    spool_path = work_dir / "agent-spool.jsonl"
    tally = _Tally()
    outage = asyncio.Event()
    stop = asyncio.Event()
    outages: list[dict[str, float]] = []
    t_start = time.monotonic()
    try:
        await workers.start()
        async with ToolRunner(tools, base_url=backend.url, redis_url=redis_srv.url, spool_path=spool_path,
                              spool_replay_interval_s=0.5) as runner:
            submitter = asyncio.create_task(_submit_forever(runner, settings.rate_per_s, outage, tally, stop))
            for cycle in range(settings.cycles):
                await asyncio.sleep(settings.up_s * rng.uniform(0.8, 1.2))
                t_down = time.monotonic()
                await asyncio.to_thread(redis_srv.stop, settings.stop_mode)
                outage.set()
                await asyncio.sleep(settings.down_s)
                await asyncio.to_thread(redis_srv.start)
                outage.clear()
                outages.append({"down_s": round(time.monotonic() - t_down, 2)})
                if progress is not None:
                    progress(cycle + 1, settings.cycles, len(tally.submitted))
            await asyncio.sleep(settings.up_s)
            stop.set()
            await submitter
            accepted_keys = {s.key for s in tally.accepted()}
            t_drain = time.monotonic()
            counts = await _drained(backend, accepted_keys, settings.drain_timeout_s, runner)
            drain_s = time.monotonic() - t_drain
            spooler = runner.spooler
            spooled_total = spooler.spooled_total if spooler is not None else 0
            spool_left = len(spooler.spool.pending()) if spooler is not None else 0
        backend_counts = await asyncio.to_thread(backend.get_json, "/writes/counts")
    finally:
        stop.set()
        await workers.stop()
        await asyncio.to_thread(backend.stop)
        await asyncio.to_thread(redis_srv.stop, "term")
    return _figures(settings, tally, counts, backend_counts, accepted_keys, outages, workers, spooled_total,
                    spool_left, drain_s, time.monotonic() - t_start)


def _figures(settings: OutageSettings, tally: _Tally, counts: dict[str, int], backend_counts: dict[str, Any],
             accepted_keys: set[str], outages: list[dict[str, float]], workers: WorkerSupervisor,
             spooled_total: int, spool_left: int, drain_s: float, elapsed_s: float) -> dict[str, Any]:
    all_keys = {s.key for s in tally.submitted}
    states = Counter(str(s.result.data.get("state")) for s in tally.accepted())
    refused = [s for s in tally.submitted if not (s.result.ok and s.result.submitted)]
    outage_ms = [s.ms for s in tally.submitted if s.during_outage]
    normal_ms = [s.ms for s in tally.submitted if not s.during_outage]
    lost = sorted(accepted_keys - set(counts))
    return {
        "cycles": settings.cycles,
        "down_s": settings.down_s,
        "up_s": settings.up_s,
        "stop_mode": settings.stop_mode,
        "rate_per_s": settings.rate_per_s,
        "writes_submitted": len(tally.submitted),
        "writes_accepted": len(accepted_keys),
        "accepted_by_state": dict(states),
        "writes_refused": len(refused),
        "refused_errors": dict(Counter(str(s.result.error) for s in refused)),
        "submitted_during_outage": len(outage_ms),
        "backend_writes": int(backend_counts["count"]),
        "backend_unique_keys": len(counts),
        "lost": len(lost),
        "lost_keys_sample": lost[:10],
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "unexpected": len(set(counts) - all_keys),
        "backend_idempotent_replays": int(backend_counts["replays"]),
        "spooled_total": spooled_total,
        "spool_left": spool_left,
        "worker_processes_started": workers.started,
        "worker_exits": dict(workers.exits),
        "submit_ms_during_outage": {"p50": _pct(outage_ms, 0.5), "p99": _pct(outage_ms, 0.99),
                                    "max": round(max(outage_ms, default=0.0), 1)},
        "submit_ms_redis_up": {"p50": _pct(normal_ms, 0.5), "p99": _pct(normal_ms, 0.99),
                               "max": round(max(normal_ms, default=0.0), 1),
                               "mean": round(statistics.fmean(normal_ms), 1) if normal_ms else 0.0},
        "outage_s_measured": {"min": min((o["down_s"] for o in outages), default=0.0),
                              "max": max((o["down_s"] for o in outages), default=0.0)},
        "drain_after_last_outage_s": round(drain_s, 1),
        "elapsed_s": round(elapsed_s, 1),
    }


def passed(figures: dict[str, Any]) -> bool:
    return bool(figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
                and figures["writes_refused"] == 0 and figures["writes_accepted"] > 0)


def figures_json(figures: dict[str, Any]) -> str:
    return json.dumps(figures, indent=2, sort_keys=True)
