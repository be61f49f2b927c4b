"""Receive jitter buffer: reorder, loss, duplicates, late packets, wrap, gap fill, resync."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.jitter import CONCEALMENT_GAINS, AudioFrame, JitterBuffer
from ari_agent.media.pcm import Codec
from ari_agent.media.rtp import RtpPacket, seq_add, ts_add

SSRC = 0x1234


def pcm_for(seq: int) -> np.ndarray:
    """A distinct, exactly representable slin frame per sequence number."""
    return np.full(160, (seq % 1000) * 10 + 1000, dtype=np.int16)


def pkt(
    seq: int, ts: int | None = None, ssrc: int = SSRC, pt: int = 10, payload: bytes | None = None
) -> RtpPacket:
    seq &= 0xFFFF
    ts = (seq * 160) & 0xFFFFFFFF if ts is None else ts
    data = Codec.SLIN.encode(pcm_for(seq)) if payload is None else payload
    return RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=data)


def push_all(jb: JitterBuffer, packets: list[RtpPacket]) -> list[AudioFrame]:
    out: list[AudioFrame] = []
    for p in packets:
        out.extend(jb.push(p))
    return out


def seqs(frames: list[AudioFrame]) -> list[int]:
    return [f.seq for f in frames]


def assert_timeline(frames: list[AudioFrame]) -> None:
    for a, b in itertools.pairwise(frames):
        assert b.timestamp == ts_add(a.timestamp, 160), (a, b)


def test_in_order_packets_are_released_immediately() -> None:
    jb = JitterBuffer(Codec.SLIN)
    for s in range(10):
        frames = jb.push(pkt(s))
        assert seqs(frames) == [s]
        assert frames[0].pcm.tolist() == pcm_for(s).tolist() and not frames[0].concealed
    assert jb.stats.received == jb.stats.released == 10
    assert jb.pending_count == 0


def test_reorder_within_depth() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    frames = push_all(jb, [pkt(s) for s in (0, 2, 3, 1, 4, 6, 5)])
    assert seqs(frames) == [0, 1, 2, 3, 4, 5, 6]
    assert not any(f.concealed for f in frames)
    assert jb.stats.reordered == 2 and jb.stats.lost == 0
    assert_timeline(frames)


def test_hole_released_only_when_filled() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    assert seqs(jb.push(pkt(0))) == [0]
    assert jb.push(pkt(2)) == []
    assert jb.push(pkt(3)) == []
    assert seqs(jb.push(pkt(1))) == [1, 2, 3]


def test_loss_declared_after_depth_newer_packets_and_concealed() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    frames = push_all(jb, [pkt(0), pkt(1), pkt(3), pkt(4)])
    assert seqs(frames) == [0, 1]
    frames = jb.push(pkt(5))  # third newer packet: seq 2 is lost
    assert seqs(frames) == [2, 3, 4, 5]
    lost = frames[0]
    assert lost.concealed and lost.timestamp == 2 * 160
    expected = np.rint(pcm_for(1).astype(np.float32) * CONCEALMENT_GAINS[0]).astype(np.int16)
    assert lost.pcm.tolist() == expected.tolist()  # last frame repeated at -6 dB
    assert jb.stats.lost == 1 and jb.stats.concealed == 1
    # the lost packet turning up afterwards is late, not a duplicate
    assert jb.push(pkt(2)) == []
    assert jb.stats.late == 1 and jb.stats.duplicates == 0


def test_concealment_fades_to_silence() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=2)
    frames = push_all(jb, [pkt(0), pkt(5), pkt(6)])
    assert seqs(frames) == [0, 1, 2, 3, 4, 5, 6]
    assert [f.concealed for f in frames] == [False, True, True, True, True, False, False]
    level = [int(np.abs(f.pcm).max()) for f in frames[1:5]]
    assert level == [500, 250, 0, 0]  # 1000 * 0.5, * 0.25, then silence
    assert jb.stats.lost == 4 and jb.stats.concealed == 4
    assert_timeline(frames)
    # after a real frame the fade restarts
    frames = push_all(jb, [pkt(8), pkt(9), pkt(10)])
    assert frames[0].seq == 7 and int(np.abs(frames[0].pcm).max()) == int(pcm_for(6)[0]) // 2


def test_duplicates_dropped() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    frames = push_all(jb, [pkt(0), pkt(1), pkt(1), pkt(3), pkt(3), pkt(0), pkt(2)])
    assert seqs(frames) == [0, 1, 2, 3]
    assert jb.stats.duplicates == 3 and jb.stats.late == 0
    assert jb.stats.received == 7 and jb.stats.released == 4


def test_late_packet_dropped() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=1)
    frames = push_all(jb, [pkt(10), pkt(12), pkt(11)])
    assert seqs(frames) == [10, 11, 12]
    assert frames[1].concealed
    assert jb.stats.late == 1
    assert push_all(jb, [pkt(5)]) == []  # older than the first packet ever
    assert jb.stats.late == 2


def test_sequence_wrap() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    order = [65533, 65534, 0, 65535, 1, 3, 4, 5]  # 65535 reordered across the wrap, 2 lost
    base_ts = 2**32 - 3 * 160  # timestamps wrap too
    by_seq = {seq_add(65533, i): ts_add(base_ts, 160 * i) for i in range(9)}
    frames = push_all(jb, [pkt(s, ts=by_seq[s]) for s in order])
    assert seqs(frames) == [65533, 65534, 65535, 0, 1, 2, 3, 4, 5]
    assert [f.concealed for f in frames] == [False] * 5 + [True] + [False] * 3
    assert frames[3].timestamp == 0 + 0 * 160 and frames[2].timestamp == 2**32 - 160
    assert_timeline(frames)
    assert jb.stats.lost == 1 and jb.stats.reordered == 1


def test_silence_gap_filled_from_timestamp_jump() -> None:
    jb = JitterBuffer(Codec.SLIN)
    frames = push_all(jb, [pkt(100, ts=16000), pkt(101, ts=16160), pkt(102, ts=16160 + 160 * 26)])
    # 101 then 25 missing frames of timestamp (Asterisk sent nothing), then 102
    assert len(frames) == 2 + 25 + 1
    fill = frames[2:-1]
    assert all(f.gap_fill and not f.concealed and not f.pcm.any() for f in fill)
    assert all(f.seq == 102 for f in fill)
    assert frames[-1].seq == 102 and not frames[-1].gap_fill
    assert_timeline(frames)
    assert jb.stats.gap_filled == 25 and jb.stats.lost == 0 and jb.stats.concealed == 0


def test_gap_fill_rounds_to_frames_and_is_capped() -> None:
    jb = JitterBuffer(Codec.SLIN, max_gap_fill_frames=50)
    frames = push_all(jb, [pkt(1, ts=0), pkt(2, ts=160 + 3 * 160 + 70)])  # 3.4 frames -> 3
    assert sum(f.gap_fill for f in frames) == 3
    frames = jb.push(pkt(3, ts=ts_add(frames[-1].timestamp, 160 + 160 * 500)))  # 10 s of silence
    assert sum(f.gap_fill for f in frames) == 50
    assert frames[-1].timestamp == ts_add(frames[0].timestamp, 160 * 500)
    # a small backwards timestamp step fills nothing
    assert seqs(jb.push(pkt(4, ts=ts_add(frames[-1].timestamp, 100)))) == [4]


def test_gap_fill_combines_with_loss() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=1)
    # 11 is lost, and 12 comes after 5 frames of silence
    frames = push_all(jb, [pkt(10, ts=1600), pkt(12, ts=1600 + 160 * 7)])
    assert [(f.seq, f.concealed, f.gap_fill) for f in frames] == (
        [(10, False, False), (11, True, False)] + [(12, False, True)] * 5 + [(12, False, False)]
    )
    assert_timeline(frames)


def test_large_sequence_jump_resyncs() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    push_all(jb, [pkt(10), pkt(11), pkt(13)])  # 13 waits for 12
    assert jb.push(pkt(5000, ts=123456)) == []  # one packet far away: wait for confirmation
    frames = jb.push(pkt(5001, ts=123616))
    # waiting packet released (its hole concealed), then the new stream starts without gap fill
    assert seqs(frames) == [12, 13, 5000, 5001]
    assert frames[0].concealed and not any(f.gap_fill for f in frames)
    assert jb.stats.resyncs == 1 and jb.stats.late == 0
    assert seqs(push_all(jb, [pkt(5002, ts=123776)])) == [5002]
    # a jump backwards beyond the threshold is a restart too, not 'late'; reordered at the jump
    assert jb.push(pkt(101, ts=1160)) == []
    assert seqs(jb.push(pkt(100, ts=999))) == [100, 101]
    assert jb.stats.resyncs == 2 and jb.stats.late == 0


def test_lone_stray_packet_does_not_resync() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    push_all(jb, [pkt(s) for s in range(1500, 1510)])
    assert jb.push(pkt(3)) == []  # a very stale duplicate (or garbage) from far away
    assert seqs(jb.push(pkt(1510))) == [1510]  # the stream goes on: the stray is dropped
    assert jb.stats.resyncs == 0 and jb.stats.late == 1
    assert jb.push(pkt(40000)) == [] and jb.push(pkt(7)) == []  # two strays, far from each other
    assert jb.stats.late == 2 and jb.stats.resyncs == 0
    assert jb.push(pkt(7)) == []  # a copy of the stray confirms nothing
    assert jb.stats.duplicates == 1 and jb.stats.resyncs == 0
    assert seqs(jb.push(pkt(1511))) == [1511]
    assert jb.stats.late == 3


def test_new_ssrc_resyncs() -> None:
    jb = JitterBuffer(Codec.SLIN)
    push_all(jb, [pkt(1), pkt(2)])
    frames = jb.push(pkt(40000, ts=7, ssrc=99))
    assert seqs(frames) == [40000] and jb.ssrc == 99 and jb.stats.resyncs == 1


def test_flush_releases_waiting_packets_and_keeps_the_timeline() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=5)
    push_all(jb, [pkt(0), pkt(2), pkt(4)])
    frames = jb.flush()
    assert [(f.seq, f.concealed) for f in frames] == [(1, True), (2, False), (3, True), (4, False)]
    assert jb.flush() == []
    assert seqs(jb.push(pkt(5))) == [5]
    assert jb.push(pkt(1)) == []  # still knows where it is
    assert jb.stats.late == 1


def test_long_hole_is_capped() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=1, max_gap_fill_frames=10)
    frames = push_all(jb, [pkt(0), pkt(500, ts=500 * 160)])
    assert [f.concealed for f in frames] == [False] + [True] * 10 + [False]
    assert frames[-1].seq == 500 and jb.stats.lost == 499 and jb.stats.concealed == 10
    # after the jump the timeline restarts at the packet: no gap fill for the skipped part
    assert not any(f.gap_fill for f in frames)


def test_foreign_payload_types_keep_their_place() -> None:
    jb = JitterBuffer(Codec.SLIN, depth_frames=1)
    dtmf = pkt(2, pt=101, payload=b"\x01\x0a\x00\xa0")
    frames = push_all(jb, [pkt(1), dtmf, pkt(3)])
    # no loss; the 20 ms the event stood in for became silence, so the timeline holds
    assert [(f.seq, f.gap_fill) for f in frames] == [(1, False), (3, True), (3, False)]
    assert_timeline(frames)
    assert jb.stats.lost == 0 and jb.stats.ignored == 1 and jb.stats.concealed == 0


def test_ulaw_payloads_decoded() -> None:
    jb = JitterBuffer(Codec.ULAW)
    payload = Codec.ULAW.encode(np.full(160, 1000, dtype=np.int16))
    frames = jb.push(RtpPacket(0, 7, 0, 1, payload))
    assert frames[0].pcm.dtype == np.int16 and frames[0].pcm.size == 160
    assert abs(int(frames[0].pcm[0]) - 1000) < 40


def test_malformed_payload_raises_media_error_without_state_change() -> None:
    jb = JitterBuffer(Codec.SLIN)
    with pytest.raises(MediaError):
        jb.push(pkt(1, payload=b"\x00" * 3))
    assert jb.stats.received == 0
    assert seqs(jb.push(pkt(1))) == [1]


def test_bad_parameters() -> None:
    with pytest.raises(MediaError):
        JitterBuffer(Codec.SLIN, depth_frames=0)
    with pytest.raises(MediaError):
        JitterBuffer(Codec.SLIN, max_gap_fill_frames=-1)


def test_random_network_keeps_a_gap_free_timeline() -> None:
    """Shuffle within a small window, drop and duplicate at random: output stays strictly ordered."""
    rng = np.random.default_rng(5)
    n = 3000
    start = 65000  # crosses the sequence wrap
    packets = [pkt(start + i, ts=ts_add(2**32 - 100_000, 160 * i)) for i in range(n)]
    kept = [p for p in packets if rng.random() > 0.03]
    dup_idx = rng.integers(0, len(kept), 60)
    keys = np.concatenate([np.arange(len(kept)), dup_idx + rng.uniform(0, 8, dup_idx.size)])
    keys += rng.uniform(0, 5.0, keys.size)  # jitter: reorders neighbours, a few beyond the depth
    everything = kept + [kept[i] for i in dup_idx]
    order = [everything[i] for i in np.argsort(keys, kind="stable")]
    jb = JitterBuffer(Codec.SLIN, depth_frames=3)
    frames = push_all(jb, order) + jb.flush()
    assert_timeline(frames)
    assert len(frames) == n - (order[0].sequence_number - start)  # first packet sets the start
    s = jb.stats
    assert s.received == len(order)
    assert s.released + s.concealed == len(frames)
    assert s.released + s.duplicates + s.late == s.received
    assert s.duplicates >= 50 and s.late > 0 and s.reordered > 0 and s.lost == s.concealed > 0
