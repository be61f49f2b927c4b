"""Asynchronous writes through RQ, performed exactly once.

Three layers make a write happen once however often it is submitted or re-run:

1. **Enqueue**: ``job_id`` = the idempotency key **and** ``unique=True`` (a job id alone is not
   idempotent in RQ: enqueuing the same id twice runs it twice). A duplicate submit is answered from
   the existing job: finished → ``already_done``; queued/started/scheduled → ``already_submitted``;
   failed (retries spent, or abandoned by a dead worker) → requeued.
2. **Job**: :func:`perform_write` sends the HTTP write with ``Idempotency-Key: <key>``. A job re-run
   after a worker crash (SIGKILL mid-write) sends the same key, so the backend answers with the stored
   first response and performs nothing again. Transient failures (timeout, 5xx) raise, and RQ's
   ``Retry(max, interval)`` runs the job again — safe for the same reason.
3. **Record**: each job's outcome goes to the job result and to the redis hash
   ``ari-agent:write-outcome:<key>`` (state, HTTP status, response, attempts, replayed).

Jobs abandoned by a killed worker stay "started" until RQ notices (its heartbeat expiry is at least a
minute). :meth:`WriteQueue.recover_abandoned` notices sooner: a worker registered from this host
whose pid is gone is dead, so its started jobs are handed to RQ's own abandoned-job path at once
(retry while retries are left, else failed — and a later submit requeues them); an id left in RQ's
intermediate list by a worker that died between dequeue and start goes back on the queue after
``stranded_after_s``. ``ari-agent worker`` (a :class:`RecoveringWorker`) runs it at start-up and at
every maintenance tick, and wakes for that tick even when idle.

Job payloads hold header *templates*: a ``${secret:NAME}`` is resolved in the worker from its own
environment, so no secret is ever written to redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import aiohttp
import psutil
import redis
from rq import Queue, Retry, Worker, get_current_job
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from ari_agent.integrations.contracts import get_contract
from ari_agent.integrations.http_adapter import PreparedRequest, check_response, send_once
from ari_agent.integrations.idempotency import is_valid_key
from ari_agent.integrations.outcomes import RETRYABLE, ToolErrorCode
from ari_agent.integrations.secrets import MissingSecretError, resolve_headers
from ari_agent.integrations.tools_config import WriteQueueSettings

log = logging.getLogger("ari_agent.integrations.jobs")

OUTCOME_KEY_PREFIX = "ari-agent:write-outcome:"
STRANDED_SEEN_PREFIX = "ari-agent:stranded-seen:"
RECOVERY_LOCK_PREFIX = "ari-agent:recovery-lock:"
PERFORM_WRITE = "ari_agent.integrations.jobs.perform_write"
DEFAULT_OUTCOME_TTL_S = 7 * 86400
# How often a worker's listener thread wakes on its command channel: bounds how long shutdown waits for it.
COMMAND_POLL_S = 1.0


def url_without_password(url: str) -> str:
    """A redis URL fit for a message: its password, if any, as ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def outcome_key(idempotency_key: str) -> str:
    return OUTCOME_KEY_PREFIX + idempotency_key


class SubmitState(StrEnum):
    QUEUED = "queued"  # a new job
    ALREADY_SUBMITTED = "already_submitted"  # a job with this key is queued, running or scheduled
    ALREADY_DONE = "already_done"  # this key's write already completed (or was refused for good)
    REQUEUED = "requeued"  # this key's job had failed; it is queued again
    CANCELLED = "cancelled"  # an operator cancelled this key's job; not resubmitted
    SPOOLED = "spooled"  # redis was unreachable: stored durably in the local spool, replayed when it returns
    PERFORMED = "performed"  # no queue configured (InlineWriteQueue): the write was performed at once


class WriteFailed(Exception):
    """Raised inside a job for a transient failure, so that RQ retries it."""


