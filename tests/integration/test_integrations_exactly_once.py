"""Exactly-once asynchronous writes under worker crashes: real redis-server, real ``ari-agent worker``
processes (RQ, forking work-horses), the real demo backend over HTTP.

240 write jobs are enqueued; workers are SIGKILLed mid-job six times (three whole-worker crashes,
three work-horse crashes) and replaced; the unfinished jobs are re-submitted, finished ones too (they
must come back as duplicates), and a few finished jobs are forced to run again (their RQ job and
outcome record deleted, as if their TTLs had expired: the backend's Idempotency-Key must make the
re-run a no-op). At the end the backend must show every write exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.executions import Execution
from rq.serializers import JSONSerializer

from ari_agent.integrations.contracts import RecordWriteRequest
from ari_agent.integrations.http_adapter import prepare_request
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.jobs import PERFORM_WRITE, SubmitState, WriteJob, WriteQueue
from ari_agent.integrations.tools_config import HttpToolSpec, WriteQueueSettings

from .conftest_redis import Workers, demo_backend, redis_dump, redis_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

N_JOBS = 240
KILLS = 6
QUEUE = "it-writes"
SECRET = "s3cr3t-never-in-redis-4711"


def _http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _done(conn: redis.Redis, keys: list[str]) -> int:
    with conn.pipeline() as pipe:
        for key in keys:
            pipe.hget(f"ari-agent:write-outcome:{key}", "state")
        return sum(1 for state in pipe.execute() if state == b"done")


def _wait_for(predicate: Any, timeout_s: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n--- worker logs ---\n{workers.logs()}")
        time.sleep(0.05)


def _alive(p: psutil.Process) -> bool:
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _catch_running_job(workers: Workers, wq: WriteQueue) -> tuple[subprocess.Popen[bytes], psutil.Process, str]:
    """A worker whose work-horse has entered the write job function (its outcome says "running").

    The kill then lands somewhere in the write: before the request reaches the backend, during its
    commit, or after it (the backend holds its answer 30 ms after committing)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = workers.busy()
        if busy is None:
            time.sleep(0.002)
            continue
        proc, horse = busy
        job_key = _current_job(wq, workers.names[proc.pid])
        while job_key and _alive(horse):
            if wq.outcome(job_key).get("state") == "running":
                return proc, horse, job_key
            time.sleep(0.001)
    raise AssertionError(f"no worker caught running a job\n{workers.logs()}")


def _current_job(wq: WriteQueue, worker_name: str) -> str:
    """The job a worker is running, from RQ's started registry and its executions."""
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        for job_id, execution_id in wq.queue.started_job_registry.get_job_and_execution_ids(cleanup=False):
            try:
                if Execution.fetch(execution_id, job_id, connection=wq.connection).worker_name == worker_name:
                    return str(job_id)
            except Exception:
                continue
        time.sleep(0.002)
    return ""


