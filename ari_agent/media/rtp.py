"""RTP packets (RFC 3550 §5.1): parse and serialize, no I/O.

Also the serial-number arithmetic RTP needs: sequence numbers wrap at 2**16 and
timestamps at 2**32, so "newer" and "difference" are taken modulo those sizes
(RFC 1982 style: the signed difference is the one with the smaller magnitude).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ari_agent.errors import MediaError

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_CSRC = 15

_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


# --- serial-number arithmetic -------------------------------------------------------------------


def seq_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between 16-bit sequence numbers, in [-32768, 32767].

    ``seq_diff(0, 65535) == 1``: 0 is the packet after 65535.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_lt(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes before ``b`` (modulo 2**16)."""
    return seq_diff(a, b) < 0


def seq_add(seq: int, n: int) -> int:
    """``seq + n`` modulo 2**16."""
    return (seq + n) & 0xFFFF


def ts_diff(a: int, b: int) -> int:
    """Signed distance ``a - b`` between 32-bit RTP timestamps, in [-2**31, 2**31 - 1]."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


def ts_lt(a: int, b: int) -> bool:
    """True when timestamp ``a`` comes before ``b`` (modulo 2**32)."""
    return ts_diff(a, b) < 0


def ts_add(ts: int, n: int) -> int:
    """``ts + n`` modulo 2**32."""
    return (ts + n) & 0xFFFF_FFFF


# --- packet -------------------------------------------------------------------------------------


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet.

    ``padding_size`` is the number of padding octets at the end of the packet, *including*
    the final count octet (RFC 3550 §5.1), so 0 means "no padding" and 1..255 sets the P bit.
    ``extension_profile`` is None when the packet has no header extension (X bit clear);
    ``extension_data`` is the extension body, a multiple of 4 octets.
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension_data: bytes = b""
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram. Raises MediaError on anything that is not a valid RTP packet."""
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise MediaError(f"RTP packet truncated: {size} bytes, header needs {RTP_HEADER_SIZE}")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data, 0)
        version = b0 >> 6
        if version != RTP_VERSION:
            raise MediaError(f"RTP version {version} is not 2")
        has_padding = bool(b0 & 0x20)
        has_extension = bool(b0 & 0x10)
        cc = b0 & 0x0F
        marker = bool(b1 & 0x80)
        payload_type = b1 & 0x7F

        pos = RTP_HEADER_SIZE
        if size < pos + 4 * cc:
            raise MediaError(f"RTP packet truncated: CSRC count {cc} needs {pos + 4 * cc} bytes, got {size}")
        csrc = struct.unpack_from(f"!{cc}I", data, pos) if cc else ()
        pos += 4 * cc

        extension_profile: int | None = None
        extension_data = b""
        if has_extension:
            if size < pos + 4:
                raise MediaError(f"RTP packet truncated: extension header needs {pos + 4} bytes, got {size}")
            extension_profile, words = _EXT_HEADER.unpack_from(data, pos)
            pos += 4
            end = pos + 4 * words
            if size < end:
                raise MediaError(
                    f"RTP packet truncated: extension of {words} words needs {end} bytes, got {size}"
                )
            extension_data = bytes(data[pos:end])
            pos = end

        padding_size = 0
        if has_padding:
            if size == pos:
                raise MediaError("RTP padding bit set but the packet has no room for the padding count")
            padding_size = data[-1]
            if padding_size == 0:
                raise MediaError("RTP padding count is 0 (must be at least 1 when the P bit is set)")
            if padding_size > size - pos:
                raise MediaError(
                    f"RTP padding count {padding_size} exceeds the {size - pos} bytes after the header"
                )

        return cls(
            payload_type=payload_type,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos : size - padding_size]),
            marker=marker,
            csrc=tuple(csrc),
            extension_profile=extension_profile,
            extension_data=extension_data,
            padding_size=padding_size,
        )

    def validate(self) -> None:
        """Raise MediaError when a field cannot be put on the wire."""
        if not 0 <= self.payload_type <= 0x7F:
            raise MediaError(f"RTP payload type {self.payload_type} outside 0..127")
        if not 0 <= self.sequence_number < SEQ_MOD:
            raise MediaError(f"RTP sequence number {self.sequence_number} outside 0..65535")
        if not 0 <= self.timestamp < TS_MOD:
            raise MediaError(f"RTP timestamp {self.timestamp} outside 0..2**32-1")
        if not 0 <= self.ssrc < TS_MOD:
            raise MediaError(f"RTP SSRC {self.ssrc} outside 0..2**32-1")
        if len(self.csrc) > MAX_CSRC:
            raise MediaError(f"RTP packet has {len(self.csrc)} CSRCs, at most {MAX_CSRC} allowed")
        for c in self.csrc:
            if not 0 <= c < TS_MOD:
                raise MediaError(f"RTP CSRC {c} outside 0..2**32-1")
        if self.extension_profile is None:
            if self.extension_data:
                raise MediaError("RTP extension data given without an extension profile")
        else:
            if not 0 <= self.extension_profile <= 0xFFFF:
                raise MediaError(f"RTP extension profile {self.extension_profile} outside 0..65535")
            if len(self.extension_data) % 4:
                raise MediaError(
                    f"RTP extension data is {len(self.extension_data)} bytes, not a multiple of 4"
                )
            if len(self.extension_data) // 4 > 0xFFFF:
                raise MediaError("RTP extension data longer than 65535 words")
        if not 0 <= self.padding_size <= 0xFF:
            raise MediaError(f"RTP padding size {self.padding_size} outside 0..255")

    def serialize(self) -> bytes:
        """The packet as bytes on the wire. Raises MediaError when a field is out of range."""
        self.validate()
        b0 = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding_size:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(b0, b1, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(_EXT_HEADER.pack(self.extension_profile, len(self.extension_data) // 4))
            parts.append(self.extension_data)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes((self.padding_size,)))
        return b"".join(parts)
