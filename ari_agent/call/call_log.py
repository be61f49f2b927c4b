"""The call's event log: what the agent said, heard and did, in order (kept for tests and
benchmarks, logged, and stored at the end of the call, redacted: :meth:`CallLog.store`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ari_agent.config import Config
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.governance.at_rest import SEALED_SUFFIX, recording_seal, write_atomic
from ari_agent.governance.call_logs import CALL_LOG_NAME, call_log_dir, config_redactor, encode, redact_entries

log = logging.getLogger("ari_agent.call")


class CallLog(list[dict[str, Any]]):
    def __init__(self, call_id: str, started_at: float) -> None:
        super().__init__()
        self.call_id = call_id
        self.started_at = started_at
        # What the caller says or keys to these slots, and these tools' arguments, are never stored.
        self.sensitive_slots: frozenset[str] = frozenset()
        self.sensitive_tools: frozenset[str] = frozenset()

    def mark_sensitive(self, intent_map: IntentMap) -> None:
        """The map's identity verification: its slots' answers and its tool's arguments are secrets."""
        v = intent_map.spec.verification
        if v is not None:
            self.sensitive_slots = frozenset(s.name for s in (*v.basic.slots, *v.strong.slots))
            self.sensitive_tools = frozenset({v.tool})

    def add(self, kind: str, **detail: Any) -> None:
        self.append({"t": round(time.monotonic() - self.started_at, 3), "kind": kind, **detail})
        log.info("call %s: %s %s", self.call_id, kind, detail)

    def write(self, path: Path, seal: Callable[[bytes], bytes] | None = None) -> Path:
        """Store the log as JSON lines (blocking); with ``seal`` (``governance.at_rest``) encrypted, as
        ``path`` + ``.enc``. Written atomically, mode 0600; ``ari-agent retention run`` deletes it when old."""
        data = "".join(json.dumps(e, default=str) + "\n" for e in self).encode()
        if seal is not None:
            return write_atomic(path.with_name(path.name + SEALED_SUFFIX), seal(data))
        return write_atomic(path, data)

    def store(self, cfg: Config) -> Path | None:
        """Keep the log once the call is over (blocking): redacted (``governance/call_logs.py``), as
        ``<storage.call_logs_dir>/<call id>/events.jsonl``, sealed (``.enc``) with ``storage.encrypt_at_rest``.
        None when ``storage.store_call_logs`` is off. OSError / AtRestError when it cannot be written."""
        if not cfg.storage.store_call_logs or not self.call_id:
            return None
        entries = redact_entries(self, config_redactor(cfg), sensitive_slots=self.sensitive_slots,
                                 sensitive_tools=self.sensitive_tools)
        path = call_log_dir(cfg, self.call_id) / CALL_LOG_NAME
        seal = recording_seal(cfg, self.call_id)
        if seal is not None:
            return write_atomic(path.with_name(path.name + SEALED_SUFFIX), seal(encode(entries)))
        return write_atomic(path, encode(entries))
