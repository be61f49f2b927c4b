"""One call record per call: what the KPIs are computed from. Plain data, no I/O.

The caller's number is never stored: ``CallerHasher`` turns it into a salted HMAC-SHA256, the
same for the same number under the same salt (so repeat calls can be linked), useless without the
salt (a bare hash of a phone number is reversed by trying every number).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from ari_agent.errors import AriAgentError

# The outcomes a call can have (the KPIs count by these).
OUTCOMES = ("resolved", "transferred", "caller_hung_up", "open", "error")
REPEAT_WINDOW = dt.timedelta(days=7)


@dataclass(frozen=True)
class ToolCallRecord:
    name: str
    ok: bool
    error: str | None = None
    ms: float | None = None


@dataclass
class CallRecord:
    call_id: str
    started_at: dt.datetime  # timezone-aware (UTC)
    ended_at: dt.datetime | None = None
    caller_hash: str | None = None  # CallerHasher.hash(caller id); never the number itself
    intents: list[str] = field(default_factory=list)
    outcome: str = "open"
    transfer_queue: str | None = None
    transfer_reason: str | None = None
    transfer_correct: bool | None = None  # labelled (evaluation, QA review); None when nobody judged it
    turns: int = 0
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # per stage: one figure per occurrence
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    policy_events: list[str] = field(default_factory=list)  # "rule: detail"
    config_version: str = ""  # hash of the intent map + config that handled the call
    source: str = "call"  # call | eval
    human_handle_s: float | None = None  # time with a person after a transfer, when the ACD reports it
    repeat_of: str | None = None  # call_id of the same caller's earlier call about a same intent (7 days)
    heard: list[str] = field(default_factory=list)  # what the recogniser heard, per caller turn (redacted)
    no_match_turns: int = 0  # caller turns the agent did not understand (recognition no-match)
    answer_s: float | None = None  # from the call's arrival at the agent to its first prompt (live calls)
    human_answered: bool | None = None  # after a transfer: a person answered (ACD report; None: not reported)
    human_wait_s: float | None = None  # after a transfer: seconds in the queue until answered or abandoned

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        if self.started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")


class CallerHasher:
    """Salted hash of a caller id: ``hash("+1 555 123 0001") == hash("+15551230001")``."""

    def __init__(self, salt: str) -> None:
        if len(salt) < 8:
            raise AriAgentError("the caller-id salt must be at least 8 characters (records.salt)")
        self._key = salt.encode()

    def hash(self, caller_id: str) -> str | None:
        """None for an anonymous or missing caller id (those are never linked as repeats)."""
        number = re.sub(r"[\s().-]", "", caller_id or "")
        if not number or number.lower() in ("anonymous", "unknown", "restricted", "private"):
            return None
        return hmac.new(self._key, number.encode(), hashlib.sha256).hexdigest()[:32]


def version_hash(*parts: bytes) -> str:
    """A short content hash of the configuration that handled a call (intent map, config file)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:16]
