"""The tamper-evident audit log on disk: append-only JSON lines, hash-chained (``audit_chain``).

Appends are safe from several processes at once: each takes an exclusive ``flock`` on the log, reads
the last record from the file itself (not from memory: another process may have appended), writes
one line with ``O_APPEND``, ``fsync``\\s it, then replaces the head file (``<log>.head``: last seq and
hash, MAC'd with the key) and ``fsync``\\s that. A crash between the two leaves the head one record
behind; ``verify`` reports it (investigate, do not ignore).

A live call must not wait on ``fsync``: :meth:`AuditLog.submit` queues the record for one writer
thread per log (records keep their order); :meth:`AuditLog.append` writes at once (the CLI).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ari_agent.governance.audit_chain import GENESIS, ChainReport, canonical, check_lines, make_head, seal
from ari_agent.governance.keys import GovernanceError

log = logging.getLogger(__name__)

_TAIL_CHUNK = 8192


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """``value`` made plain JSON (anything else becomes its ``str``), so a record always serialises."""
    return json.loads(json.dumps(value, default=str, allow_nan=False, sort_keys=True)) if value is not None else None


def _last_line(fd: int) -> bytes:
    """The last complete line of the file open at ``fd`` (b"" for an empty file)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    end = size
    buf = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        buf = os.pread(fd, end - start, start) + buf
        end = start
        body = buf[:-1] if buf.endswith(b"\n") else buf
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1:]
    return buf[:-1] if buf.endswith(b"\n") else buf


class AuditLog:
    """One audit log file. ``key``: HMAC key (None: hash chain only — see ``audit_chain``)."""

    def __init__(self, path: Path, key: bytes | None = None, *, map_version: str | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.map_version = map_version  # the active intent map's version, on every record
        self.host = socket.gethostname()
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures = 0

    # ------------------------------------------------------------------ writing
    def append(self, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Write one record now (blocking: lock, append, fsync, head); returns the sealed record."""
        body = {"ts": utc_now(), "kind": kind, "host": self.host, "pid": os.getpid(),
                "map_version": self.map_version, "data": _jsonable(dict(data))}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise GovernanceError(f"audit log {self.path}: cannot open it ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            last = _last_line(fd)
            if last:
                try:
                    previous = json.loads(last)
                    seq, prev = int(previous["seq"]) + 1, str(previous["hash"])
                except (ValueError, KeyError, TypeError):
                    raise GovernanceError(f"audit log {self.path}: its last record is unreadable "
                                          "(run 'ari-agent audit verify'); not appending") from None
            else:
                seq, prev = 0, GENESIS
            record = seal(body, seq=seq, prev=prev, key=self.key)
            os.write(fd, (canonical(record) + "\n").encode("ascii"))
            os.fsync(fd)
            self._write_head(record)
        except OSError as exc:
            raise GovernanceError(f"audit log {self.path}: write failed ({exc.strerror or exc})") from None
        finally:
            os.close(fd)  # releases the flock
        return record

    def _write_head(self, record: Mapping[str, Any]) -> None:
        head = head_path(self.path)
        tmp = head.with_name(f"{head.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="ascii") as f:
            f.write(canonical(make_head(record, self.key)) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, head)

    def submit(self, kind: str, data: Mapping[str, Any]) -> None:
        """Queue a record for the writer thread (never blocks the caller; order is kept)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._drain, name=f"audit-{self.path.name}", daemon=True)
                self._thread.start()
        self._queue.put((kind, dict(data)))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                try:
                    self.append(*item)
                except GovernanceError as exc:
                    self.failures += 1
                    log.error("%s (record %s lost)", exc, item[0])
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every submitted record is written."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._thread = None


# ---------------------------------------------------------------------- verifying
def read_head(path: Path) -> dict[str, Any] | None:
    try:
        text = head_path(path).read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        head = json.loads(text)
    except ValueError:
        return {}
    return head if isinstance(head, dict) else {}


def _lines(data: bytes) -> Iterator[str]:
    for raw in data.split(b"\n"):
        try:
            yield raw.decode("ascii")
        except UnicodeDecodeError:
            yield "\x00"  # not canonical JSON: reported as an edited line


def verify_file(path: Path, key: bytes | None) -> ChainReport:
    """Check the whole log at ``path`` (and its head); raises GovernanceError if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GovernanceError(f"audit log {path}: cannot read it ({exc.strerror or exc})") from None
    cut = bool(data) and not data.endswith(b"\n")
    body = data[:-1] if data.endswith(b"\n") else data
    lines = list(_lines(body)) if data else []
    return check_lines(lines, key=key, head=read_head(Path(path)), cut_last_line=cut)
