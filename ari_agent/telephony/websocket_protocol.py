"""Asterisk 22 chan_websocket control messages, parsed and formatted (pure: no I/O).

TEXT frames carry control; BINARY frames carry media (slin16: little-endian 16-bit PCM at 16 kHz).
Asterisk speaks "plain-text" by default (``MEDIA_START connection_id:X channel:Y format:slin16 ...``,
``MEDIA_MARK_PROCESSED <id>``, ``QUEUE_DRAINED``) or JSON (``{"event": "MEDIA_START", ...}``) when
chan_websocket.conf says so; both are parsed here. Commands are sent in plain text, which every
Asterisk with chan_websocket accepts (verified on 22.10.1: MARK_MEDIA, FLUSH_MEDIA, GET_STATUS,
REPORT_QUEUE_DRAINED).

Anything that is not a well-formed control message raises :class:`WebSocketProtocolError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from ari_agent.errors import TelephonyError

MAX_TEXT_LEN: Final = 4096
# res_http_websocket refuses (and closes on) frames above 64 KiB: media goes in 0.2 s chunks.
MAX_BINARY_CHUNK: Final = 6400
EXPECTED_FORMAT: Final = "slin16"
KNOWN_EVENTS: Final = frozenset({
    "MEDIA_START", "MEDIA_XOFF", "MEDIA_XON", "STATUS", "MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED",
    "QUEUE_DRAINED", "DTMF_END", "ERROR",
})


class WebSocketProtocolError(TelephonyError):
    """A control message that chan_websocket would not send: empty, too long, unknown, badly formed."""


@dataclass(frozen=True)
class ControlEvent:
    """One event from Asterisk: its name, its ``key:value`` fields, and a bare argument (a mark's id)."""

    name: str
    fields: dict[str, str] = field(default_factory=dict)
    argument: str = ""

    def int_field(self, key: str) -> int:
        try:
            return int(self.fields[key])
        except (KeyError, ValueError):
            raise WebSocketProtocolError(f"{self.name}: field {key!r} missing or not a number") from None


def parse_control(text: str) -> ControlEvent:
    """Parse one TEXT frame (plain-text or JSON)."""
    if not text.strip():
        raise WebSocketProtocolError("empty control message")
    if len(text) > MAX_TEXT_LEN:
        raise WebSocketProtocolError(f"control message of {len(text)} characters (at most {MAX_TEXT_LEN})")
    event = _parse_json(text) if text.lstrip().startswith("{") else _parse_plain(text)
    if event.name not in KNOWN_EVENTS:
        raise WebSocketProtocolError(f"unknown control event {event.name[:40]!r}")
    return event


def _parse_plain(text: str) -> ControlEvent:
    name, *rest = text.strip().split()
    if not name.isupper() or not name.replace("_", "").isalpha():
        raise WebSocketProtocolError(f"not a control event: {text[:60]!r}")
    fields: dict[str, str] = {}
    bare: list[str] = []
    for token in rest:
        key, sep, value = token.partition(":")
        if sep and key and key.replace("_", "").isalnum() and key.islower():
            fields[key] = value
        else:
            bare.append(token)
    return ControlEvent(name, fields, " ".join(bare))


def _parse_json(text: str) -> ControlEvent:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise WebSocketProtocolError(f"control message is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise WebSocketProtocolError("JSON control message without an \"event\" name")
    fields = {str(k): str(v) for k, v in data.items() if k != "event" and not isinstance(v, (dict, list))}
    argument = fields.get("correlation_id", "")
    return ControlEvent(data["event"], fields, argument)


def check_media_start(event: ControlEvent, expected_format: str = EXPECTED_FORMAT) -> int:
    """Validate MEDIA_START; returns the optimal frame size in bytes."""
    if event.name != "MEDIA_START":
        raise WebSocketProtocolError(f"expected MEDIA_START first, got {event.name}")
    fmt = event.fields.get("format", "")
    if fmt != expected_format:
        raise WebSocketProtocolError(f"MEDIA_START announces format {fmt!r}; {expected_format!r} was requested")
    size = event.int_field("optimal_frame_size")
    if size <= 0 or size % 2:
        raise WebSocketProtocolError(f"MEDIA_START optimal_frame_size {size} is not a positive even size")
    return size


def command(name: str, argument: str = "") -> str:
    """A plain-text command (``MARK_MEDIA m12``, ``FLUSH_MEDIA``)."""
    if not name.isupper() or " " in name:
        raise WebSocketProtocolError(f"bad command name {name!r}")
    if argument and (not argument.isprintable() or " " in argument):
        raise WebSocketProtocolError(f"bad command argument {argument!r}")
    return f"{name} {argument}" if argument else name


def chunks(data: bytes, size: int = MAX_BINARY_CHUNK) -> list[bytes]:
    """Media bytes cut into BINARY frames of at most ``size`` bytes (an even number: whole samples)."""
    size -= size % 2
    return [data[i:i + size] for i in range(0, len(data), size)]
