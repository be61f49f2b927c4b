"""Asynchronous writes through a real redis-server and real ``ari-agent worker`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from ari_agent.integrations.contracts import RecordWriteRequest
from ari_agent.integrations.http_adapter import prepare_request
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.jobs import SubmitState, WriteJob, WriteQueue
from ari_agent.integrations.runner import ToolRunner
from ari_agent.integrations.tools_config import HttpToolSpec, WriteQueueSettings, demo_tools_config
from ari_agent.seam import CallTool

from .conftest_redis import Workers, demo_backend, redis_dump, redis_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration

SPEC = HttpToolSpec(method="POST", url="{base_url}/writes", write=True, async_write=True, timeout_ms=5000,
                    request="RecordWriteRequest", response="RecordWriteResponse")


def _http(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _job(backend: str, ref: str, query: dict[str, str] | None = None) -> WriteJob:
    args = {"reference": ref}
    key = idempotency_key("it-call", "record_write", args)
    req = prepare_request("record_write", SPEC, backend, RecordWriteRequest.model_validate(args), key)
    if query:
        req = type(req)(**{**req.__dict__, "query": query})
    return WriteJob(req, key, "RecordWriteResponse")


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _run_burst(workers: Workers) -> None:
    proc = workers.start("--burst")
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        # A worker that hangs: every thread's stack (faulthandler, on SIGABRT) of it and its work-horse.
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.send_signal(signal.SIGABRT)
        proc.send_signal(signal.SIGABRT)
        proc.wait(10)
        raise AssertionError("the burst worker did not finish in 60 s:\n" + workers.logs()) from None
    assert rc == 0, workers.logs()


async def test_runner_submits_at_once_and_a_worker_performs_the_write(
        redis_server: str, demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    call = CallTool("record_write", {"reference": "order-note-1"}, idempotency_key("c1", "note", {"r": 1}), "t1")
    async with ToolRunner(demo_tools_config(), base_url=demo_backend, redis_url=redis_server) as runner:
        started = time.perf_counter()
        first = await runner.run(call)
        elapsed = time.perf_counter() - started
        second = await runner.run(call)
        assert first.ok and first.submitted and first.data["state"] == "queued"
        assert elapsed < 0.5
        assert second.submitted and second.data["state"] == "already_submitted"
        _run_burst(Workers(redis_server, tmp_path, "ari-agent-writes"))
        third = await runner.run(call)
        assert third.submitted and third.data["state"] == "already_done"
    conn = redis.Redis.from_url(redis_server)
    outcome = WriteQueue(conn).outcome(call.idempotency_key)
    conn.close()
    assert outcome["state"] == "done" and outcome["attempts"] == "1"
    assert json.loads(outcome["result"])["data"]["reference"] == "order-note-1"
    writes = _http("GET", demo_backend + "/writes")
    assert [w["idempotency_key"] for w in writes["writes"]] == [call.idempotency_key]


def test_a_killed_workers_job_is_recovered_at_once(
        redis_server: str, demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    conn = redis.Redis.from_url(redis_server)
    wq = WriteQueue(conn, WriteQueueSettings(name="recover", max_retries=3, retry_intervals_s=[0]))
    job = _job(demo_backend, "slow-one", {"delay_ms": "1500"})
    assert wq.submit(job) is SubmitState.QUEUED
    workers = Workers(redis_server, tmp_path, "recover")
    proc = workers.start()
    _wait(lambda: wq.outcome(job.idempotency_key).get("state") == "running", 20, "the job to start")
    horse = psutil.Process(proc.pid).children()
    os.kill(proc.pid, signal.SIGKILL)
    for h in horse:
        h.kill()
    proc.wait()
    assert wq.job_status(job.idempotency_key) == "started"  # RQ alone would wait for the heartbeat to expire

    report = wq.recover_abandoned()
    assert report.dead_workers == ["it-worker-0"]
    assert report.abandoned_jobs == [job.idempotency_key]
    assert wq.job_status(job.idempotency_key) == "queued"
    assert wq.submit(job) is SubmitState.ALREADY_SUBMITTED
    _run_burst(workers)
    assert wq.outcome(job.idempotency_key)["state"] == "done"
    assert wq.outcome(job.idempotency_key)["attempts"] == "2"
    assert _http("GET", demo_backend + "/writes")["count"] == 1
    conn.close()


def test_a_failed_write_is_requeued_when_submitted_again(
        redis_server: str, demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    conn = redis.Redis.from_url(redis_server)
    wq = WriteQueue(conn, WriteQueueSettings(name="failing", max_retries=1, retry_intervals_s=[0]))
    _http("PUT", demo_backend + "/_faults", {"fail_status": 503, "path_prefix": "/writes"})
    job = _job(demo_backend, "needs-retry")
    assert wq.submit(job) is SubmitState.QUEUED
    workers = Workers(redis_server, tmp_path, "failing")
    _run_burst(workers)  # first try and its one retry both get 503
    assert wq.job_status(job.idempotency_key) == "failed"
    outcome = wq.outcome(job.idempotency_key)
    assert (outcome["state"], outcome["error"], outcome["attempts"]) == ("retrying", "backend_error", "2")

    _http("DELETE", demo_backend + "/_faults")
    assert wq.submit(job) is SubmitState.REQUEUED
    _run_burst(workers)
    assert wq.outcome(job.idempotency_key)["state"] == "done"
    assert wq.submit(job) is SubmitState.ALREADY_DONE
    assert _http("GET", demo_backend + "/writes")["count"] == 1
    conn.close()


def test_a_refused_write_is_final_and_not_retried(
        redis_server: str, demo_backend: str, tmp_path: Path) -> None:  # noqa: F811
    conn = redis.Redis.from_url(redis_server)
    wq = WriteQueue(conn, WriteQueueSettings(name="refused", max_retries=3, retry_intervals_s=[0]))
    job = _job(demo_backend, "refused", {"fail": "409"})
    wq.submit(job)
    _run_burst(Workers(redis_server, tmp_path, "refused"))
    outcome = wq.outcome(job.idempotency_key)
    assert (outcome["state"], outcome["error"], outcome["attempts"]) == ("refused", "rejected", "1")
    assert wq.job_status(job.idempotency_key) == "finished"
    assert wq.submit(job) is SubmitState.ALREADY_DONE
    conn.close()


def test_an_id_stranded_between_dequeue_and_start_goes_back(redis_server: str) -> None:  # noqa: F811
    conn = redis.Redis.from_url(redis_server)
    wq = WriteQueue(conn, WriteQueueSettings(name="stranded"), stranded_after_s=0.3)
    job = _job("http://127.0.0.1:9", "stranded")
    wq.submit(job)
    # what a worker's dequeue does, before it dies without starting the job
    conn.lmove(wq.queue.key, wq.queue.intermediate_queue.key)
    assert conn.llen(wq.queue.key) == 0
    assert wq.recover_abandoned().stranded_jobs == []  # first sight: maybe a live worker is starting it
    time.sleep(0.35)
    assert wq.recover_abandoned().stranded_jobs == [job.idempotency_key]
    assert conn.lrange(wq.queue.key, 0, -1) == [job.idempotency_key.encode()]
    assert conn.llen(wq.queue.intermediate_queue.key) == 0
    conn.close()


def test_no_secret_is_written_to_redis(redis_server: str, tmp_path: Path) -> None:  # noqa: F811
    conn = redis.Redis.from_url(redis_server)
    wq = WriteQueue(conn, WriteQueueSettings(name="secrets"))
    spec = SPEC.model_copy(update={"headers": {"Authorization": "Bearer ${secret:BACKEND_TOKEN}"}})
    args = RecordWriteRequest.model_validate({"reference": "x"})
    req = prepare_request("record_write", spec, "http://127.0.0.1:9", args, "key-secret")
    os.environ["ARI_AGENT_SECRET_BACKEND_TOKEN"] = "secret-value-xyz"
    try:
        wq.submit(WriteJob(req, "key-secret", "RecordWriteResponse"))
        dump = redis_dump(conn)
        assert b"${secret:BACKEND_TOKEN}" in dump and b"secret-value-xyz" not in dump
    finally:
        del os.environ["ARI_AGENT_SECRET_BACKEND_TOKEN"]
        conn.close()


def test_a_worker_stops_its_command_listener_within_seconds(redis_server: str) -> None:  # noqa: F811
    """The race that hung ``--burst`` workers for a minute: the listener thread has read the
    unsubscribe reply and waits for a new subscription when the worker stops it."""
    conn = redis.Redis.from_url(redis_server)
    worker = WriteQueue(conn, WriteQueueSettings(name="listener")).make_worker(name="it-listener")
    worker.subscribe()
    pubsub = worker.pubsub
    _wait(lambda: pubsub.subscribed, 5, "the subscription")
    pubsub.unsubscribe()
    _wait(lambda: not pubsub.subscribed, 5, "the listener to read the unsubscribe reply")
    time.sleep(0.1)  # the listener is back in its wait for a subscription
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 5
    assert not worker.pubsub_thread.is_alive()
    conn.close()
