"""The call's event log: what the agent said, heard and did, in order (kept for tests and
benchmarks, and logged)."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("ari_agent.call")


class CallLog(list[dict[str, Any]]):
    def __init__(self, call_id: str, started_at: float) -> None:
        super().__init__()
        self.call_id = call_id
        self.started_at = started_at

    def add(self, kind: str, **detail: Any) -> None:
        self.append({"t": round(time.monotonic() - self.started_at, 3), "kind": kind, **detail})
        log.info("call %s: %s %s", self.call_id, kind, detail)
