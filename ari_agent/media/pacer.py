"""Outbound RTP pacing logic, with no I/O and no clock of its own.

The telephony layer owns the asyncio loop; it is expected to do, roughly::

    clock = PacingClock(start=loop.time())
    while True:
        await asyncio.sleep(max(0.0, clock.next_deadline() - loop.time()))
        packet = stream.next_packet()          # one call per 20 ms tick
        if packet is not None:
            transport.sendto(packet)
        skipped = clock.advance(loop.time())   # > 0 after a stall: ticks dropped, not burst
        if skipped:
            stream.skip(skipped)

:class:`OutboundStream` turns int16 audio into 20 ms RTP packets: consecutive sequence numbers,
timestamps that follow the media clock (+160 per tick, also across idle ticks), and the marker
bit on the first packet of each talk spurt (the first packet ever, after an idle tick, after a
:meth:`~OutboundStream.flush` and after a :meth:`~OutboundStream.skip`).
"""

from __future__ import annotations

import math
import secrets
from collections import deque

import numpy as np
import numpy.typing as npt

from ari_agent.errors import MediaError
from ari_agent.media.pcm import Codec, Pcm, as_pcm16
from ari_agent.media.rtp import RtpPacket, seq_add, ts_add


class OutboundStream:
    """Frames, encodes and numbers one outbound RTP stream (8 kHz, 20 ms packets)."""

    def __init__(
        self,
        codec: Codec,
        ssrc: int | None = None,
        initial_seq: int | None = None,
        initial_ts: int | None = None,
        payload_type: int | None = None,
    ) -> None:
        self.codec = codec
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.payload_type = codec.payload_type if payload_type is None else payload_type
        seq = secrets.randbits(16) if initial_seq is None else initial_seq
        ts = secrets.randbits(32) if initial_ts is None else initial_ts
        if not 0 <= self.ssrc < 1 << 32:
            raise MediaError(f"SSRC {self.ssrc} outside 0..2**32-1")
        if not 0 <= seq < 1 << 16:
            raise MediaError(f"initial_seq {seq} outside 0..65535")
        if not 0 <= ts < 1 << 32:
            raise MediaError(f"initial_ts {ts} outside 0..2**32-1")
        if not 0 <= self.payload_type <= 127:
            raise MediaError(f"payload type {self.payload_type} outside 0..127")
        self.frame_samples = codec.samples_per_20ms
        self._seq = seq
        self._ts = ts
        self._frames: deque[bytes] = deque()
        self._partial: Pcm = np.zeros(0, dtype=np.int16)
        self._spurt_start = True
        self._silence = codec.encode(np.zeros(codec.samples_per_20ms, dtype=np.int16))
        self.packets_sent = 0
        self.octets_sent = 0

    # --- state ----------------------------------------------------------------------------------

    @property
    def sequence_number(self) -> int:
        """Sequence number the next packet will carry."""
        return self._seq

    @property
    def timestamp(self) -> int:
        """Timestamp the next packet will carry."""
        return self._ts

    @property
    def queued_frames(self) -> int:
        """Whole frames ready to send (a partial frame waiting for more audio is not counted)."""
        return len(self._frames)

    @property
    def queued_ms(self) -> float:
        """Audio queued, whole frames plus the partial one, in milliseconds."""
        samples = len(self._frames) * self.frame_samples + self._partial.size
        return samples * 1000.0 / self.codec.sample_rate

    @property
    def is_idle(self) -> bool:
        """Nothing queued at all, not even a partial frame."""
        return not self._frames and self._partial.size == 0

    # --- producer side --------------------------------------------------------------------------

    def enqueue(self, pcm: npt.ArrayLike, end_of_utterance: bool = False) -> None:
        """Append int16 samples at 8 kHz, any length. With ``end_of_utterance`` the last partial
        frame is padded with silence so that everything queued can be sent."""
        samples = as_pcm16(pcm, "OutboundStream.enqueue")
        if self._partial.size:
            samples = np.concatenate((self._partial, samples))
        n = samples.size // self.frame_samples
        for i in range(n):
            chunk = samples[i * self.frame_samples : (i + 1) * self.frame_samples]
            self._frames.append(self.codec.encode(chunk))
        self._partial = samples[n * self.frame_samples :].copy()
        if end_of_utterance:
            self.finish()

    def finish(self) -> None:
        """Pad the partial frame (if any) with silence and queue it."""
        if self._partial.size:
            padded = np.zeros(self.frame_samples, dtype=np.int16)
            padded[: self._partial.size] = self._partial
            self._frames.append(self.codec.encode(padded))
            self._partial = np.zeros(0, dtype=np.int16)

    def flush(self) -> int:
        """Drop everything queued at once (barge-in). Returns the frames dropped (a partial counts
        as one). The next packet starts a new talk spurt."""
        dropped = len(self._frames) + (1 if self._partial.size else 0)
        self._frames.clear()
        self._partial = np.zeros(0, dtype=np.int16)
        self._spurt_start = True
        return dropped

    # --- sender side ----------------------------------------------------------------------------

    def next_packet(self, fill_silence: bool = False) -> bytes | None:
        """The packet for this 20 ms tick, or None when no whole frame is queued.

        Call exactly once per tick: an idle tick (None) still advances the timestamp by one
        frame, so the receiver sees real time pass, and the next packet gets the marker bit.
        With ``fill_silence`` an idle tick sends a frame of silence instead (a continuous stream,
        as phones without DTX send); the stream then has one talk spurt and no markers after it.
        """
        if not self._frames:
            if not fill_silence:
                self._ts = ts_add(self._ts, self.frame_samples)
                self._spurt_start = True
                return None
            payload = self._silence
        else:
            payload = self._frames.popleft()
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self.ssrc,
            payload=payload,
            marker=self._spurt_start,
        ).serialize()
        self._spurt_start = False
        self._seq = seq_add(self._seq, 1)
        self._ts = ts_add(self._ts, self.frame_samples)
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return packet

    def skip(self, ticks: int) -> None:
        """Account for ``ticks`` periods the sender missed (see :meth:`PacingClock.advance`):
        the timestamp moves on, queued audio is kept, the next packet starts a talk spurt."""
        if ticks < 0:
            raise MediaError(f"cannot skip {ticks} ticks")
        if ticks:
            self._ts = ts_add(self._ts, ticks * self.frame_samples)
            self._spurt_start = True


