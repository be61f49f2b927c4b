"""Fuzzing the media layer: the RTP parser and the jitter buffer (what a hostile or broken peer
controls byte for byte)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.errors import MediaError
from ari_agent.media.jitter import AudioFrame, JitterBuffer
from ari_agent.media.pcm import Codec
from ari_agent.media.rtp import RtpPacket, seq_diff, ts_diff

from .fuzzing import FUZZ

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)


@st.composite
def packets(draw: st.DrawFn) -> RtpPacket:
    """A well-formed packet with every optional part (CSRCs, extension, padding) drawn."""
    ext = draw(st.booleans())
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)), sequence_number=draw(u16), timestamp=draw(u32), ssrc=draw(u32),
        payload=draw(st.binary(max_size=400)), marker=draw(st.booleans()),
        csrc=tuple(draw(st.lists(u32, max_size=15))),
        extension_profile=draw(u16) if ext else None,
        extension_data=draw(st.binary(max_size=64).map(lambda b: b[: len(b) // 4 * 4])) if ext else b"",
        padding_size=draw(st.integers(0, 255)),
    )


@FUZZ
@given(st.binary(max_size=600))
def test_rtp_parse_raises_only_media_error(fuzz_cases: Callable[[], None], data: bytes) -> None:
    fuzz_cases()
    try:
        pkt = RtpPacket.parse(data)
    except MediaError:
        return
    # whatever parses serializes back to a packet that parses to the same fields
    assert RtpPacket.parse(pkt.serialize()) == pkt


@FUZZ
@given(packets(), st.binary(max_size=8), st.integers(0, 600))
def test_rtp_round_trip_and_mangled_packets(fuzz_cases: Callable[[], None], pkt: RtpPacket, noise: bytes,
                                            cut: int) -> None:
    """A valid packet survives the round trip; the same packet cut short or with bytes appended is
    either parsed or refused with MediaError, never anything else."""
    fuzz_cases()
    wire = pkt.serialize()
    assert RtpPacket.parse(wire) == pkt
    for mangled in (wire[:cut], wire + noise, noise + wire[len(noise):]):
        try:
            RtpPacket.parse(mangled)
        except MediaError:
            pass


def _check_frames(frames: list[AudioFrame], codec: Codec) -> None:
    for f in frames:
        assert f.pcm.dtype.name == "int16" and f.pcm.size > 0
        assert 0 <= f.seq <= 0xFFFF and 0 <= f.timestamp <= 0xFFFF_FFFF


@st.composite
def one_stream(draw: st.DrawFn) -> tuple[Codec, list[RtpPacket]]:
    """One SSRC's packets as a network mangles them: reordered, lost, duplicated, late, with
    silence gaps (timestamp jumps forward) and a sequence-number wrap, never a resync-sized jump."""
    codec = draw(st.sampled_from(list(Codec)))
    start_seq = draw(u16)
    start_ts = draw(u32)
    n = draw(st.integers(1, 64))
    order = list(range(n))
    # local reordering: swap neighbours within a small window
    for _ in range(draw(st.integers(0, n // 2))):
        i = draw(st.integers(0, n - 1))
        j = min(n - 1, i + draw(st.integers(0, 5)))
        order[i], order[j] = order[j], order[i]
    out: list[RtpPacket] = []
    # silence gaps: the sender's timestamp jumps forward (whole frames) before some packets
    jumps = draw(st.lists(st.sampled_from([0, 0, 0, 0, 160, 800, 8000]), min_size=n, max_size=n))
    offsets = [sum(jumps[: k + 1]) for k in range(n)]
    kinds = draw(st.lists(st.sampled_from(["ok", "ok", "ok", "lost", "dup", "other_pt", "empty"]), min_size=n,
                          max_size=n))
    for k in order:
        gap = offsets[k]
        if kinds[k] == "lost":
            continue
        payload = bytes(codec.bytes_per_20ms) if kinds[k] != "empty" else b""
        pt = 13 if kinds[k] == "other_pt" else codec.payload_type
        p = RtpPacket(payload_type=pt, sequence_number=(start_seq + k) & 0xFFFF,
                      timestamp=(start_ts + k * 160 + gap) & 0xFFFF_FFFF, ssrc=0xABCD, payload=payload)
        out.append(p)
        if kinds[k] == "dup":
            out.append(p)
    return codec, out


@FUZZ
@given(one_stream(), st.integers(1, 8))
def test_jitter_buffer_keeps_one_stream_in_order(fuzz_cases: Callable[[], None], stream: tuple[Codec, list[RtpPacket]],
                                                 depth: int) -> None:
    """Whatever the network did to one stream, the frames come out in timeline order: timestamps
    strictly increase, sequence numbers never go back."""
    fuzz_cases()
    codec, pkts = stream
    jb = JitterBuffer(codec, depth_frames=depth)
    frames: list[AudioFrame] = []
    for p in pkts:
        frames.extend(jb.push(p))
    frames.extend(jb.flush())
    _check_frames(frames, codec)
    for a, b in itertools.pairwise(frames):
        assert ts_diff(b.timestamp, a.timestamp) > 0, (a, b)
        assert seq_diff(b.seq, a.seq) >= 0, (a, b)
    assert jb.stats.received == len(pkts)
    assert jb.pending_count == 0


@st.composite
def hostile_packets(draw: st.DrawFn) -> RtpPacket:
    """Anything a peer can send: any SSRC, sequence number, timestamp, payload type and length."""
    return RtpPacket(payload_type=draw(st.sampled_from([0, 8, 10, 13, 101, draw(st.integers(0, 127))])),
                     sequence_number=draw(st.one_of(u16, st.integers(0, 40))),
                     timestamp=draw(st.one_of(u32, st.integers(0, 8000))),
                     ssrc=draw(st.sampled_from([1, 2, draw(u32)])),
                     payload=draw(st.one_of(st.binary(max_size=700), st.just(bytes(160)), st.just(bytes(320)))))


@FUZZ
@given(st.sampled_from(list(Codec)), st.integers(1, 10), st.integers(0, 60), st.lists(hostile_packets(), max_size=40))
def test_jitter_buffer_survives_any_packets(fuzz_cases: Callable[[], None], codec: Codec, depth: int, max_gap: int,
                                            pkts: list[RtpPacket]) -> None:
    """Arbitrary packets (SSRC changes, wild jumps, malformed payloads) raise nothing but MediaError
    (a payload the codec cannot decode, refused before any state changes) and every frame is whole."""
    fuzz_cases()
    jb = JitterBuffer(codec, depth_frames=depth, max_gap_fill_frames=max_gap)
    frames: list[AudioFrame] = []
    for p in pkts:
        before = (jb.stats.received, jb.pending_count)
        try:
            frames.extend(jb.push(p))
        except MediaError:
            assert (jb.stats.received, jb.pending_count) == before
    frames.extend(jb.flush())
    _check_frames(frames, codec)
    assert jb.pending_count <= 1  # at most a lone packet after a jump, waiting for confirmation
