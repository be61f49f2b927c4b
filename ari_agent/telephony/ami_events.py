"""AMI messages read into typed records: queue events (for the screen-pop) and ``QueueSummary``.

Pure (no I/O). AMI messages are header mappings (panoramisk's ``Message``: each value a string, or a
list of strings when a header repeats, as ``ChanVariable`` does). Anything malformed — a missing
header, a number that is not one, a variable without ``=`` — gives ``None`` or a default, never an
exception: one odd event from the PBX must not stop the listener.

Correlation with our call: the agent sets ``__ARI_AGENT_CALL_ID`` on the caller's channel before the
handoff, and ``manager.conf`` lists it in ``channelvars``, so every event on that channel (and on the
queue member's channel, which inherits it) carries ``ChanVariable: ARI_AGENT_CALL_ID=<id>`` (the
member channel's as ``DestChanVariable``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

CALL_ID_VARIABLE = "ARI_AGENT_CALL_ID"

EventKind = Literal["caller_join", "agent_called", "agent_connect", "agent_complete", "caller_abandon",
                    "caller_leave"]

_KINDS: dict[str, EventKind] = {
    "queuecallerjoin": "caller_join",
    "agentcalled": "agent_called",
    "agentconnect": "agent_connect",
    "agentcomplete": "agent_complete",
    "queuecallerabandon": "caller_abandon",
    "queuecallerleave": "caller_leave",
}
QUEUE_EVENT_NAMES = ("QueueCallerJoin", "AgentCalled", "AgentConnect", "AgentComplete", "QueueCallerAbandon",
                     "QueueCallerLeave")

Headers = Mapping[str, object]


@dataclass(frozen=True)
class QueueEvent:
    """One queue event about a caller (``kind``), with what the screen-pop needs to find our context."""

    kind: EventKind
    queue: str
    call_id: str | None  # ARI_AGENT_CALL_ID; None for callers that did not come from the agent
    caller_channel: str = ""
    caller_uniqueid: str = ""
    linkedid: str = ""
    caller_number: str = ""
    caller_name: str = ""
    interface: str = ""  # the queue member (agent_* events)
    member_name: str = ""
    member_channel: str = ""
    hold_time_s: int | None = None
    talk_time_s: int | None = None
    position: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class QueueSummary:
    """One queue's state from ``QueueSummary``."""

    queue: str
    logged_in: int
    available: int
    callers: int
    hold_time_s: int  # Asterisk's running average of recent callers' hold time
    talk_time_s: int
    longest_hold_s: int

    @property
    def estimated_wait_s(self) -> int:
        """0 when a member is free for the next caller; otherwise the recent average hold time, or the
        longest current wait when that is longer (a queue that backs up now waits more than its average)."""
        if self.available > self.callers:
            return 0
        return max(self.hold_time_s, self.longest_hold_s)


def _text(headers: Headers, name: str) -> str:
    value = _get(headers, name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value.strip() if isinstance(value, str) else ""


def _get(headers: Headers, name: str) -> object:
    if name in headers:
        return headers[name]
    low = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == low:
            return value
    return None


def _int(headers: Headers, name: str) -> int | None:
    raw = _text(headers, name)
    if not raw or len(raw) > 12:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def channel_variables(headers: Headers, header: str = "ChanVariable") -> dict[str, str]:
    """``NAME=value`` entries of a (possibly repeated) variable header; entries without ``=`` are skipped.
    Asterisk 22 sometimes writes the channel in front (``ChanVariable(PJSIP/...): NAME=value``): a header
    of that shape counts too."""
    out: dict[str, str] = {}
    low = header.lower()
    for key, value in headers.items():
        if not isinstance(key, str):
            continue
        k = key.lower()
        if k != low and not (k.startswith(low + "(") and k.endswith(")")):
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and "=" in item:
                name, _, val = item.partition("=")
                if name.strip():
                    out[name.strip()] = val
    return out


def parse_queue_event(headers: Headers) -> QueueEvent | None:
    """A queue event, or None when ``headers`` is not one we follow (or is unusable)."""
    try:
        kind = _KINDS.get(_text(headers, "Event").lower())
        if kind is None:
            return None
        queue = _text(headers, "Queue")
        if not queue:
            return None
        caller_vars = channel_variables(headers, "ChanVariable")
        member_vars = channel_variables(headers, "DestChanVariable")
        call_id = caller_vars.get(CALL_ID_VARIABLE) or member_vars.get(CALL_ID_VARIABLE) or None
        return QueueEvent(
            kind=kind, queue=queue, call_id=call_id,
            caller_channel=_text(headers, "Channel"), caller_uniqueid=_text(headers, "Uniqueid"),
            linkedid=_text(headers, "Linkedid"), caller_number=_text(headers, "CallerIDNum"),
            caller_name=_text(headers, "CallerIDName"), interface=_text(headers, "Interface"),
            member_name=_text(headers, "MemberName"), member_channel=_text(headers, "DestChannel"),
            hold_time_s=_int(headers, "HoldTime"), talk_time_s=_int(headers, "TalkTime"),
            position=_int(headers, "Position"), reason=_text(headers, "Reason"),
        )
    except (TypeError, AttributeError):  # headers of an unexpected type altogether
        return None


def parse_queue_summary(messages: object, queue: str) -> QueueSummary | None:
    """The ``QueueSummary`` event for ``queue`` among an action's reply messages, or None (no such queue,
    an error reply, or numbers that do not parse)."""
    if not isinstance(messages, list):
        messages = [messages]
    for msg in messages:
        if not isinstance(msg, Mapping) or _text(msg, "Event").lower() != "queuesummary":
            continue
        if _text(msg, "Queue") != queue:
            continue
        fields = {name: _int(msg, name) for name in ("LoggedIn", "Available", "Callers", "HoldTime", "TalkTime",
                                                      "LongestHoldTime")}
        if fields["LoggedIn"] is None or fields["Available"] is None or fields["Callers"] is None:
            return None
        return QueueSummary(queue=queue, logged_in=fields["LoggedIn"], available=fields["Available"],
                            callers=fields["Callers"], hold_time_s=fields["HoldTime"] or 0,
                            talk_time_s=fields["TalkTime"] or 0, longest_hold_s=fields["LongestHoldTime"] or 0)
    return None
