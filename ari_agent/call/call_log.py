"""The call's event log: what the agent said, heard and did, in order (kept for tests and
benchmarks, and logged)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ari_agent.governance.at_rest import SEALED_SUFFIX, write_atomic

log = logging.getLogger("ari_agent.call")


class CallLog(list[dict[str, Any]]):
    def __init__(self, call_id: str, started_at: float) -> None:
        super().__init__()
        self.call_id = call_id
        self.started_at = started_at

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
