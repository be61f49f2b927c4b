"""A durable local spool for write jobs that Redis cannot take right now.

When the agent cannot enqueue an ``async_write`` job (Redis down, a timeout), the job goes to a
local file instead: one JSON line per job, carrying its idempotency key, appended and **fsync'd
before the caller is told anything** (the file's directory is fsync'd when the file is created).
When Redis answers again the spooled jobs are submitted to RQ in order and removed from the spool.

Why this cannot duplicate or lose a write:

- A job leaves the spool only after ``WriteQueue.submit`` returned (Redis took it, or already had
  it). A crash between the submit and the removal replays the job again later: RQ's ``unique`` job
  id answers ``already_submitted`` / ``already_done``, and if even that record has expired, the
  backend's ``Idempotency-Key`` turns the re-run into a replay. Nothing is performed twice.
- A line torn by a crash mid-append has no final newline (or is not JSON): its append never
  returned, so no caller was told it was accepted; it is moved to ``<spool>.corrupt`` and logged.

:class:`SpoolingWriteQueue` is the write submitter with this fallback: while Redis is known to be
down, submits go straight to the spool (a call never waits on a dead Redis twice), and
:meth:`SpoolingWriteQueue.replay` (run by the tool runner in the background) submits the spool and
switches back to Redis once it is empty. One spool file per agent process (``redis.spool_path``);
an flock on ``<spool>.lock`` keeps two processes that share the file from interleaving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from ari_agent.integrations.jobs import SubmitState, WriteJob

log = logging.getLogger("ari_agent.integrations.spool")

SPOOL_FORMAT = 1


class SpoolError(Exception):
    """The spool could not store a job durably (disk full, permissions): nothing may be promised."""


@dataclass(frozen=True)
class SpooledJob:
    job: WriteJob
    spooled_at: float

    @property
    def key(self) -> str:
        return self.job.idempotency_key


def encode_line(job: WriteJob, spooled_at: float) -> bytes:
    record = {"v": SPOOL_FORMAT, "key": job.idempotency_key, "spooled_at": round(spooled_at, 3),
              "job": job.to_payload()}
    return (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()


def decode_line(line: bytes) -> SpooledJob | None:
    """The job of one complete spool line, or None for a torn or foreign line."""
    if not line.endswith(b"\n"):
        return None
    try:
        record: Any = json.loads(line)
        if not isinstance(record, dict) or record.get("v") != SPOOL_FORMAT:
            return None
        job = WriteJob.from_payload(dict(record["job"]))
        if job.idempotency_key != record["key"]:
            return None
        return SpooledJob(job, float(record["spooled_at"]))
    except (ValueError, KeyError, TypeError):
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteSpool:
    """The spool file: ``append`` (durable when it returns), ``pending``, ``remove``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._corrupt_path = self.path.with_name(self.path.name + ".corrupt")
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def append(self, job: WriteJob) -> None:
        """Store ``job`` durably (written and fsync'd) or raise :class:`SpoolError`."""
        line = encode_line(job, time.time())
        try:
            with self._locked():
                created = not self.path.exists()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    written = os.write(fd, line)
                    if written != len(line):
                        raise OSError(f"short write to the spool ({written} of {len(line)} bytes)")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if created:
                    _fsync_dir(self.path.parent)
        except OSError as exc:
            raise SpoolError(f"cannot spool write {job.idempotency_key} to {self.path}: {exc}") from exc

    def pending(self) -> list[SpooledJob]:
        """The spooled jobs, oldest first (torn lines are skipped here and set aside by ``remove``)."""
        with self._locked():
            return [j for j in (decode_line(line) for line in self._read_lines()) if j is not None]

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:  # absent (or unreadable: append will say why)
            return 0

    def _read_lines(self) -> list[bytes]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        return data.splitlines(keepends=True)

    def remove(self, keys: set[str]) -> int:
        """Drop the lines of ``keys`` (and set torn lines aside); atomic: a new file renamed over the old.
        Returns how many lines are left."""
        with self._locked():
            keep: list[bytes] = []
            corrupt: list[bytes] = []
            for line in self._read_lines():
                job = decode_line(line)
                if job is None:
                    corrupt.append(line)
                elif job.key not in keys:
                    keep.append(line)
            if corrupt:
                log.error("write spool %s: %d torn or unreadable line(s) moved to %s (never acknowledged)",
                          self.path, len(corrupt), self._corrupt_path)
                with self._corrupt_path.open("ab") as f:
                    f.writelines(line if line.endswith(b"\n") else line + b"\n" for line in corrupt)
                    f.flush()
                    os.fsync(f.fileno())
            if not keep:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                _fsync_dir(self.path.parent)
                return 0
            tmp = self.path.with_name(self.path.name + ".tmp")
            with tmp.open("wb") as f:
                f.writelines(keep)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            return len(keep)


