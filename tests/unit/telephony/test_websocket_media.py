"""chan_websocket framing and parsing (pure), and the endpoint's handling of bad input (no sockets)."""

from __future__ import annotations

import numpy as np
import pytest

from ari_agent.media.jitter import AudioFrame
from ari_agent.telephony.websocket_media import MAX_MALFORMED, ArrivalTimeline, WebSocketMediaEndpoint
from ari_agent.telephony.websocket_protocol import (
    MAX_BINARY_CHUNK,
    WebSocketProtocolError,
    check_media_start,
    chunks,
    command,
    parse_control,
)

PLAIN_START = ("MEDIA_START connection_id:e943 channel:WebSocket/INCOMING/0x7fe4 channel_id:c84-m "
               "format:slin16 optimal_frame_size:640 ptime:20")


def test_plain_media_start_as_asterisk_22_sends_it() -> None:
    ev = parse_control(PLAIN_START)
    assert ev.name == "MEDIA_START" and ev.fields["channel_id"] == "c84-m" and ev.fields["format"] == "slin16"
    assert check_media_start(ev) == 640


def test_json_media_start_and_marks() -> None:
    ev = parse_control('{"event": "MEDIA_START", "format": "slin16", "optimal_frame_size": 640, '
                       '"channel_variables": {"A": "1"}}')
    assert check_media_start(ev) == 640
    assert parse_control('{"event": "MEDIA_MARK_PROCESSED", "correlation_id": "e3"}').argument == "e3"
    assert parse_control("MEDIA_MARK_PROCESSED s12").argument == "s12"
    assert parse_control("QUEUE_DRAINED").name == "QUEUE_DRAINED"
    status = parse_control("STATUS channel_id:c queue_length:200 xon_level:800 xoff_level:900 queue_full:false")
    assert status.int_field("queue_length") == 200


@pytest.mark.parametrize("text", ["", "   ", "hello world", "NOT_AN_EVENT x", "{", '{"event": 3}', "[1]",
                                  "MEDIA_START" + " x" * 3000, "media_start format:slin16"])
def test_malformed_control_is_refused(text: str) -> None:
    with pytest.raises(WebSocketProtocolError):
        parse_control(text)


@pytest.mark.parametrize("start", ["MEDIA_START format:ulaw optimal_frame_size:160", "MEDIA_START format:slin16",
                                   "MEDIA_START format:slin16 optimal_frame_size:641", "MEDIA_XON"])
def test_wrong_media_start_is_refused(start: str) -> None:
    with pytest.raises(WebSocketProtocolError):
        check_media_start(parse_control(start))


def test_commands_and_chunks() -> None:
    assert command("FLUSH_MEDIA") == "FLUSH_MEDIA" and command("MARK_MEDIA", "s1") == "MARK_MEDIA s1"
    with pytest.raises(WebSocketProtocolError):
        command("MARK_MEDIA", "two words")
    data = bytes(range(256)) * 100
    parts = chunks(data)
    assert b"".join(parts) == data and all(len(p) <= MAX_BINARY_CHUNK and len(p) % 2 == 0 for p in parts[:-1])


def test_arrival_timeline_fills_only_long_gaps() -> None:
    t = ArrivalTimeline(slack_frames=15)
    assert [t.gap_before(i * 0.02) for i in range(10)] == [0] * 10
    assert t.gap_before(9 * 0.02 + 0.2) == 0  # 200 ms late: delayed, not missing
    assert t.gap_before(1.2) == 49  # frame 11 arrives at 1.2 s, due as frame 60: 49 frames of silence before it


def test_endpoint_frames_audio_and_survives_garbage() -> None:
    frames: list[AudioFrame] = []
    ep = WebSocketMediaEndpoint(frames.append)
    tone = (3000 * np.sin(np.arange(320 * 50) * 0.05)).astype("<i2").tobytes()
    for i in range(50):
        ep.handle_binary(tone[i * 640:(i + 1) * 640], i * 0.02)
    assert len(frames) >= 45 and all(f.pcm.size == 160 for f in frames)
    ep.handle_binary(b"\x01\x02\x03", 1.0)  # odd length
    ep.handle_binary(b"", 1.0)
    ep.handle_text("GARBAGE here")
    ep.handle_text("{not json")
    assert ep.stats.malformed == 4 and ep.failure is None
    for _ in range(MAX_MALFORMED):
        ep.handle_text("NOPE")
    assert ep.failure is not None and "malformed" in ep.failure
