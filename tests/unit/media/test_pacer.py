"""Outbound stream framing/numbering and the pacing clock."""

from __future__ import annotations

import numpy as np
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.pacer import OutboundStream, PacingClock
from ari_agent.media.pcm import Codec
from ari_agent.media.rtp import RtpPacket, seq_diff, ts_diff


def drain(stream: OutboundStream) -> list[RtpPacket]:
    out = []
    while (data := stream.next_packet()) is not None:
        out.append(RtpPacket.parse(data))
    return out


def ramp(n: int) -> np.ndarray:
    return (np.arange(n) % 2000 - 1000).astype(np.int16)


def test_frames_numbering_and_marker() -> None:
    s = OutboundStream(Codec.ULAW, ssrc=42, initial_seq=65534, initial_ts=2**32 - 320)
    s.enqueue(ramp(800))  # exactly 5 frames
    assert s.queued_frames == 5 and s.queued_ms == 100.0 and not s.is_idle
    pkts = drain(s)
    assert [p.sequence_number for p in pkts] == [65534, 65535, 0, 1, 2]
    assert [p.timestamp for p in pkts] == [2**32 - 320, 2**32 - 160, 0, 160, 320]
    assert [p.marker for p in pkts] == [True, False, False, False, False]
    assert all(p.ssrc == 42 and p.payload_type == 0 and len(p.payload) == 160 for p in pkts)
    assert b"".join(p.payload for p in pkts) == Codec.ULAW.encode(ramp(800))
    assert s.is_idle and s.packets_sent == 5 and s.octets_sent == 800


def test_odd_lengths_are_buffered_and_padded_on_finish() -> None:
    s = OutboundStream(Codec.SLIN, ssrc=1, initial_seq=0, initial_ts=0)
    audio = ramp(1000)
    for chunk in np.array_split(audio, 7):  # chunk sizes that do not divide 160
        s.enqueue(chunk)
    assert s.queued_frames == 6 and s.queued_ms == 125.0  # 960 samples framed, 40 waiting
    s.enqueue(np.zeros(0, dtype=np.int16), end_of_utterance=True)
    pkts = drain(s)
    assert len(pkts) == 7 and all(len(p.payload) == 320 for p in pkts)
    pcm = np.concatenate([Codec.SLIN.decode(p.payload) for p in pkts])
    assert pcm[:1000].tolist() == audio.tolist() and not pcm[1000:].any()
    s.finish()  # nothing partial: no-op
    assert s.is_idle


def test_marker_after_idle_and_timestamps_follow_the_clock() -> None:
    s = OutboundStream(Codec.ULAW, ssrc=1, initial_seq=100, initial_ts=1000)
    s.enqueue(ramp(320))
    a = drain(s)  # 2 packets, then one idle tick (the None that ended drain)
    assert s.next_packet() is None  # a second idle tick
    s.enqueue(ramp(320))
    b = drain(s)
    assert [p.marker for p in a + b] == [True, False, True, False]
    assert [p.sequence_number for p in a + b] == [100, 101, 102, 103]  # no gap in sequence
    assert ts_diff(b[0].timestamp, a[-1].timestamp) == 160 * 3  # two idle ticks in between


def test_flush_drops_immediately_and_starts_a_new_spurt() -> None:
    s = OutboundStream(Codec.ALAW, ssrc=7, initial_seq=10, initial_ts=0)
    s.enqueue(ramp(160 * 50 + 30))
    first = RtpPacket.parse(s.next_packet() or b"")
    second = RtpPacket.parse(s.next_packet() or b"")
    assert first.marker and not second.marker and first.payload_type == 8
    assert s.flush() == 49  # 48 whole frames + the partial one
    assert s.is_idle and s.queued_ms == 0.0
    s.enqueue(ramp(160))
    third = RtpPacket.parse(s.next_packet() or b"")
    assert third.marker
    assert seq_diff(third.sequence_number, second.sequence_number) == 1
    assert ts_diff(third.timestamp, second.timestamp) == 160
    assert s.flush() == 0


