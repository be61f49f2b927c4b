"""Typed ARI events. ``parse_event`` turns the WebSocket's JSON into one of these dataclasses, or
raises ``AriEventError`` naming what was missing — the dispatcher logs and skips such events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ari_agent.errors import TelephonyError


class AriEventError(TelephonyError):
    """An ARI event that is not valid JSON or lacks a field we rely on."""


@dataclass(frozen=True)
class Channel:
    id: str
    name: str = ""
    state: str = ""
    caller_number: str = ""
    caller_name: str = ""
    dialplan_exten: str = ""
    dialplan_context: str = ""
    channelvars: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Channel:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise AriEventError("channel object without an id")
        caller = _dict(data.get("caller"))
        dialplan = _dict(data.get("dialplan"))
        cvars = _dict(data.get("channelvars"))
        return cls(
            id=data["id"],
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialplan_exten=str(dialplan.get("exten", "")),
            dialplan_context=str(dialplan.get("context", "")),
            channelvars={str(k): str(v) for k, v in cvars.items()},
        )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class AriEvent:
    type: str
    application: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class StasisStart(AriEvent):
    channel: Channel
    args: tuple[str, ...]


@dataclass(frozen=True)
class StasisEnd(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class ChannelDestroyed(AriEvent):
    channel: Channel
    cause: int
    cause_txt: str


@dataclass(frozen=True)
class ChannelHangupRequest(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class ChannelStateChange(AriEvent):
    channel: Channel


@dataclass(frozen=True)
class ChannelDtmfReceived(AriEvent):
    channel: Channel
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class PlaybackFinished(AriEvent):
    playback_id: str
    target_uri: str


@dataclass(frozen=True)
class OtherEvent(AriEvent):
    """Any event type we don't act on; kept so logs and metrics can count it."""


def _channel(data: dict[str, Any]) -> Channel:
    if "channel" not in data:
        raise AriEventError(f"{data.get('type')} event without 'channel'")
    return Channel.from_json(data["channel"])


def parse_event(data: Any) -> AriEvent:
    if not isinstance(data, dict):
        raise AriEventError("event is not a JSON object")
    etype = data.get("type")
    if not isinstance(etype, str) or not etype:
        raise AriEventError("event without 'type'")
    app = str(data.get("application", ""))
    if etype == "StasisStart":
        args = data.get("args", [])
        if not isinstance(args, list):
            raise AriEventError("StasisStart 'args' is not a list")
        return StasisStart(etype, app, data, _channel(data), tuple(str(a) for a in args))
    if etype == "StasisEnd":
        return StasisEnd(etype, app, data, _channel(data))
    if etype == "ChannelDestroyed":
        cause = data.get("cause", 0)
        return ChannelDestroyed(etype, app, data, _channel(data), cause if isinstance(cause, int) else 0,
                                str(data.get("cause_txt", "")))
    if etype == "ChannelHangupRequest":
        return ChannelHangupRequest(etype, app, data, _channel(data))
    if etype == "ChannelStateChange":
        return ChannelStateChange(etype, app, data, _channel(data))
    if etype == "ChannelDtmfReceived":
        digit = data.get("digit")
        if not isinstance(digit, str) or len(digit) != 1:
            raise AriEventError("ChannelDtmfReceived without a one-character 'digit'")
        dur = data.get("duration_ms", 0)
        return ChannelDtmfReceived(etype, app, data, _channel(data), digit, dur if isinstance(dur, int) else 0)
    if etype == "PlaybackFinished":
        pb = data.get("playback")
        if not isinstance(pb, dict) or not isinstance(pb.get("id"), str):
            raise AriEventError("PlaybackFinished without 'playback.id'")
        return PlaybackFinished(etype, app, data, pb["id"], str(pb.get("target_uri", "")))
    return OtherEvent(etype, app, data)


def channel_of(event: AriEvent) -> str | None:
    """The id of the channel an event is about, if any."""
    ch = getattr(event, "channel", None)
    return ch.id if isinstance(ch, Channel) else None
