"""G.711 µ-law and A-law (ITU-T G.711) with numpy lookup tables.

Encoding looks up a 65536-entry table indexed by the int16 sample (as uint16); decoding a
256-entry table. The tables are built once at import from the standard's segment/mantissa
rules (the same rules as the classic Sun ``g711.c`` reference), 16-bit linear in and out.

Behaviour worth knowing:

* µ-law has two codes for zero, 0xFF (+0) and 0x7F (-0). Both decode to 0; the encoder
  never produces 0x7F (samples that quantise to magnitude 0 give 0xFF). So decode→encode
  returns every µ-law code unchanged except 0x7F, which comes back as 0xFF.
* A-law has no zero level: 0 encodes to 0xD5 (+8) and -1 to 0x55 (-8). Every A-law code
  round-trips decode→encode unchanged.
* Inputs beyond the largest level saturate (µ-law ±32124, A-law ±32256).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from ari_agent.errors import MediaError

if TYPE_CHECKING:
    from ari_agent.media.pcm import Pcm

_ULAW_SEG_END: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END: Final = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS14: Final = 33  # 0x84 >> 2
_ULAW_CLIP14: Final = 8159


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the encode-table index)."""
    return np.arange(0, 1 << 16, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    negative = x < 0
    mag = np.minimum(np.abs(x), 32767) >> 2  # 16-bit -> 14-bit magnitude
    mag = np.minimum(mag, _ULAW_CLIP14)
    biased = mag + _ULAW_BIAS14
    seg = np.searchsorted(_ULAW_SEG_END, biased, side="left").astype(np.int32)
    overload = seg >= 8
    seg = np.minimum(seg, 7)
    mant = (biased >> (seg + 1)) & 0x0F
    code = (seg << 4) | mant
    code = np.where(overload, 0x7F, code)
    # µ-law transmits the complement; the sign bit set means positive. Magnitude 0 -> +0 (0xFF).
    negative &= mag > 0
    out = np.where(negative, code ^ 0x7F, code ^ 0xFF)
    return out.astype(np.uint8)


def _build_ulaw_decode() -> Pcm:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    out = np.where(u & 0x80, 0x84 - t, t - 0x84)
    return out.astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    v = x >> 3  # 16-bit -> 13-bit (arithmetic shift)
    negative = v < 0
    mag = np.where(negative, -v - 1, v)  # ones'-complement magnitude, as in G.711
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left").astype(np.int32)
    overload = seg >= 8
    seg = np.minimum(seg, 7)
    shift = np.where(seg < 2, 1, seg)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(overload, 0x7F, code)
    out = np.where(negative, code ^ 0x55, code ^ 0xD5)
    return out.astype(np.uint8)


def _build_alaw_decode() -> Pcm:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    out = np.where(a & 0x80, t, -t)
    return out.astype(np.int16)


ULAW_ENCODE_TABLE: Final = _build_ulaw_encode()
ULAW_DECODE_TABLE: Final = _build_ulaw_decode()
ALAW_ENCODE_TABLE: Final = _build_alaw_encode()
ALAW_DECODE_TABLE: Final = _build_alaw_decode()
for _table in (ULAW_ENCODE_TABLE, ULAW_DECODE_TABLE, ALAW_ENCODE_TABLE, ALAW_DECODE_TABLE):
    _table.setflags(write=False)


def _pcm_index(pcm: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    arr = np.asarray(pcm)
    if arr.ndim != 1:
        raise MediaError(f"G.711 encoder wants a 1-D int16 array, got {arr.ndim} dimensions")
    if arr.dtype != np.int16:
        if arr.size == 0:
            arr = arr.astype(np.int16)
        else:
            raise MediaError(f"G.711 encoder wants int16 samples, got dtype {arr.dtype}")
    return arr.view(np.uint16)


def _code_array(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MediaError(f"G.711 decoder wants bytes, got {type(data).__name__}")
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: npt.ArrayLike) -> bytes:
    """int16 samples (1-D) -> µ-law bytes, one byte per sample."""
    return ULAW_ENCODE_TABLE[_pcm_index(pcm)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> Pcm:
    """µ-law bytes -> new int16 array, one sample per byte."""
    return ULAW_DECODE_TABLE[_code_array(data)]


def alaw_encode(pcm: npt.ArrayLike) -> bytes:
    """int16 samples (1-D) -> A-law bytes, one byte per sample."""
    return ALAW_ENCODE_TABLE[_pcm_index(pcm)].tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> Pcm:
    """A-law bytes -> new int16 array, one sample per byte."""
    return ALAW_DECODE_TABLE[_code_array(data)]