def test_skip_moves_timestamp_and_marks() -> None:
    s = OutboundStream(Codec.ULAW, ssrc=1, initial_seq=0, initial_ts=0)
    s.enqueue(ramp(480))
    p0 = RtpPacket.parse(s.next_packet() or b"")
    s.skip(10)
    p1 = RtpPacket.parse(s.next_packet() or b"")
    assert (p1.sequence_number, p1.timestamp, p1.marker) == (1, 160 * 11, True)
    assert p0.marker
    with pytest.raises(MediaError):
        s.skip(-1)


def test_random_initial_values_and_validation() -> None:
    streams = [OutboundStream(Codec.ULAW) for _ in range(5)]
    seen = {(st.ssrc, st.sequence_number, st.timestamp) for st in streams}
    assert len(seen) > 1
    s = OutboundStream(Codec.SLIN)
    assert 0 <= s.ssrc < 2**32 and s.payload_type == 10
    assert OutboundStream(Codec.SLIN, payload_type=11).payload_type == 11
    for kwargs in ({"initial_seq": 65536}, {"initial_ts": -1}, {"ssrc": 2**32}, {"payload_type": 128}):
        with pytest.raises(MediaError):
            OutboundStream(Codec.ULAW, **kwargs)
    with pytest.raises(MediaError):
        s.enqueue(np.zeros(10, dtype=np.float32))


# --- PacingClock --------------------------------------------------------------------------------


def test_clock_has_no_drift_over_10000_periods() -> None:
    start = 12345.678
    clock = PacingClock(0.020, start=start)
    naive = start
    for _ in range(10_000):
        clock.advance()
        naive += 0.020
    assert clock.ticks == 10_000
    assert clock.next_deadline() == pytest.approx(start + 200.0, abs=1e-9)
    assert abs(clock.next_deadline() - (start + 10_000 * 0.020)) < 1e-9
    # (summing 0.020 ten thousand times is what drifts; the clock never does that)
    assert abs(naive - (start + 200.0)) > abs(clock.next_deadline() - (start + 200.0))


def test_clock_tracks_a_sender_that_wakes_slightly_late() -> None:
    clock = PacingClock(start=100.0)
    for _ in range(1000):
        now = clock.next_deadline() + 0.003  # every wake-up 3 ms late
        assert clock.late_by(now) == pytest.approx(0.003)
        assert clock.advance(now) == 0
    assert clock.next_deadline() == pytest.approx(100.0 + 1000 * 0.020)
    assert clock.resyncs == 0


def test_clock_resyncs_after_a_stall_instead_of_bursting() -> None:
    clock = PacingClock(0.020, start=0.0, max_behind_periods=5)
    for _ in range(10):
        clock.advance(clock.next_deadline())
    assert clock.ticks == 10
    # a small lag (3 periods) is caught up normally: a short burst
    assert clock.advance(clock.next_deadline() + 0.060) == 0
    # the loop stalls for a second: the tick it just sent is 50 periods late; the next 49 are
    # skipped and the 50th, due right now, is the only one sent at once
    now = clock.next_deadline() + 1.0
    skipped = clock.advance(now)
    assert skipped == 49
    assert clock.resyncs == 1 and clock.skipped_total == 49
    assert 0.0 <= clock.late_by(now) < 0.020  # at most one tick is due now, not fifty
    assert clock.next_deadline() == pytest.approx(clock.ticks * 0.020)  # still on the original grid


def test_clock_validation() -> None:
    with pytest.raises(MediaError):
        PacingClock(0.0, start=0.0)
    with pytest.raises(MediaError):
        PacingClock(0.02, start=float("inf"))
    with pytest.raises(MediaError):
        PacingClock(0.02, start=0.0, max_behind_periods=-1)