@dataclass(frozen=True)
class WriteJob:
    """What a write job carries: the prepared request (secret references unresolved) and its key."""

    request: PreparedRequest
    idempotency_key: str
    response_contract: str | None = None
    outcome_ttl_s: int = DEFAULT_OUTCOME_TTL_S

    def to_payload(self) -> dict[str, Any]:
        return {
            "request": self.request.to_payload(),
            "idempotency_key": self.idempotency_key,
            "response_contract": self.response_contract,
            "outcome_ttl_s": self.outcome_ttl_s,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> WriteJob:
        return cls(
            request=PreparedRequest.from_payload(dict(data["request"])),
            idempotency_key=str(data["idempotency_key"]),
            response_contract=data.get("response_contract"),
            outcome_ttl_s=int(data.get("outcome_ttl_s", DEFAULT_OUTCOME_TTL_S)),
        )


@dataclass
class RecoveryReport:
    dead_workers: list[str] = field(default_factory=list)
    abandoned_jobs: list[str] = field(default_factory=list)  # handed to RQ's retry / failed path
    stranded_jobs: list[str] = field(default_factory=list)  # pushed back from the intermediate queue


def _pid_alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WriteQueue:
    """Submit write jobs and look after them (sync API: call it through ``asyncio.to_thread``)."""

    def __init__(self, connection: redis.Redis, settings: WriteQueueSettings | None = None, *,
                 stranded_after_s: float = 10.0) -> None:
        self.connection = connection
        self.settings = settings or WriteQueueSettings()
        self.stranded_after_s = stranded_after_s
        self.queue = Queue(self.settings.name, connection=connection, serializer=JSONSerializer)

    @classmethod
    def from_url(cls, url: str, settings: WriteQueueSettings | None = None, *,
                 socket_timeout_s: float = 2.0) -> WriteQueue:
        conn = redis.Redis.from_url(url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s)
        return cls(conn, settings)

    def close(self) -> None:
        self.connection.close()

    def reachable(self) -> bool:
        """Does redis answer a PING now?"""
        try:
            return bool(self.connection.ping())
        except redis.RedisError:
            return False

    # ------------------------------------------------------------ submit

    def submit(self, job: WriteJob) -> SubmitState:
        key = job.idempotency_key
        if not is_valid_key(key):
            raise ValueError("idempotency key must match [A-Za-z0-9_-]{1,128}")
        if self.outcome(key).get("state") in ("done", "refused"):
            return SubmitState.ALREADY_DONE
        s = self.settings
        for _ in range(3):
            try:
                self.queue.enqueue(
                    PERFORM_WRITE,
                    job.to_payload(),
                    job_id=key,
                    unique=True,
                    retry=Retry(max=s.max_retries, interval=list(s.retry_intervals_s)),
                    job_timeout=s.job_timeout_s,
                    result_ttl=s.result_ttl_s,
                    failure_ttl=s.outcome_ttl_s,
                    description=f"write {job.request.tool} {key}",
                )
                return SubmitState.QUEUED
            except DuplicateJobError:
                state = self._answer_duplicate(key)
                if state is not None:
                    return state
                # the existing job vanished between the enqueue and the fetch: enqueue again
        return SubmitState.ALREADY_SUBMITTED

    def _answer_duplicate(self, key: str) -> SubmitState | None:
        try:
            existing = Job.fetch(key, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
        status = existing.get_status(refresh=True)
        if status == JobStatus.FINISHED:
            return SubmitState.ALREADY_DONE
        if status == JobStatus.CANCELED:
            return SubmitState.CANCELLED
        if status in (JobStatus.FAILED, JobStatus.STOPPED):
            existing.retries_left = self.settings.max_retries
            try:
                existing.save()
                existing.requeue()
            except InvalidJobOperation:  # another submitter requeued it first
                return SubmitState.ALREADY_SUBMITTED
            log.info("write %s had failed; requeued", key)
            return SubmitState.REQUEUED
        return SubmitState.ALREADY_SUBMITTED

    def outcome(self, key: str) -> dict[str, str]:
        raw = cast(dict[Any, Any], self.connection.hgetall(outcome_key(key)))
        return {_text(k): _text(v) for k, v in raw.items()}

    def job_status(self, key: str) -> str | None:
        try:
            job = Job.fetch(key, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=True)
        return str(status.value) if isinstance(status, JobStatus) else str(status)

    # ------------------------------------------------------------ recovery

    def _worker_is_dead(self, worker: BaseWorker) -> bool:
        if worker.hostname != socket.gethostname() or not worker.pid:
            return False  # another host: RQ's heartbeat expiry decides
        return not _pid_alive(int(worker.pid))

    def recover_abandoned(self) -> RecoveryReport:
        """Hand jobs of dead workers (this host, pid gone) to RQ's abandoned-job path now, and put
        back ids stranded between dequeue and start. One process at a time (a redis lock), so a job
        is never requeued twice by concurrent recoveries."""
        lock_key = f"{RECOVERY_LOCK_PREFIX}{self.settings.name}"
        token = f"{socket.gethostname()}:{os.getpid()}:{time.time():.6f}"
        if not self.connection.set(lock_key, token, nx=True, ex=60):
            return RecoveryReport()
        try:
            return self._recover()
        finally:
            if _text(self.connection.get(lock_key) or b"") == token:
                self.connection.delete(lock_key)

    def _recover(self) -> RecoveryReport:
        report = RecoveryReport()
        conn = self.connection
        registry = self.queue.started_job_registry
        alive: set[str] = set()
        dead_workers: list[BaseWorker] = []
        for worker in Worker.all(queue=self.queue):
            if self._worker_is_dead(worker):
                dead_workers.append(worker)
            else:
                alive.add(worker.name)
        dead = {w.name for w in dead_workers}
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                execution = Execution.fetch(execution_id, job_id, connection=conn)
                worker_name = execution.worker_name
            except Exception:  # the execution hash expired: its worker stopped heart-beating long ago
                worker_name = ""
            orphan = worker_name in dead or (
                worker_name != "" and worker_name not in alive
                and not conn.exists(Worker.redis_worker_namespace_prefix + worker_name)
            )
            if orphan:
                # Expire the entry now; RQ's cleanup then retries the job or moves it to failed.
                conn.zadd(registry.key, {f"{job_id}:{execution_id}": 0}, xx=True)
                report.abandoned_jobs.append(job_id)
        if report.abandoned_jobs:
            registry.cleanup(timestamp=time.time())
        report.stranded_jobs = self._push_back_stranded()
        for worker in dead_workers:
            cast(Any, worker).register_death()
            report.dead_workers.append(worker.name)
        if report.abandoned_jobs or report.stranded_jobs:
            log.warning("recovered %d abandoned and %d stranded write jobs (dead workers: %s)",
                        len(report.abandoned_jobs), len(report.stranded_jobs), ", ".join(report.dead_workers) or "-")
        return report

    def _push_back_stranded(self) -> list[str]:
        """Ids left in RQ's intermediate list by a worker that died between dequeue and start.

        A live worker moves a job from there to "started" within milliseconds; an id that has sat
        there, queued but not started, for ``stranded_after_s`` goes back on the queue. (RQ's own
        clean-up does the same after a minute or more.)
        """
        pushed: list[str] = []
        conn = self.connection
        inter = self.queue.intermediate_queue
        started = set(self.queue.started_job_registry.get_job_ids(cleanup=False))
        now = time.time()
        for job_id in inter.get_job_ids():
            if job_id in started:
                continue
            status = self.job_status(job_id)
            seen_key = f"{STRANDED_SEEN_PREFIX}{job_id}"
            if status != JobStatus.QUEUED.value or conn.lpos(self.queue.key, job_id) is not None:
                conn.lrem(inter.key, 1, job_id)  # finished, failed, or already back on the queue: stale
                conn.delete(seen_key)
                continue
            conn.set(seen_key, f"{now:.3f}", nx=True, ex=3600)
            first_seen = float(_text(conn.get(seen_key) or now))
            if now - first_seen < self.stranded_after_s:
                continue
            with conn.pipeline() as pipe:
                pipe.lrem(inter.key, 1, job_id)
                pipe.rpush(self.queue.key, job_id)
                pipe.delete(seen_key)
                pipe.execute()
            pushed.append(job_id)
        return pushed

    # ------------------------------------------------------------ worker

    def make_worker(self, *, name: str | None = None, maintenance_interval_s: int = 30) -> Worker:
        return RecoveringWorker([self.queue], name=name, connection=self.connection, serializer=JSONSerializer,
                                maintenance_interval=maintenance_interval_s, write_queue=self)


class RecoveringWorker(Worker):
    """An RQ worker that also recovers dead local workers' jobs at each maintenance tick.

    After a redis outage RQ retries the connection with exponential backoff; capped at 5 s here
    (RQ's own cap is 60 s), so the queue drains within seconds of redis coming back."""

    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, write_queue: WriteQueue, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_queue = write_queue

    @property
    def dequeue_timeout(self) -> int:
        # Wake up at least every maintenance interval, so an idle worker still recovers others' jobs.
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))

    def subscribe(self) -> None:
        """RQ's command channel (stop/kill requests), polled each second instead of RQ 3's 60 s.

        At shutdown RQ unsubscribes and then stops the listener thread, and redis-py ≥ 8 waits for
        that thread to end. If the thread has already read the unsubscribe reply, it sits in a wait
        for the next subscription that lasts the full poll time, so with RQ's 60 s every warm shutdown
        and every ``--burst`` run could hang for up to a minute (seen in CI under load)."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = cast(Any, self.pubsub.run_in_thread(
            sleep_time=COMMAND_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler))

    def run_maintenance_tasks(self) -> None:
        cast(Any, super()).run_maintenance_tasks()
        try:
            self._write_queue.recover_abandoned()
        except redis.RedisError as exc:
            log.warning("recovery of abandoned write jobs failed: %s", exc)


def wait_for_redis(conn: redis.Redis, wait_s: float, *, max_interval_s: float = 5.0) -> None:
    """Return once redis answers a PING; retry (backoff capped at ``max_interval_s``) for ``wait_s``
    seconds, then raise the last ``redis.ConnectionError``. A worker restarted during a redis outage
    waits here instead of exiting at once and being restarted again and again."""
    deadline = time.monotonic() + wait_s
    interval = 0.25
    while True:
        try:
            conn.ping()
            return
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if time.monotonic() + interval > deadline:
                raise redis.ConnectionError(str(exc)) from None
            log.warning("redis not reachable (%s); retrying in %.1f s", exc, interval)
            time.sleep(interval)
            interval = min(interval * 2, max_interval_s)


def run_worker(redis_url: str, settings: WriteQueueSettings | None = None, *, burst: bool = False,
               with_scheduler: bool = True, name: str | None = None, maintenance_interval_s: int = 30,
               redis_wait_s: float = 0.0) -> int:
    """Run an RQ worker on the write queue until stopped (or, with ``burst``, until it is empty).

    With ``redis_wait_s``, a redis that does not answer yet is waited for that long at start-up."""
    queue = WriteQueue(redis.Redis.from_url(redis_url), settings)
    if redis_wait_s > 0:
        wait_for_redis(queue.connection, redis_wait_s)
    report = queue.recover_abandoned()
    log.info("worker starting on %s (recovered %d jobs)", queue.settings.name,
             len(report.abandoned_jobs) + len(report.stranded_jobs))
    worker = queue.make_worker(name=name, maintenance_interval_s=maintenance_interval_s)
    worker.work(burst=burst, with_scheduler=with_scheduler)
    return 0


class InlineWriteQueue:
    """No redis (``ari-agent chat``, the text evaluation): an ``async_write`` is performed at once, in the
    submitting thread, by the same job function a worker runs (:func:`perform_write`). ``submit`` answers
    :attr:`SubmitState.PERFORMED` only when the backend performed it; otherwise it raises, so the
    caller is never told a write went through that did not."""

    def submit(self, job: WriteJob) -> SubmitState:
        if not is_valid_key(job.idempotency_key):
            raise ValueError("idempotency key must match [A-Za-z0-9_-]{1,128}")
        result = perform_write(job.to_payload())
        if not result.get("ok"):
            raise WriteFailed(f"{job.request.tool}: {result.get('error')} {result.get('detail', '')}".strip())
        return SubmitState.PERFORMED

    def close(self) -> None:
        return None


# ------------------------------------------------------------ the job


def _record(conn: redis.Redis | None, key: str, ttl_s: int, **fields: Any) -> None:
    if conn is None:
        return
    mapping = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
    mapping["updated_at"] = f"{time.time():.3f}"
    with conn.pipeline() as pipe:
        pipe.hset(outcome_key(key), mapping=cast(Mapping[Any, Any], mapping))
        pipe.expire(outcome_key(key), ttl_s)
        pipe.execute()


async def _send(job: WriteJob, headers: dict[str, str]) -> Any:
    async with aiohttp.ClientSession() as session:
        return await send_once(session, job.request, headers)


def perform_write(payload: dict[str, Any]) -> dict[str, Any]:
    """RQ job: perform one HTTP write with its Idempotency-Key and record the outcome."""
    job = WriteJob.from_payload(payload)
    key = job.idempotency_key
    rq_job = get_current_job()
    conn: redis.Redis | None = rq_job.connection if rq_job is not None else None
    if conn is not None:
        previous = cast(dict[Any, Any], conn.hgetall(outcome_key(key)))
        prev = {_text(k): _text(v) for k, v in previous.items()}
        if prev.get("state") in ("done", "refused") and "result" in prev:
            result: dict[str, Any] = json.loads(prev["result"])
            return result
        conn.hincrby(outcome_key(key), "attempts", 1)
    _record(conn, key, job.outcome_ttl_s, state="running", tool=job.request.tool, pid=str(os.getpid()))
    try:
        headers = resolve_headers(job.request.header_templates)
    except MissingSecretError as exc:
        _record(conn, key, job.outcome_ttl_s, state="retrying", error=ToolErrorCode.MISSING_SECRET.value,
                detail=str(exc))
        raise WriteFailed(str(exc)) from None
    outcome = asyncio.run(_send(job, headers))
    if outcome.error is None:
        data: dict[str, Any] | None = outcome.body if isinstance(outcome.body, dict) else None
        reason = ""
        if job.response_contract is not None:
            data, reason = check_response(get_contract(job.response_contract), outcome.body)
        if data is None:
            # The write was performed (2xx), but its answer is malformed: terminal, not retried.
            result = {"ok": False, "error": ToolErrorCode.CONTRACT_VIOLATION.value, "detail": reason,
                      "http_status": outcome.status}
            _record(conn, key, job.outcome_ttl_s, state="refused", http_status=str(outcome.status),
                    error=ToolErrorCode.CONTRACT_VIOLATION.value, detail=reason, result=json.dumps(result))
            return result
        result = {"ok": True, "data": data, "http_status": outcome.status, "replayed": outcome.replayed}
        _record(conn, key, job.outcome_ttl_s, state="done", http_status=str(outcome.status),
                replayed="1" if outcome.replayed else "0", result=json.dumps(result))
        return result
    if outcome.error in RETRYABLE:
        _record(conn, key, job.outcome_ttl_s, state="retrying", error=outcome.error.value,
                http_status=str(outcome.status or ""), detail=outcome.detail)
        raise WriteFailed(f"{job.request.tool}: {outcome.error.value} {outcome.detail}".strip())
    # 4xx: the backend refused the write for good; running it again would not change that.
    result = {"ok": False, "error": outcome.error.value, "detail": outcome.detail, "http_status": outcome.status}
    _record(conn, key, job.outcome_ttl_s, state="refused", http_status=str(outcome.status or ""),
            error=outcome.error.value, detail=outcome.detail, result=json.dumps(result))
    return result
