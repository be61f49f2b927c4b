"""Which caller each queue member is being offered or talking to, from AMI queue events.

Pure state (no I/O): ``apply(event, record)`` turns an event plus the stored handoff record (or None)
into the card a member's page shows, and remembers it per member interface. The web app feeds it and
pushes the cards to the pages that are open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ari_agent.telephony.ami_events import QueueEvent

_STATES = {"agent_called": "ringing", "agent_connect": "connected", "agent_complete": "completed",
           "caller_abandon": "abandoned"}


def interface_key(interface: str) -> str:
    return interface.strip().lower()


@dataclass
class LiveCalls:
    """The latest card per member interface (what a page opened now shows first)."""

    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_caller: dict[str, str] = field(default_factory=dict)  # caller uniqueid → interface offered it

    def apply(self, event: QueueEvent, record: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
        """The (interface key, card) to push for ``event``, or None when no member page is concerned."""
        state = _STATES.get(event.kind)
        if state is None:
            return None
        if event.interface:
            key = interface_key(event.interface)
        else:  # QueueCallerAbandon names no member: the one it was ringing, if any
            found = self.by_caller.get(event.caller_uniqueid)
            if found is None:
                return None
            key = found
        card = card_for(event, record, state)
        if state in ("ringing", "connected"):
            self.by_caller[event.caller_uniqueid] = key
        else:
            self.by_caller.pop(event.caller_uniqueid, None)
        current = self.cards.get(key)
        # A ringall queue rings several members: one answering ends the offer to the others, which
        # Asterisk reports as AgentRingNoAnswer (not followed): keep the newest card per member.
        if current is not None and state in ("completed", "abandoned") and \
                current.get("caller_uniqueid") != event.caller_uniqueid:
            return None
        self.cards[key] = card
        return key, card

    def card(self, interface: str) -> dict[str, Any] | None:
        return self.cards.get(interface_key(interface))


def card_for(event: QueueEvent, record: dict[str, Any] | None, state: str) -> dict[str, Any]:
    rec = record or {}

    def text(name: str, default: str = "") -> str:
        value = rec.get(name, default)
        return value if isinstance(value, str) else default

    slots = rec.get("slots")
    transcript = rec.get("transcript")
    return {
        "state": state,
        "call_id": event.call_id or "",
        "caller_uniqueid": event.caller_uniqueid,
        "queue": event.queue,
        "caller_id": text("caller_id") or event.caller_number,
        "caller_name": text("caller_name") or event.caller_name,
        "intent": text("intent"),
        "reason": text("reason"),
        "summary": text("summary"),
        "verification": text("verification"),
        "requested_queue": text("requested_queue"),
        "rerouted_because": text("rerouted_because"),
        "slots": {str(k): str(v) for k, v in slots.items()} if isinstance(slots, dict) else {},
        "transcript": [{"who": str(t.get("who", "")), "text": str(t.get("text", ""))}
                       for t in transcript if isinstance(t, dict)] if isinstance(transcript, list) else [],
        "hold_time_s": event.hold_time_s,
        "has_context": record is not None,
    }
