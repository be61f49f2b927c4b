"""RTP packet parse/serialize (RFC 3550) and serial-number arithmetic."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ari_agent.errors import MediaError
from ari_agent.media.rtp import RtpPacket, seq_add, seq_diff, seq_lt, ts_add, ts_diff, ts_lt


def test_minimal_packet_wire_format() -> None:
    pkt = RtpPacket(
        payload_type=0, sequence_number=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304, payload=b"\xff" * 4
    )
    data = pkt.serialize()
    assert data == bytes([0x80, 0x00, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4]) + b"\xff" * 4
    assert RtpPacket.parse(data) == pkt


def test_round_trip_with_everything() -> None:
    pkt = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=2**32 - 1,
        payload=bytes(range(160)),
        marker=True,
        csrc=(1, 2, 2**32 - 1),
        extension_profile=0xBEDE,
        extension_data=b"\x10\xaa\x00\x00" * 2,
        padding_size=7,
    )
    data = pkt.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3  # V=2, P, X, CC=3
    assert data[1] == 0x80 | 8  # M, PT
    assert len(data) == 12 + 12 + 4 + 8 + 160 + 7
    assert data[-1] == 7
    assert RtpPacket.parse(data) == pkt


@pytest.mark.parametrize("padding", [1, 4, 255])
def test_padding_round_trip(padding: int) -> None:
    pkt = RtpPacket(0, 1, 2, 3, b"abc", padding_size=padding)
    assert RtpPacket.parse(pkt.serialize()) == pkt


def test_empty_extension_and_empty_payload() -> None:
    pkt = RtpPacket(96, 1, 2, 3, b"", extension_profile=0x1000)
    data = pkt.serialize()
    assert len(data) == 16
    assert RtpPacket.parse(data) == pkt


def test_parse_accepts_bytearray_and_memoryview() -> None:
    data = RtpPacket(0, 5, 6, 7, b"xy").serialize()
    assert RtpPacket.parse(bytearray(data)).payload == b"xy"
    assert RtpPacket.parse(memoryview(data)).payload == b"xy"


def test_sequence_and_timestamp_wrap() -> None:
    assert seq_add(65535, 1) == 0
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_lt(65535, 0) and not seq_lt(0, 65535)
    assert seq_diff(5, 5) == 0
    assert seq_diff(100, 10) == 90
    assert ts_add(2**32 - 1, 1) == 0
    assert ts_add(2**32 - 100, 260) == 160
    assert ts_diff(0, 2**32 - 1) == 1
    assert ts_diff(159, 2**32 - 1) == 160
    assert ts_lt(2**32 - 1, 0) and not ts_lt(0, 2**32 - 1)
    # wrapped packets survive the wire
    for seq, ts in ((65535, 2**32 - 1), (0, 0)):
        pkt = RtpPacket(0, seq, ts, 1, b"")
        assert RtpPacket.parse(pkt.serialize()) == pkt


@given(st.integers(0, 65535), st.integers(-30000, 30000))
def test_seq_diff_inverts_seq_add(a: int, n: int) -> None:
    assert seq_diff(seq_add(a, n), a) == n


@given(st.integers(0, 2**32 - 1), st.integers(-(2**31), 2**31 - 1))
def test_ts_diff_inverts_ts_add(a: int, n: int) -> None:
    assert ts_diff(ts_add(a, n), a) == n


def _header(b0: int = 0x80, b1: int = 0) -> bytes:
    return struct.pack("!BBHII", b0, b1, 1, 2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x80\x00\x00", "truncated"),
        (_header()[:11], "truncated"),
        (_header(b0=0x40), "version 1"),
        (_header(b0=0x00), "version 0"),
        (_header(b0=0xC0), "version 3"),
        (_header(b0=0x82) + b"\x00" * 4, "CSRC count 2"),  # CC=2, one CSRC present
        (_header(b0=0x90) + b"\xbe\xde", "extension header"),
        (_header(b0=0x90) + b"\xbe\xde\x00\x02" + b"\x00" * 4, "extension of 2 words"),
        (_header(b0=0xA0), "no room"),  # P set, nothing after header
        (_header(b0=0xA0) + b"abc\x00", "padding count is 0"),
        (_header(b0=0xA0) + b"ab\x04", "exceeds"),
        (_header(b0=0xB0) + b"\x00\x00\x00\x00" + b"\x09", "exceeds"),  # padding eats into extension
    ],
)
def test_malformed_packets_raise_media_error(data: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        RtpPacket.parse(data)


def test_padding_may_take_whole_payload() -> None:
    pkt = RtpPacket.parse(_header(b0=0xA0) + b"\x00\x00\x03")
    assert pkt.payload == b"" and pkt.padding_size == 3


@pytest.mark.parametrize(
    "pkt",
    [
        RtpPacket(128, 0, 0, 0, b""),
        RtpPacket(-1, 0, 0, 0, b""),
        RtpPacket(0, 65536, 0, 0, b""),
        RtpPacket(0, 0, 2**32, 0, b""),
        RtpPacket(0, 0, 0, -1, b""),
        RtpPacket(0, 0, 0, 0, b"", csrc=tuple(range(16))),
        RtpPacket(0, 0, 0, 0, b"", csrc=(2**32,)),
        RtpPacket(0, 0, 0, 0, b"", extension_data=b"abcd"),
        RtpPacket(0, 0, 0, 0, b"", extension_profile=1, extension_data=b"abc"),
        RtpPacket(0, 0, 0, 0, b"", extension_profile=0x10000),
        RtpPacket(0, 0, 0, 0, b"", padding_size=256),
    ],
)
def test_serialize_refuses_out_of_range_fields(pkt: RtpPacket) -> None:
    with pytest.raises(MediaError):
        pkt.serialize()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_parse_random_bytes(data: bytes) -> None:
    try:
        pkt = RtpPacket.parse(data)
    except MediaError:
        return
    # whatever parses serializes back to the very same bytes (padding octets aside)
    again = pkt.serialize()
    assert len(again) == len(data)
    body = len(data) - pkt.padding_size
    assert again[:body] == data[:body]
    assert RtpPacket.parse(again) == pkt


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=12, max_size=60),
    st.integers(0, 15),
    st.booleans(),
    st.booleans(),
)
def test_fuzz_parse_plausible_headers(tail: bytes, cc: int, pad: bool, ext: bool) -> None:
    data = bytes([0x80 | (0x20 if pad else 0) | (0x10 if ext else 0) | cc]) + tail
    try:
        RtpPacket.parse(data)
    except MediaError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    pt=st.integers(0, 127),
    seq=st.integers(0, 65535),
    ts=st.integers(0, 2**32 - 1),
    ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15),
    ext=st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12))),
    padding=st.integers(0, 255),
)
def test_round_trip_property(
    pt: int,
    seq: int,
    ts: int,
    ssrc: int,
    payload: bytes,
    marker: bool,
    csrc: list[int],
    ext: tuple[int, bytes] | None,
    padding: int,
) -> None:
    profile, ext_data = (None, b"") if ext is None else (ext[0], ext[1][: len(ext[1]) // 4 * 4])
    pkt = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrc), profile, ext_data, padding)
    assert RtpPacket.parse(pkt.serialize()) == pkt
