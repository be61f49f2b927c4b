"""``ari-agent bench drill worker-kill``: RQ workers SIGKILLed at random points over N write jobs.

Real processes: a redis-server, ``--workers`` ``ari-agent worker`` processes (restarted when they
die, as systemd would), the demo backend answering each write 30 ms after committing it. N
``record_write`` jobs are submitted through :class:`~ari_agent.integrations.jobs.WriteQueue` (the
agent's own submit path). Then, every ``kill_every_s`` seconds on average until every job is done,
one worker is SIGKILLed at one of these points, in turn:

- ``after_apply``: its work-horse is running a job **and the backend has already applied that write**,
  but RQ has not marked the job done (the window where a re-run would duplicate a side effect if the
  backend did not honour the ``Idempotency-Key``);
- ``mid_job``: as soon as its work-horse has entered the job (before or during the HTTP write);
- ``random``: whatever it is doing (idle, dequeuing, between jobs).

Each kill takes the whole worker (the worker and its work-horse: a crash, the OOM killer), or, one
time in three, only the work-horse. The replacement worker hands the dead worker's started jobs to
RQ's abandoned-job path at start-up (:meth:`WriteQueue.recover_abandoned`), RQ retries them, and the
backend turns a re-run of an applied write into a replay. Counted at the end in the **backend**:
performed writes per idempotency key (duplicates = the sum of count - 1), and jobs never applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis
from rq.executions import Execution

from ari_agent.devtools.backend_process import BackendProcess
from ari_agent.devtools.drill_services import RedisProcess, WorkerSupervisor
from ari_agent.integrations.contracts import RecordWriteRequest
from ari_agent.integrations.http_adapter import prepare_request
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.jobs import WriteJob, WriteQueue
from ari_agent.integrations.tools_config import HttpToolSpec, WriteQueueSettings

log = logging.getLogger("ari_agent.devtools.drill_worker")

QUEUE = "drill-kill-writes"
POINTS = ("after_apply", "mid_job", "random")
SPEC = HttpToolSpec(method="POST", url="{base_url}/writes", write=True, async_write=True, timeout_ms=5000,
                    request="RecordWriteRequest", response="RecordWriteResponse")


@dataclass
class KillSettings:
    jobs: int = 1000
    workers: int = 2
    kill_every_s: float = 1.5
    seed: int = 13
    drain_timeout_s: float = 600.0


@dataclass
class Kill:
    point: str  # the point aimed at
    target: str  # "worker" (worker + work-horse) or "horse"
    key: str  # the job the horse was running ("" when none)
    applied_at_kill: bool  # the backend had performed that write when the kill landed
    state_at_kill: str  # the job's outcome record ("running", "done", ...) when the kill landed


def make_jobs(base_url: str, n: int) -> list[WriteJob]:
    jobs = []
    for i in range(n):
        args = {"reference": f"kill-{i:05d}", "payload": {"n": i}}
        key = idempotency_key(f"kill-call-{i}", "record_write", args)
        req = prepare_request("record_write", SPEC, base_url, RecordWriteRequest.model_validate(args), key)
        jobs.append(WriteJob(req, key, "RecordWriteResponse"))
    return jobs


def _alive(p: psutil.Process) -> bool:
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _current_job(wq: WriteQueue, worker_name: str) -> str:
    """The job a worker is running, from RQ's started registry and its executions."""
    for job_id, execution_id in wq.queue.started_job_registry.get_job_and_execution_ids(cleanup=False):
        with contextlib.suppress(Exception):
            if Execution.fetch(execution_id, job_id, connection=wq.connection).worker_name == worker_name:
                return str(job_id)
    return ""


