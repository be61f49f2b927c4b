"""What one live call leaves behind, turned into its ``CallRecord``. Pure: plain data in, a record out.

The call layer hands over ``CallFacts`` at the end of a call: how it ended (``ended_by``, the queue and
reason of a handoff), the call's event log (``call/call_log.py`` entries: ``heard``, ``dtmf``,
``no_input``, ``tool``, ``tool_result``, ``hangup``, ...), the engine's notes ("request: order_status",
"completed order_status", "not understood: ...") and each turn's stage profile (``TurnTiming.profile_ms``).

Rules (docs/evaluation.md):
- intents: the requests the engine recognised ("request: NAME" notes), in order, once each;
- outcome: handed off → ``transferred``; the agent ended the call → ``resolved`` when a request was served
  (or it ended for another reason than the caller's goodbye), else ``caller_hung_up``; the caller hung up →
  ``caller_hung_up``; a failure → ``error``; no conversation at all → ``open``;
- turns: caller turns the engine was given (an utterance heard, keys pressed, a no-input timeout);
- tool calls: each ``tool`` entry with the ``tool_result`` after it (none before the next: a timeout);
- policy events: the engine's "policy stopped ..." notes;
- heard: what the recogniser heard each turn, redacted (``ari_agent.redaction``) before it is stored;
- answer_s: when the agent's first prompt began (the first ``say`` entry's time, seconds from the call
  reaching the agent), for the service level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ari_agent.records.model import CallerHasher, CallRecord, ToolCallRecord
from ari_agent.redaction import redact

REQUEST_NOTE = "request: "
POLICY_NOTE = "policy stopped "
NO_MATCH_NOTE = "not understood: "
# Engine notes that say a request was served (answered, or declined by the caller).
SERVED_NOTES = ("completed ", "caller declined ")
CALLER_TURN_KINDS = frozenset({"heard", "dtmf", "no_input"})


@dataclass
class CallFacts:
    call_id: str
    started_at: dt.datetime  # timezone-aware
    ended_at: dt.datetime
    caller_number: str | None
    ended_by: str  # caller | agent | handoff | error | unknown
    handoff_queue: str | None = None
    handoff_reason: str | None = None
    events: Sequence[Mapping[str, Any]] = ()
    notes: Sequence[str] = ()
    turn_profiles: Sequence[Mapping[str, float | None]] = ()
    extra_redactions: Sequence[tuple[str, str]] = field(default_factory=tuple)


def requests_of(notes: Sequence[str]) -> list[str]:
    """The intents the engine recognised, in order (a request repeated counts once)."""
    names = [n[len(REQUEST_NOTE):].split(" ", 1)[0] for n in notes if n.startswith(REQUEST_NOTE)]
    return list(dict.fromkeys(names))


def request_served(notes: Sequence[str]) -> bool:
    """Whether the engine served a request: answered it, the caller declined it, or it ended with a result."""
    return any(n.startswith(SERVED_NOTES) or (" ended: " in n and not n.startswith("call ended")) for n in notes)


def hangup_outcome(reason: str | None, notes: Sequence[str]) -> str:
    """The outcome of a call the agent hung up: a goodbye before any request was served is the caller
    leaving, not a resolution."""
    return "resolved" if request_served(notes) or reason != "caller_goodbye" else "caller_hung_up"


def outcome_of(facts: CallFacts) -> str:
    if facts.ended_by == "handoff":
        return "transferred"
    if facts.ended_by == "error":
        return "error"
    if facts.ended_by == "caller":
        return "caller_hung_up"
    hangups = [e for e in facts.events if e.get("kind") == "hangup"]
    if hangups:
        return hangup_outcome(str(hangups[-1].get("reason") or ""), facts.notes)
    return "open"


def tool_calls_of(events: Sequence[Mapping[str, Any]]) -> list[ToolCallRecord]:
    out: list[ToolCallRecord] = []
    pending: Mapping[str, Any] | None = None

    def close(result: Mapping[str, Any] | None) -> None:
        assert pending is not None
        if result is None:
            out.append(ToolCallRecord(str(pending.get("name")), False, "no_result"))
            return
        ms = _ms_between(pending, result)
        err = result.get("error")
        out.append(ToolCallRecord(str(pending.get("name")), bool(result.get("ok")),
                                  None if err is None else str(err)[:128], ms))

    for e in events:
        kind = e.get("kind")
        if kind == "tool":
            if pending is not None:
                close(None)
            pending = e
        elif kind == "tool_result" and pending is not None:
            close(e)
            pending = None
    if pending is not None:
        close(None)
    return out


def stage_ms_of(profiles: Sequence[Mapping[str, float | None]]) -> dict[str, list[float]]:
    stages: dict[str, list[float]] = {}
    for p in profiles:
        for stage, ms in p.items():
            if ms is not None:
                stages.setdefault(stage, []).append(float(ms))
    return stages


def build_record(facts: CallFacts, hasher: CallerHasher, config_version: str) -> CallRecord:
    outcome = outcome_of(facts)
    extra = tuple(facts.extra_redactions)
    return CallRecord(
        call_id=facts.call_id, started_at=facts.started_at, ended_at=facts.ended_at,
        caller_hash=hasher.hash(facts.caller_number or ""), intents=requests_of(facts.notes), outcome=outcome,
        transfer_queue=facts.handoff_queue if outcome == "transferred" else None,
        transfer_reason=(facts.handoff_reason or "unknown")[:64] if outcome == "transferred" else None,
        turns=sum(1 for e in facts.events if e.get("kind") in CALLER_TURN_KINDS),
        stage_ms=stage_ms_of(facts.turn_profiles), tool_calls=tool_calls_of(facts.events),
        policy_events=[f"policy: {n[len(POLICY_NOTE):]}" for n in facts.notes if n.startswith(POLICY_NOTE)],
        config_version=config_version, source="call",
        heard=[redact(str(e.get("text") or ""), extra_patterns=extra) for e in facts.events
               if e.get("kind") == "heard"],
        no_match_turns=sum(1 for n in facts.notes if n.startswith(NO_MATCH_NOTE)),
        answer_s=answer_s_of(facts.events),
    )


def answer_s_of(events: Sequence[Mapping[str, Any]]) -> float | None:
    """Seconds from the call reaching the agent to its first prompt (the log's times count from there)."""
    for e in events:
        if e.get("kind") == "say":
            try:
                return max(0.0, round(float(e["t"]), 3))
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _ms_between(a: Mapping[str, Any], b: Mapping[str, Any]) -> float | None:
    try:
        return round((float(b["t"]) - float(a["t"])) * 1000, 1)
    except (KeyError, TypeError, ValueError):
        return None
