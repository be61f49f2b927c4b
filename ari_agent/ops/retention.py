"""Retention: recordings and call logs older than ``storage.retention_days`` are deleted.

Run by ``ari-agent retention run [--dry-run]`` or as an RQ job (:func:`retention_job`, which can
re-enqueue itself: ``ari-agent retention schedule``; an ``ari-agent worker`` with its scheduler runs
it). Only regular files under the configured roots (``agent.recordings_dir``,
``storage.call_logs_dir``) are considered, by modification time; symbolic links are neither followed
nor deleted, and a per-call directory left empty is removed. The audit log is never touched (it is
append-only by design and lives outside these roots).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ari_agent.config import Config, load_config

log = logging.getLogger(__name__)
DAY_S = 86400.0


@dataclass(frozen=True)
class StoredFile:
    path: Path
    mtime: float
    size: int


@dataclass
class RetentionReport:
    roots: list[Path]
    cutoff: float
    dry_run: bool
    expired: list[StoredFile] = field(default_factory=list)
    kept: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.expired)

    def summary(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "deleted": 0 if self.dry_run else len(self.expired),
                "expired": len(self.expired), "kept": self.kept, "bytes": self.bytes, "errors": self.errors,
                "roots": [str(r) for r in self.roots]}


def expired(files: Iterable[StoredFile], cutoff: float) -> tuple[list[StoredFile], int]:
    """The files last modified before ``cutoff`` (pure: the decision, apart from the walking)."""
    old: list[StoredFile] = []
    kept = 0
    for f in files:
        if f.mtime < cutoff:
            old.append(f)
        else:
            kept += 1
    return old, kept


def stored_files(root: Path) -> Iterator[StoredFile]:
    """Every regular file under ``root`` (not following symbolic links)."""
    if not root.is_dir():
        return
    for dirpath, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            if p.is_symlink() or not p.is_file():
                continue
            yield StoredFile(p, st.st_mtime, st.st_size)


def run_retention(roots: Sequence[Path], retention_days: float, *, dry_run: bool = False,
                  now: float | None = None) -> RetentionReport:
    cutoff = (time.time() if now is None else now) - retention_days * DAY_S
    report = RetentionReport([Path(r) for r in roots], cutoff, dry_run)
    for root in report.roots:
        old, kept = expired(stored_files(root), cutoff)
        report.kept += kept
        for f in old:
            if not dry_run:
                try:
                    f.path.unlink()
                except OSError as exc:
                    report.errors.append(f"{f.path}: {exc.strerror or exc}")
                    continue
            report.expired.append(f)
        if not dry_run:
            _remove_empty_dirs(root)
    log.info("retention: %s %d files (%d bytes) older than %.1f days under %s; %d kept",
             "would delete" if dry_run else "deleted", len(report.expired), report.bytes, retention_days,
             ", ".join(str(r) for r in report.roots), report.kept)
    return report


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirs, _names in os.walk(root, topdown=False, followlinks=False):
        p = Path(dirpath)
        if p != root:
            try:
                p.rmdir()  # only succeeds when empty
            except OSError:
                pass


def retention_roots(cfg: Config) -> list[Path]:
    return [cfg.agent.recordings_dir, cfg.storage.call_logs_dir]


def run_from_config(cfg: Config, *, dry_run: bool = False, now: float | None = None) -> RetentionReport | None:
    """None when ``storage.retention_days`` is unset (keep forever)."""
    days = cfg.storage.retention_days
    if days is None:
        return None
    return run_retention(retention_roots(cfg), days, dry_run=dry_run, now=now)


def retention_job(config_path: str | None = None, reschedule_s: int | None = None,
                  queue_name: str | None = None) -> dict[str, Any]:
    """The RQ job: one retention run with the service config; with ``reschedule_s``, the next run is
    enqueued that much later on the same queue (needs a worker with its scheduler). Arguments are plain
    JSON values: ``ari-agent worker`` uses RQ's JSON serializer."""
    cfg = load_config(config_path)
    report = run_from_config(cfg)
    if reschedule_s:
        from rq import Queue, get_current_job

        job = get_current_job()
        if job is not None:
            q = Queue(queue_name or job.origin, connection=job.connection, serializer=job.serializer)
            q.enqueue_in(timedelta(seconds=reschedule_s), retention_job, config_path, reschedule_s, queue_name,
                         job_id=None, description="ari-agent retention")
    return report.summary() if report is not None else {"skipped": "storage.retention_days is not set"}
