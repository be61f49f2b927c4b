"""Writes each live call's record at the end of the call: failure-safe, bounded in time.

``CallRecordWriter.write(facts)`` never raises and never waits longer than ``records.write_timeout_s``:
a database that is down, slow or refuses the row is logged (without the caller's number or the URL's
password) and the call's teardown goes on. The store opens on the first write (in a worker thread:
SQLAlchemy is synchronous) and is reopened after a failure.

The caller-id salt is ``records.salt`` or, unset, a random one created once in ``records.salt_file``
(mode 0600): the same number hashes the same across restarts (repeat calls are linked), and the hashes
are useless without the salt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from pathlib import Path

from ari_agent.config import Config, RecordsConfig
from ari_agent.errors import AriAgentError
from ari_agent.records.call_facts import CallFacts, build_record
from ari_agent.records.model import CallerHasher, CallRecord, version_hash
from ari_agent.records.store import CallRecordStore

log = logging.getLogger(__name__)


def config_version(cfg: Config, map_path: Path) -> str:
    """The content hash of what handles the calls: the intent map and the (secret-free) configuration."""
    try:
        map_bytes = map_path.read_bytes()
    except OSError:
        map_bytes = b""
    return version_hash(map_bytes, cfg.model_dump_json().encode())  # SecretStr fields dump as '**********'


def load_salt(cfg: RecordsConfig) -> str:
    """``records.salt``, else the salt file's (created with a random salt the first time)."""
    if cfg.salt is not None:
        return cfg.salt.get_secret_value()
    path = cfg.salt_file
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AriAgentError(f"cannot read the caller-id salt {path}: {exc.strerror or exc}") from None
    salt = secrets.token_hex(16)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(salt + "\n")
    except FileExistsError:  # another process made it first: use theirs
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise AriAgentError(f"cannot create the caller-id salt {path}: {exc.strerror or exc}") from None
    return salt


class CallRecordWriter:
    def __init__(self, cfg: RecordsConfig, config_version: str,
                 extra_redactions: tuple[tuple[str, str], ...] = ()) -> None:
        self.cfg = cfg
        self.config_version = config_version
        self.extra_redactions = extra_redactions
        self.written = 0
        self.failed = 0
        self._store: CallRecordStore | None = None
        self._hasher: CallerHasher | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config, map_path: Path) -> CallRecordWriter:
        extra = tuple((p.label, p.pattern) for p in cfg.redaction.extra_patterns)
        return cls(cfg.records, config_version(cfg, map_path), extra)

    async def write(self, facts: CallFacts) -> CallRecord | None:
        """Store the record of one ended call; None (logged) when it could not be stored in time."""
        facts.extra_redactions = self.extra_redactions
        try:
            record = await asyncio.wait_for(asyncio.to_thread(self._add, facts), self.cfg.write_timeout_s)
        except TimeoutError:
            self.failed += 1
            log.error("call %s: call record not written: the records database took over %.1fs", facts.call_id,
                      self.cfg.write_timeout_s)
            return None
        except Exception as exc:  # the call's teardown must go on whatever the database does
            self.failed += 1
            log.error("call %s: call record not written: %s", facts.call_id, _one_line(exc))
            return None
        self.written += 1
        return record

    def _add(self, facts: CallFacts) -> CallRecord:
        with self._lock:
            if self._hasher is None:
                self._hasher = CallerHasher(load_salt(self.cfg))
            if self._store is None:
                self._store = CallRecordStore(self.cfg.url)
            record = build_record(facts, self._hasher, self.config_version)
            try:
                return self._store.add(record)
            except Exception:
                self._store.close()
                self._store = None  # reopened on the next write (the server may be back)
                raise

    async def aclose(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await asyncio.to_thread(store.close)


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}"[:300]