class Killer:
    """Aims one SIGKILL at a point of a worker's life (blocking; run it in a thread)."""

    def __init__(self, wq: WriteQueue, backend: BackendProcess, workers: WorkerSupervisor) -> None:
        self.wq = wq
        self.backend = backend
        self.workers = workers

    def applied(self, key: str) -> bool:
        return int(self.backend.get_json(f"/writes/counts?key={key}")["count"]) > 0

    def _busy(self, timeout_s: float) -> tuple[int, psutil.Process, str] | None:
        """(worker pid, its horse, the job key) of a worker caught running a job."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for proc in self.workers.running():
                horse = self.workers.horse_of(proc)
                name = self.workers.names.get(proc.pid)
                if horse is None or name is None:
                    continue
                key = _current_job(self.wq, name)
                if key:
                    return proc.pid, horse, key
            time.sleep(0.002)
        return None

    def aim(self, point: str, target: str, rng: random.Random) -> Kill | None:
        if point == "random":
            procs = self.workers.running()
            if not procs:
                return None
            proc = rng.choice(procs)
            horse = self.workers.horse_of(proc)
            name = self.workers.names.get(proc.pid, "")
            key = _current_job(self.wq, name) if horse is not None else ""
            return self._kill(point, target if horse is not None else "worker", proc.pid, horse, key)
        busy = self._busy(timeout_s=20)
        if busy is None:
            return None
        pid, horse, key = busy
        deadline = time.monotonic() + 5
        if point == "mid_job":
            while _alive(horse) and self.wq.outcome(key).get("state") != "running" and time.monotonic() < deadline:
                time.sleep(0.001)
        else:  # after_apply: the backend has committed the write and holds its answer for 30 ms
            while _alive(horse) and not self.applied(key) and time.monotonic() < deadline:
                time.sleep(0.001)
        if not _alive(horse):
            return None
        return self._kill(point, target, pid, horse, key)

    def _kill(self, point: str, target: str, pid: int, horse: psutil.Process | None, key: str) -> Kill:
        if target == "worker":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if horse is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                horse.send_signal(signal.SIGKILL)
        applied = bool(key) and self.applied(key)
        state = self.wq.outcome(key).get("state", "") if key else ""
        return Kill(point, target, key, applied, state)


async def run_worker_kill_drill(settings: KillSettings, work_dir: Path, progress: Any = None) -> dict[str, Any]:
    rng = random.Random(settings.seed)
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    redis_srv = RedisProcess(work_dir / "redis")
    backend = BackendProcess(work_dir, "--write-delay-after-ms", "30")
    await asyncio.to_thread(redis_srv.start)
    await asyncio.to_thread(backend.start)
    conn = redis.Redis.from_url(redis_srv.url)
    wq = WriteQueue(conn, WriteQueueSettings(name=QUEUE, max_retries=5, retry_intervals_s=[0], job_timeout_s=30))
    workers = WorkerSupervisor(redis_srv.url, QUEUE, work_dir, count=settings.workers, extra_args=("--no-scheduler",))
    killer = Killer(wq, backend, workers)
    jobs = make_jobs(backend.url, settings.jobs)
    keys = [j.idempotency_key for j in jobs]
    kills: list[Kill] = []
    t0 = time.monotonic()
    timed_out = False
    try:
        submitted = Counter(wq.submit(j).value for j in jobs)
        await workers.start()
        n = 0
        while True:
            done = await asyncio.to_thread(_done, conn, keys)
            if done == len(keys):
                break
            if time.monotonic() - t0 > settings.drain_timeout_s:
                timed_out = True
                break
            await asyncio.sleep(rng.expovariate(1.0 / settings.kill_every_s))
            point = POINTS[n % len(POINTS)]
            target = "horse" if n % 3 == 2 else "worker"
            kill = await asyncio.to_thread(killer.aim, point, target, rng)
            if kill is not None:
                kills.append(kill)
                n += 1
                if progress is not None and len(kills) % 10 == 0:
                    progress(done, len(keys), len(kills))
        elapsed = time.monotonic() - t0
        counts = await asyncio.to_thread(backend.get_json, "/writes/counts")
        attempts = await asyncio.to_thread(_attempts, wq, keys)
        statuses = Counter(str(wq.job_status(k)) for k in keys)
    finally:
        await workers.stop()
        await asyncio.to_thread(backend.stop)
        conn.close()
        await asyncio.to_thread(redis_srv.stop, "term")
    per_key: dict[str, int] = counts["per_key"]
    killed_keys = {k.key for k in kills if k.key}
    return {
        "jobs": settings.jobs,
        "workers": settings.workers,
        "submitted": dict(submitted),
        "kills": len(kills),
        "kills_by_point": dict(Counter(k.point for k in kills)),
        "kills_by_target": dict(Counter(k.target for k in kills)),
        "kills_mid_job": sum(1 for k in kills if k.state_at_kill == "running"),
        "kills_after_apply_before_done": sum(1 for k in kills if k.applied_at_kill and k.state_at_kill == "running"),
        "worker_processes_started": workers.started,
        "backend_writes": int(counts["count"]),
        "duplicate_side_effects": sum(c - 1 for c in per_key.values() if c > 1),
        "lost": len(set(keys) - set(per_key)),
        "unexpected": len(set(per_key) - set(keys)),
        "backend_idempotent_replays": int(counts["replays"]),
        "jobs_run_more_than_once": sum(1 for a in attempts.values() if a > 1),
        "killed_jobs_rerun": sum(1 for k in killed_keys if attempts.get(k, 0) > 1),
        "rq_status_at_end": dict(statuses),
        "timed_out": timed_out,
        "elapsed_s": round(elapsed, 1),
    }


def _done(conn: redis.Redis, keys: list[str]) -> int:
    with conn.pipeline() as pipe:
        for key in keys:
            pipe.hget(f"ari-agent:write-outcome:{key}", "state")
        return sum(1 for state in pipe.execute() if state == b"done")


def _attempts(wq: WriteQueue, keys: list[str]) -> dict[str, int]:
    return {k: int(wq.outcome(k).get("attempts", "0")) for k in keys}


def passed(figures: dict[str, Any]) -> bool:
    return bool(figures["duplicate_side_effects"] == 0 and figures["lost"] == 0 and figures["unexpected"] == 0
                and not figures["timed_out"] and figures["kills"] > 0)