def test_exactly_once_under_worker_kills(redis_server: str, demo_backend: str,  # noqa: F811
                                        tmp_path: Path) -> None:
    backend = demo_backend
    conn = redis.Redis.from_url(redis_server)
    settings = WriteQueueSettings(name=QUEUE, max_retries=3, retry_intervals_s=[0], job_timeout_s=30)
    wq = WriteQueue(conn, settings)
    spec = HttpToolSpec(method="POST", url="{base_url}/writes", write=True, async_write=True, timeout_ms=5000,
                        headers={"X-Api-Key": "${secret:DEMO_KEY}"},
                        request="RecordWriteRequest", response="RecordWriteResponse")
    jobs: list[WriteJob] = []
    for i in range(N_JOBS):
        args = {"reference": f"ref-{i:04d}", "payload": {"amount_cents": 100 + i}}
        key = idempotency_key(f"call-{i}", "record_write", args)
        req = prepare_request("record_write", spec, backend, RecordWriteRequest.model_validate(args), key)
        jobs.append(WriteJob(req, key, "RecordWriteResponse"))
    keys = [j.idempotency_key for j in jobs]
    assert len(set(keys)) == N_JOBS

    t0 = time.monotonic()
    first = Counter(wq.submit(j) for j in jobs)
    enqueue_s = time.monotonic() - t0
    assert first == {SubmitState.QUEUED: N_JOBS}

    workers = Workers(redis_server, tmp_path, QUEUE, {"ARI_AGENT_SECRET_DEMO_KEY": SECRET})
    rng = random.Random(20261124)
    kills: list[dict[str, Any]] = []
    try:
        workers.start()
        workers.start()
        for k in range(KILLS):
            before = _done(conn, keys)
            # let some work happen between kills, then catch a worker in the middle of a job
            _wait_for(lambda b=before: _done(conn, keys) >= b + 12, 60, f"progress before kill {k}", workers)
            proc, horse, job_key = _catch_running_job(workers, wq)
            time.sleep(rng.uniform(0.0, 0.025))
            state_at_kill = wq.outcome(job_key).get("state") if job_key else None
            mode = "worker" if k % 2 == 0 else "horse"
            if mode == "worker":  # the whole worker dies (machine crash, OOM killer)
                os.kill(proc.pid, signal.SIGKILL)
                try:
                    horse.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
                proc.wait()
                workers.procs.remove(proc)
                workers.start()  # its replacement recovers the dead worker's jobs at start-up
            else:  # only the work-horse dies; its worker sees it and lets RQ retry the job
                try:
                    horse.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
            kills.append({"mode": mode, "job": job_key, "state_at_kill": state_at_kill})

        # Re-submit what has not finished yet, and a sample of what has.
        outcomes = {key: wq.outcome(key).get("state") for key in keys}
        unfinished = [j for j in jobs if outcomes[j.idempotency_key] != "done"]
        finished = [j for j in jobs if outcomes[j.idempotency_key] == "done"]
        resubmit_unfinished = Counter(wq.submit(j).value for j in unfinished)
        resubmit_finished = Counter(wq.submit(j).value for j in finished[:40])
        assert set(resubmit_finished) == {SubmitState.ALREADY_DONE.value}
        assert SubmitState.QUEUED.value not in resubmit_unfinished  # their jobs still exist: no second job

        # The RQ layer alone refuses a second job with the same id (unique=True).
        raw_queue = Queue(QUEUE, connection=conn, serializer=JSONSerializer)
        raw_duplicates = 0
        for job in finished[40:50]:
            try:
                raw_queue.enqueue(PERFORM_WRITE, job.to_payload(), job_id=job.idempotency_key, unique=True,
                                  retry=Retry(max=3, interval=[0]))
            except DuplicateJobError:
                raw_duplicates += 1
        assert raw_duplicates == len(finished[40:50])

        # Forced re-runs: the job and outcome records are gone (TTLs expired), so the job runs again;
        # the backend's Idempotency-Key turns the second write into a replay.
        forced = finished[50:55]
        for job in forced:
            conn.delete(f"rq:job:{job.idempotency_key}", f"ari-agent:write-outcome:{job.idempotency_key}")
        forced_states = Counter(wq.submit(j).value for j in forced)
        assert forced_states == {SubmitState.QUEUED.value: len(forced)}

        _wait_for(lambda: _done(conn, keys) == N_JOBS, 90, "every write to finish", workers)
        elapsed = time.monotonic() - t0
    finally:
        workers.stop_all()

    writes = _http_json(backend + "/writes")
    per_key = Counter(w["idempotency_key"] for w in writes["writes"])
    duplicates = sum(n - 1 for n in per_key.values() if n > 1)
    lost = len(set(keys) - set(per_key))
    unexpected = len(set(per_key) - set(keys))
    replays_forced = sum(1 for j in forced if wq.outcome(j.idempotency_key).get("replayed") == "1")
    attempts = [int(wq.outcome(k).get("attempts", "0")) for k in keys]
    forced_keys = {j.idempotency_key for j in forced}
    killed = [k["job"] for k in kills if k["job"] and k["job"] not in forced_keys]
    figures = {
        "jobs": N_JOBS,
        "kills": len(kills),
        "kill_modes": dict(Counter(k["mode"] for k in kills)),
        "workers_started": workers.started,
        "backend_writes": writes["count"],
        "duplicates": duplicates,
        "lost": lost,
        "backend_replays": writes["replays"],
        "forced_reruns_replayed": replays_forced,
        "jobs_run_more_than_once": sum(1 for a in attempts if a > 1),
        "kills_mid_job": sum(1 for k in kills if k["state_at_kill"] == "running"),
        "killed_jobs_rerun": sum(1 for key in killed if int(wq.outcome(key).get("attempts", "0")) > 1),
        "killed_jobs_replayed_by_backend": sum(1 for key in killed if wq.outcome(key).get("replayed") == "1"),
        "resubmitted_unfinished": dict(resubmit_unfinished),
        "resubmitted_finished": dict(resubmit_finished),
        "raw_rq_duplicates_refused": raw_duplicates,
        "enqueue_ms_per_job": round(enqueue_s * 1000 / N_JOBS, 3),
        "elapsed_s": round(elapsed, 1),
    }
    print("\nEXACTLY-ONCE FIGURES " + json.dumps(figures, sort_keys=True))
    print("KILLS " + json.dumps(kills))
    (tmp_path / "figures.json").write_text(json.dumps(figures))

    assert duplicates == 0, figures
    assert lost == 0, figures
    assert unexpected == 0, figures
    assert writes["count"] == N_JOBS, figures
    assert replays_forced == len(forced), figures
    dump = redis_dump(conn)
    assert b"${secret:DEMO_KEY}" in dump  # the job payloads carry the reference...
    assert SECRET.encode() not in dump, "a secret value was written to redis"  # ...never the value
    conn.close()