class RedisWriteQueue(Protocol):
    """What the spooling submitter needs of :class:`~ari_agent.integrations.jobs.WriteQueue`."""

    def submit(self, job: WriteJob) -> SubmitState: ...

    def reachable(self) -> bool: ...

    def close(self) -> None: ...


@dataclass
class ReplayReport:
    replayed: dict[str, int] = field(default_factory=dict)  # SubmitState value -> count
    left: int = 0
    redis_up: bool = False

    @property
    def total(self) -> int:
        return sum(self.replayed.values())


class SpoolingWriteQueue:
    """A write submitter: RQ when Redis answers, the durable spool when it does not.

    ``submit`` returns :attr:`SubmitState.SPOOLED` for a job that went to the spool, and raises
    :class:`SpoolError` only when neither Redis nor the disk could take it (the caller must then be
    handed off: nothing was stored). Thread-safe; the runner calls it through ``asyncio.to_thread``.
    """

    def __init__(self, queue: RedisWriteQueue, spool: WriteSpool) -> None:
        self.queue = queue
        self.spool = spool
        self._state_lock = threading.Lock()
        self._replay_lock = threading.Lock()
        # Jobs left from an earlier run (a crash while Redis was down) are replayed before new ones
        # go to Redis: spooling mode until the spool is empty.
        self._spooling = spool.size() > 0
        self.spooled_total = 0

    @property
    def spooling(self) -> bool:
        """True while Redis is known to be down or the spool still holds jobs."""
        return self._spooling

    def submit(self, job: WriteJob) -> SubmitState:
        with self._state_lock:
            if self._spooling:
                return self._to_spool(job)
        try:
            return self.queue.submit(job)
        except redis.RedisError as exc:
            with self._state_lock:
                if not self._spooling:
                    log.warning("redis unreachable (%s): spooling writes to %s", type(exc).__name__, self.spool.path)
                self._spooling = True
                return self._to_spool(job)

    def _to_spool(self, job: WriteJob) -> SubmitState:
        self.spool.append(job)
        self.spooled_total += 1
        return SubmitState.SPOOLED

    def replay(self) -> ReplayReport:
        """Submit the spooled jobs to RQ (oldest first) while Redis answers; back to direct submits once
        the spool is empty. Safe to call at any time, from any thread (one replay at a time)."""
        report = ReplayReport()
        with self._replay_lock:
            if not self._spooling:
                report.redis_up = True
                return report
            if not self.queue.reachable():
                report.left = len(self.spool.pending())
                return report
            report.redis_up = True
            while True:
                pending = self.spool.pending()
                done: set[str] = set()
                try:
                    for item in pending:
                        state = self.queue.submit(item.job)
                        report.replayed[state.value] = report.replayed.get(state.value, 0) + 1
                        done.add(item.key)
                except redis.RedisError as exc:
                    report.redis_up = False
                    log.warning("redis went away during the spool replay (%s)", type(exc).__name__)
                report.left = self.spool.remove(done)
                if not report.redis_up:
                    return report
                with self._state_lock:
                    # Appends take the state lock too: an empty spool here stays empty until the switch.
                    if self.spool.size() == 0:
                        self._spooling = False
                        break
        if report.total:
            log.info("replayed %d spooled write(s) into RQ: %s", report.total, report.replayed)
        return report

    def close(self) -> None:
        self.queue.close()