class PacingClock:
    """Deadlines ``start + n * period`` on a monotonic clock: computed, never accumulated, so no drift.

    When the sender falls more than ``max_behind_periods`` periods behind (the event loop
    stalled), :meth:`advance` jumps over the missed ticks instead of letting the caller burst
    them out back to back; it keeps the original grid (phase) and reports how many it skipped.
    """

    def __init__(self, period: float = 0.020, *, start: float, max_behind_periods: int = 5) -> None:
        if not (period > 0.0 and math.isfinite(period)):
            raise MediaError(f"pacing period must be a positive number of seconds, got {period!r}")
        if not math.isfinite(start):
            raise MediaError(f"pacing start must be finite, got {start!r}")
        if max_behind_periods < 0:
            raise MediaError(f"max_behind_periods must be >= 0, got {max_behind_periods}")
        self.period = period
        self.start = start
        self.max_behind_periods = max_behind_periods
        self.ticks = 0
        self.resyncs = 0
        self.skipped_total = 0

    def next_deadline(self) -> float:
        """When the next tick is due."""
        return self.start + self.ticks * self.period

    def late_by(self, now: float) -> float:
        """Seconds ``now`` is past the next deadline (negative: still early)."""
        return now - self.next_deadline()

    def advance(self, now: float | None = None) -> int:
        """Move to the next tick. Given ``now``, and more than ``max_behind_periods`` periods late
        for that tick, skip forward to the latest tick due by ``now``. Returns the ticks skipped."""
        self.ticks += 1
        if now is None:
            return 0
        behind = self.late_by(now) / self.period
        if behind <= self.max_behind_periods:
            return 0
        skipped = math.floor(behind + 1e-9)  # tolerate float error on an exact multiple
        self.ticks += skipped
        self.resyncs += 1
        self.skipped_total += skipped
        return skipped
