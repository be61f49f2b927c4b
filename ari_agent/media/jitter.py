"""Receive jitter buffer for one RTP stream (8 kHz, 20 ms frames). Event-driven: no clock.

Each :meth:`JitterBuffer.push` returns the frames that became releasable, in timeline order.
Packets that arrive in order are released at once (no added latency); a hole holds back the
packets behind it until it is filled or declared lost.

Rules:

* **Reorder**: a packet arriving ahead of a hole waits; when the hole's packet arrives, both go.
* **Loss**: the packet at the release point is declared lost once ``depth_frames`` newer packets
  are waiting. Each lost packet becomes one concealed frame (``concealed=True``): the first repeats
  the last received frame at half amplitude (-6 dB), the second at a quarter (-12 dB), later ones
  are silence. A hole longer than ``max_gap_fill_frames`` gets that many concealed frames and the
  buffer then jumps to the next packet.
* **Duplicates** (a sequence number waiting or recently released) and **late** packets (older
  than the release point and not a duplicate, e.g. one already concealed) are dropped and counted.
* **Silence gaps**: Asterisk sends nothing while the far side is silent, then resumes with the
  next sequence number and a timestamp that jumped. The gap is filled with silence frames
  (``gap_fill=True``, ``concealed=False``), rounded to whole frames and capped at
  ``max_gap_fill_frames``, so a recording keeps its timeline.
* **Resync**: a sequence jump of more than :data:`RESYNC_SEQ_JUMP` either way, confirmed by a
  second packet near the first (RFC 3550 A.1 style: a lone stray packet is dropped as late), or a
  new SSRC, is a new stream: waiting packets are released (holes concealed), then the buffer
  restarts at the new packets without gap filling. The jump thus costs one packet of latency.
* Packets whose payload type is not the codec's (comfort noise, telephone-event) take their
  place in the sequence so they cause no loss, but produce no frame; they are counted as ``ignored``.
* Reordering across the very first packet is not recovered (the first packet sets the release
  point). Call :meth:`flush` when the stream ends or stalls, to release what a hole holds back.

Frame ``seq``: the packet's sequence number; for a concealed frame the lost packet's; for gap-fill
frames the sequence number of the packet that follows the gap. ``timestamp`` always increases.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from ari_agent.errors import MediaError
from ari_agent.media.pcm import Codec, Pcm
from ari_agent.media.rtp import RtpPacket, seq_add, seq_diff, ts_add, ts_diff

RESYNC_SEQ_JUMP: Final = 1000
CONCEALMENT_GAINS: Final = (0.5, 0.25)
"""Gain applied to the last good frame for the 1st, 2nd, ... consecutive lost frame; silence after."""
_RECENT_RELEASED: Final = 256


@dataclass(slots=True)
class AudioFrame:
    """One released frame of int16 samples at 8 kHz."""

    seq: int
    timestamp: int
    pcm: Pcm
    concealed: bool
    gap_fill: bool = False


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    """Every packet pushed (including the ones then dropped)."""
    released: int = 0
    """Received packets released as frames."""
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    """Sequence numbers declared lost (including ones beyond the concealment cap)."""
    concealed: int = 0
    """Concealment frames released in place of lost packets."""
    reordered: int = 0
    """Accepted packets that arrived after a packet with a higher sequence number."""
    gap_filled: int = 0
    """Silence frames inserted for timestamp gaps (far side silent, nothing sent)."""
    resyncs: int = 0
    ignored: int = 0
    """Packets of another payload type (comfort noise, DTMF events): sequence kept, no frame."""


@dataclass(slots=True)
class _Pending:
    packet: RtpPacket
    pcm: Pcm | None  # None: not audio of this codec


@dataclass(slots=True)
class _Recent:
    """Bounded set of recently released sequence numbers (to tell duplicates from late packets)."""

    order: deque[int] = field(default_factory=lambda: deque(maxlen=_RECENT_RELEASED))
    members: set[int] = field(default_factory=set)

    def add(self, seq: int) -> None:
        if len(self.order) == self.order.maxlen:
            self.members.discard(self.order[0])
        self.order.append(seq)
        self.members.add(seq)

    def clear(self) -> None:
        self.order.clear()
        self.members.clear()


class JitterBuffer:
    """Reorders, de-duplicates and conceals one SSRC's packets into a gap-free frame timeline."""

    def __init__(self, codec: Codec, depth_frames: int = 3, max_gap_fill_frames: int = 50) -> None:
        if depth_frames < 1:
            raise MediaError(f"depth_frames must be >= 1, got {depth_frames}")
        if max_gap_fill_frames < 0:
            raise MediaError(f"max_gap_fill_frames must be >= 0, got {max_gap_fill_frames}")
        self.codec = codec
        self.depth_frames = depth_frames
        self.max_gap_fill_frames = max_gap_fill_frames
        self.stats = JitterStats()
        self._pending: dict[int, _Pending] = {}
        self._recent = _Recent()
        self._ssrc: int | None = None
        self._next_seq: int | None = None  # release point: the next sequence number to release
        self._next_ts: int | None = None  # timestamp the next frame should carry; None = unknown
        self._highest_seq: int | None = None
        self._stray: _Pending | None = None  # a packet far from the stream, waiting for confirmation
        self._frame_samples = codec.samples_per_20ms
        self._last_pcm: Pcm | None = None
        self._conceal_run = 0

    # --- public ---------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        """Packets waiting behind a hole."""
        return len(self._pending)

    @property
    def ssrc(self) -> int | None:
        return self._ssrc

    def push(self, pkt: RtpPacket) -> list[AudioFrame]:
        """Take one received packet; return the frames it made releasable, in order."""
        pcm: Pcm | None = None
        if self.codec.accepts_payload_type(pkt.payload_type):
            pcm = self.codec.decode(pkt.payload)  # MediaError on a malformed payload, before any change
            if pcm.size == 0:
                pcm = None
        self.stats.received += 1
        if pcm is None:
            self.stats.ignored += 1

        out: list[AudioFrame] = []
        entry = _Pending(pkt, pcm)
        if self._ssrc is not None and pkt.ssrc != self._ssrc:
            out.extend(self._resync())
        if self._next_seq is None:
            self._start(pkt)
        else:
            diff = seq_diff(pkt.sequence_number, self._next_seq)
            if abs(diff) > RESYNC_SEQ_JUMP:
                out.extend(self._jump(entry))
                return out
            self._drop_stray()  # the stream went on where it was: the lone jump was noise
            if diff < 0:
                if pkt.sequence_number in self._recent.members:
                    self.stats.duplicates += 1
                else:
                    self.stats.late += 1
                return out
            if pkt.sequence_number in self._pending:
                self.stats.duplicates += 1
                return out
        self._accept(entry, out)
        return out

    def flush(self) -> list[AudioFrame]:
        """Release everything waiting (holes between waiting packets are concealed).

        The release point stays, so later packets of the same stream continue the timeline.
        A lone packet after a sequence jump keeps waiting for the packet that confirms the jump.
        """
        return self._drain(force=True)

    def reset(self) -> None:
        """Forget the stream entirely (waiting packets are discarded); stats are kept."""
        self._pending.clear()
        self._recent.clear()
        self._stray = None
        self._ssrc = None
        self._next_seq = None
        self._next_ts = None
        self._highest_seq = None
        self._last_pcm = None
        self._conceal_run = 0
        self._frame_samples = self.codec.samples_per_20ms

    # --- internals ------------------------------------------------------------------------------

    def _start(self, pkt: RtpPacket) -> None:
        self._ssrc = pkt.ssrc
        self._next_seq = pkt.sequence_number
        self._next_ts = None
        self._highest_seq = pkt.sequence_number

    def _accept(self, entry: _Pending, out: list[AudioFrame]) -> None:
        seq = entry.packet.sequence_number
        assert self._highest_seq is not None
        if seq_diff(seq, self._highest_seq) < 0:
            self.stats.reordered += 1
        else:
            self._highest_seq = seq
        self._pending[seq] = entry
        out.extend(self._drain(force=False))

    def _drop_stray(self) -> None:
        if self._stray is not None:
            self._stray = None
            self.stats.late += 1

    def _jump(self, entry: _Pending) -> list[AudioFrame]:
        """A packet far from the release point: a restart once a second packet near it confirms it.

        One stray packet (a very late duplicate, garbage) must not throw the stream away, so the
        first one waits; RFC 3550 appendix A.1 validates a new source the same way.
        """
        stray = self._stray
        seq = entry.packet.sequence_number
        if stray is not None and seq == stray.packet.sequence_number:
            self.stats.duplicates += 1  # a copy confirms nothing
            return []
        if stray is None or abs(seq_diff(seq, stray.packet.sequence_number)) > RESYNC_SEQ_JUMP:
            self._drop_stray()
            self._stray = entry
            return []
        self._stray = None
        out = self._resync()
        first, second = (entry, stray) if seq_diff(seq, stray.packet.sequence_number) < 0 else (stray, entry)
        self._start(first.packet)
        self._accept(first, out)
        self._accept(second, out)
        if first is entry:
            self.stats.reordered += 1
        return out

    def _resync(self) -> list[AudioFrame]:
        self._drop_stray()
        out = self._drain(force=True)
        self.stats.resyncs += 1
        last_pcm = self._last_pcm
        self.reset()
        self._last_pcm = last_pcm
        return out

    def _drain(self, force: bool) -> list[AudioFrame]:
        out: list[AudioFrame] = []
        while self._pending:
            assert self._next_seq is not None
            entry = self._pending.pop(self._next_seq, None)
            if entry is not None:
                self._release(entry, out)
                continue
            if not force and len(self._pending) < self.depth_frames:
                break
            self._conceal_hole(out)
        return out

    def _release(self, entry: _Pending, out: list[AudioFrame]) -> None:
        pkt = entry.packet
        assert self._next_seq is not None
        self._recent.add(pkt.sequence_number)
        self._next_seq = seq_add(pkt.sequence_number, 1)
        if entry.pcm is None:
            return  # not audio: keeps its sequence number, leaves the timeline alone
        if self._next_ts is not None:
            gap = ts_diff(pkt.timestamp, self._next_ts)
            frames = (gap + self._frame_samples // 2) // self._frame_samples if gap > 0 else 0
            frames = min(frames, self.max_gap_fill_frames)
            for i in range(frames):
                ts = ts_add(self._next_ts, i * self._frame_samples)
                silence = np.zeros(self._frame_samples, dtype=np.int16)
                out.append(AudioFrame(pkt.sequence_number, ts, silence, concealed=False, gap_fill=True))
            self.stats.gap_filled += frames
        out.append(AudioFrame(pkt.sequence_number, pkt.timestamp, entry.pcm, concealed=False))
        self.stats.released += 1
        self._frame_samples = int(entry.pcm.size)
        self._next_ts = ts_add(pkt.timestamp, self._frame_samples)
        self._last_pcm = entry.pcm
        self._conceal_run = 0

    def _conceal_hole(self, out: list[AudioFrame]) -> None:
        """The packet at the release point is lost: conceal the whole run up to the next waiting one."""
        assert self._next_seq is not None
        start = self._next_seq
        after = min(self._pending, key=lambda s: seq_diff(s, start))
        missing = seq_diff(after, start)
        self.stats.lost += missing
        shown = min(missing, self.max_gap_fill_frames)
        if self._next_ts is None:  # nothing released yet: place the hole just before the next packet
            self._next_ts = ts_add(self._pending[after].packet.timestamp, -missing * self._frame_samples)
        for i in range(shown):
            out.append(AudioFrame(seq_add(start, i), self._next_ts, self._concealment(), concealed=True))
            self._next_ts = ts_add(self._next_ts, self._frame_samples)
        self.stats.concealed += shown
        if shown < missing:
            self._next_ts = None  # the timeline is broken anyway: do not gap-fill after the jump
        self._next_seq = seq_add(start, missing)

    def _concealment(self) -> Pcm:
        run = self._conceal_run
        self._conceal_run += 1
        last = self._last_pcm
        if last is None or last.size != self._frame_samples or run >= len(CONCEALMENT_GAINS):
            return np.zeros(self._frame_samples, dtype=np.int16)
        scaled = np.rint(last.astype(np.float32) * np.float32(CONCEALMENT_GAINS[run]))
        frame: Pcm = scaled.astype(np.int16)
        return frame
