"""chan_websocket framing and parsing (pure), and the endpoint's handling of bad input (no sockets)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiohttp import WSMsgType, web

from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import resample
from ari_agent.telephony.websocket_media import (
    MAX_MALFORMED,
    ArrivalTimeline,
    HalfRateDecimator,
    WebSocketMediaEndpoint,
    WebSocketMediaError,
)
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
    told: list[str | None] = []
    ep.on_failure = lambda: told.append(ep.failure)
    for _ in range(MAX_MALFORMED):
        ep.handle_text("NOPE")
    assert ep.failure is not None and "malformed" in ep.failure
    ep.handle_text("NOPE")
    assert ep.failed.is_set() and len(told) == 1 and "malformed" in str(told[0])


def _tone(hz: float, seconds: float, rate: int = 16000, level: float = 8000.0) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)).astype(np.int16)


def test_every_20_ms_message_gives_its_frame_at_once() -> None:
    """The listener fills 60 ms without a frame with silence: frames must not come in bursts. (With soxr's
    streaming resampler a 20 ms message gave 0, 0, 0, then 3 frames; real frames after such a pause had
    60 ms of silence put before them, mid-word, and the recogniser heard extra words.)"""
    frames: list[AudioFrame] = []
    ep = WebSocketMediaEndpoint(frames.append)
    wire = _tone(440, 2.0).astype("<i2").tobytes()
    counts = []
    for i in range(len(wire) // 640):
        before = len(frames)
        ep.handle_binary(wire[i * 640:(i + 1) * 640], i * 0.02)
        counts.append(len(frames) - before)
    assert counts == [1] * len(counts), counts
    assert ep.stats.gap_filled == 0


def test_decimator_matches_one_shot_resampling_whatever_the_chunking() -> None:
    rng = np.random.default_rng(7)
    speechlike = (rng.standard_normal(16000) * 2000).astype(np.int16)
    pcm16 = resample(resample(speechlike, 16000, 8000), 8000, 16000)  # 8 kHz audio carried at 16 kHz, as Asterisk does
    whole = HalfRateDecimator().process(pcm16)
    d = HalfRateDecimator()
    parts, i = [], 0
    for n in [36, 37, 116, 1, 320, 3, 641] * 30:  # odd and partial messages too
        parts.append(d.process(pcm16[i:i + n]))
        i += n
    parts.append(d.process(pcm16[i:]))
    assert np.array_equal(np.concatenate(parts), whole) and whole.size == pcm16.size // 2
    # Output k is centred on input 2k - D (D, the filter's delay, is odd) = 2(k - (D + 1) / 2) + 1: soxr on
    # the odd samples.
    shift = ((HalfRateDecimator.TAPS.size - 1) // 2 + 1) // 2
    reference = resample(pcm16[1:], 16000, 8000)
    a, b = whole[shift:].astype(float), reference[: whole.size - shift].astype(float)
    assert np.corrcoef(a, b)[0, 1] > 0.99
    # Level kept in the voice band; what would alias into it is attenuated.
    for hz in (300, 1000, 3000):
        out = HalfRateDecimator().process(_tone(hz, 0.5))[200:]
        assert abs(np.sqrt(np.mean(out.astype(float) ** 2)) / (8000 / np.sqrt(2)) - 1) < 0.02, hz
    alias = HalfRateDecimator().process(_tone(5000, 0.5))[200:]
    assert np.abs(alias).max() < 8000 * 10 ** (-50 / 20)
    assert HalfRateDecimator().process(np.zeros(0, dtype=np.int16)).size == 0
    delay = (HalfRateDecimator.TAPS.size - 1) // 2  # the last input samples through the filter's centre
    assert d.flush().size in (delay // 2, delay // 2 + 1)


async def _media_server(close_after_s: float | None) -> tuple[web.AppRunner, str]:
    """A stand-in for chan_websocket on 127.0.0.1: MEDIA_START, 20 ms of audio every 20 ms, then (if asked)
    the connection closed under the agent."""

    async def media(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("media",))
        await ws.prepare(request)
        await ws.send_str(PLAIN_START)
        frame = np.zeros(320, dtype="<i2").tobytes()
        loop = asyncio.get_running_loop()
        end = None if close_after_s is None else loop.time() + close_after_s
        while not ws.closed and (end is None or loop.time() < end):
            await ws.send_bytes(frame)
            try:
                msg = await ws.receive(timeout=0.02)
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
            except TimeoutError:
                pass
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/media/{id}", media)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"ws://127.0.0.1:{port}/media/x"


async def test_connection_closed_mid_call_is_a_failure_at_once() -> None:
    """Asterisk (or the network) drops the media connection while the agent listens: ``failed`` is set
    and ``wait_failed`` returns the reason at once, with no playout to wait on; playout waits raise too."""
    runner, url = await _media_server(close_after_s=0.3)
    frames: list[AudioFrame] = []
    ep = WebSocketMediaEndpoint(frames.append)
    told: list[str | None] = []
    ep.on_failure = lambda: told.append(ep.failure)
    try:
        await ep.connect(url, None)
        error = await asyncio.wait_for(ep.wait_failed(), 5)
        assert told == [ep.failure]  # once, with the reason already set
        assert isinstance(error, WebSocketMediaError) and "closed mid-call" in str(error), error
        assert frames and ep.failure is not None
        with pytest.raises(WebSocketMediaError):
            await ep.drained()
        assert ep.play(np.zeros(160, dtype=np.int16)).cancelled()
    finally:
        await ep.aclose()
        await runner.cleanup()


async def test_closing_the_call_is_not_a_failure() -> None:
    runner, url = await _media_server(close_after_s=None)
    ep = WebSocketMediaEndpoint(lambda frame: None)
    try:
        await ep.connect(url, None)
        await asyncio.sleep(0.1)
        await ep.aclose()
        assert not ep.failed.is_set() and ep.failure is None
    finally:
        await runner.cleanup()


def test_a_talk_spurt_leaves_nothing_in_front_of_the_next() -> None:
    """Asterisk stops sending when the caller goes quiet. What the last spurt left held back (a partial
    frame, the decimator's tail) goes out at its end; the next spurt starts with silence, not with stale
    audio (which the recogniser heard as an extra leading word: "eight four five six seven")."""
    frames: list[AudioFrame] = []
    ep = WebSocketMediaEndpoint(frames.append)
    loud = _tone(300, 1.0)
    wire = loud.astype("<i2").tobytes() + loud[:116].astype("<i2").tobytes()  # ends on a partial message
    t = 0.0
    for i in range(0, len(wire), 640):
        ep.handle_binary(wire[i:i + 640], t)
        t += 0.02
    spurt_end = len(frames)
    ep.handle_binary(np.zeros(320, dtype="<i2").tobytes(), t + 3.0)  # 3 s later: digital silence
    after = frames[spurt_end:]
    assert after[0].pcm.any() and not after[0].gap_fill  # the held-back tail, at the end of the spurt
    assert all(f.gap_fill for f in after[1:-1]) and len(after) - 2 == ep.stats.gap_filled
    assert not after[-1].pcm.any(), "stale audio in front of the new spurt"
    assert sum(f.pcm.size for f in frames) % 160 == 0
