"""G.711 µ-law / A-law against reference values computed here from the standard's formulas."""

from __future__ import annotations

import numpy as np
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_CODES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


# --- independent references (ITU-T G.711 tables 1a/2a, scaled to 16-bit) -------------------------
# µ-law works on a 14-bit magnitude: segment s (0..7), step q (0..15) reconstructs to
#   ((2q + 33) * 2**s) - 33           e.g. s=0: 0, 2, ..., 30;  s=7: 8031 max
# the transmitted octet is the bitwise complement of  sign(1=neg) | s | q,  so bit 7 set = positive.
# A-law works on a 13-bit magnitude: s=0 reconstructs to 2q + 1, s>=1 to (2q + 33) * 2**(s-1);
# the transmitted octet has its even bits inverted (XOR 0x55) and bit 7 set = positive.


def ref_ulaw_decode(octet: int) -> int:
    c = ~octet & 0xFF
    negative, s, q = c >> 7, (c >> 4) & 7, c & 15
    magnitude14 = (2 * q + 33) * (1 << s) - 33
    return int(-4 * magnitude14 if negative else 4 * magnitude14)


def ref_alaw_decode(octet: int) -> int:
    c = octet ^ 0x55
    positive, s, q = c >> 7, (c >> 4) & 7, c & 15
    magnitude13 = 2 * q + 1 if s == 0 else (2 * q + 33) * (1 << (s - 1))
    return int(8 * magnitude13 if positive else -8 * magnitude13)


def ref_ulaw_encode(x: int) -> int:
    """Decision intervals of G.711 table 2a: in segment s the q-th interval starts at
    (32 + 2q) * 2**s - 33 (for s=0, q=0 it is [0, 1)); 16-bit input is truncated to 14 bits."""
    negative = x < 0
    m = min(abs(x) >> 2, 8158)
    for s in range(7, -1, -1):
        if m + 33 >= 32 * (1 << s):
            q = (m + 33 - 32 * (1 << s)) // (2 * (1 << s))
            break
    code = (s << 4) | q
    if negative and m > 0:
        code |= 0x80
    return ~code & 0xFF


def ref_alaw_encode(x: int) -> int:
    """Table 1a: 13-bit magnitude (ones' complement for negatives), segment 0/1 step 2, then doubling."""
    v = x >> 3
    negative = v < 0
    m = -v - 1 if negative else v
    m = min(m, 4095)
    if m < 32:  # segment 0: 16 steps of 2
        s, q = 0, m // 2
    else:  # segment s >= 1 spans [16 * 2**s, 32 * 2**s) in 16 steps of 2**s
        s = next(seg for seg in range(1, 8) if m < 32 * (1 << seg))
        q = (m - 16 * (1 << s)) // (1 << s)
    code = (s << 4) | q | (0 if negative else 0x80)
    return code ^ 0x55


# --- tests --------------------------------------------------------------------------------------


def test_known_values() -> None:
    u = ulaw_decode(bytes([0x00, 0x80, 0xFF, 0x7F, 0x7E, 0xFE, 0x0F, 0x8F]))
    assert u.tolist() == [-32124, 32124, 0, 0, -8, 8, -16764, 16764]
    a = alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A, 0xD4, 0x54]))
    assert a.tolist() == [8, -8, 32256, -32256, 24, -24]
    assert ulaw_encode(np.array([0, 32767, -32768, 8, -8], dtype=np.int16)) == bytes(
        [0xFF, 0x80, 0x00, 0xFE, 0x7E]
    )
    assert alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes([0xD5, 0x55, 0xAA, 0x2A])


def test_decode_tables_match_the_standard() -> None:
    assert ulaw_decode(ALL_CODES).tolist() == [ref_ulaw_decode(c) for c in range(256)]
    assert alaw_decode(ALL_CODES).tolist() == [ref_alaw_decode(c) for c in range(256)]


def test_encode_tables_match_the_standard_for_every_int16() -> None:
    ulaw = np.frombuffer(ulaw_encode(ALL_INT16), dtype=np.uint8)
    alaw = np.frombuffer(alaw_encode(ALL_INT16), dtype=np.uint8)
    xs = ALL_INT16.tolist()
    assert ulaw.tolist() == [ref_ulaw_encode(x) for x in xs]
    assert alaw.tolist() == [ref_alaw_encode(x) for x in xs]


def test_ulaw_codes_round_trip_except_negative_zero() -> None:
    back = ulaw_encode(ulaw_decode(ALL_CODES))
    expected = bytearray(ALL_CODES)
    expected[0x7F] = 0xFF  # -0 and +0 both decode to 0; the encoder writes +0
    assert back == bytes(expected)
    assert 0x7F not in ulaw_encode(ALL_INT16)  # the encoder never emits -0


def test_alaw_codes_all_round_trip() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize(("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_quantisation_is_monotonic_and_bounded(encode, decode) -> None:  # type: ignore[no-untyped-def]
    y = decode(encode(ALL_INT16)).astype(np.int32)
    x = ALL_INT16.astype(np.int32)
    assert np.all(np.diff(y) >= 0)
    inside = np.abs(x) <= 32000
    # error within one step of the coarsest segment (1024) overall, ~3 % relative above 256
    assert np.max(np.abs(y - x)[inside]) <= 1024
    big = inside & (np.abs(x) > 256)
    assert np.max(np.abs(y - x)[big] / np.abs(x)[big]) < 0.07


def test_lengths_and_types() -> None:
    pcm = np.arange(-800, 800, 10, dtype=np.int16)
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        data = enc(pcm)
        assert isinstance(data, bytes) and len(data) == pcm.size
        out = dec(data)
        assert out.dtype == np.int16 and out.size == pcm.size
        out[0] = 1  # a fresh, writable array, not a view of the table
        assert dec(bytearray(data)).tolist() == dec(memoryview(data)).tolist()
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert ulaw_decode(b"").size == 0


@pytest.mark.parametrize("encode", [ulaw_encode, alaw_encode])
def test_encode_rejects_bad_arrays(encode) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MediaError, match="int16"):
        encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(MediaError, match="dimensions"):
        encode(np.zeros((2, 2), dtype=np.int16))


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(MediaError):
        ulaw_decode("abc")  # type: ignore[arg-type]
