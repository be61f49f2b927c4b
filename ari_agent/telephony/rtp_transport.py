"""RTP over UDP for ARI externalMedia channels: one socket per call, one shared pacing clock.

Receive path: datagram -> source check -> RTP parse -> payload type / SSRC checks -> jitter buffer ->
``on_frame`` callback with 20 ms int16 frames. Anything malformed is counted and dropped; nothing in
the receive path can raise into the event loop.

Send path: every call's ``OutboundStream`` is ticked by one ``PacingTicker`` task on a monotonic
20 ms grid (deadlines computed from the start, so no drift), so 20 calls cost 50 wake-ups a second,
not 1000. Audio is sent on its deadline and never further ahead, so a flush (barge-in) silences
the line within one packet. Playout is awaited, never polled: ``play()`` returns a future that
resolves when the audio's first packet goes out, and ``drained()`` returns once nothing is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ari_agent.errors import MediaError
from ari_agent.media.jitter import AudioFrame, JitterBuffer
from ari_agent.media.pacer import OutboundStream, PacingClock
from ari_agent.media.pcm import Codec, Pcm
from ari_agent.media.rtp import RtpPacket

log = logging.getLogger(__name__)

# A new SSRC from the right address is accepted only after this many packets in a row: Asterisk
# changes SSRC when the bridged source changes, while a stray foreign packet stays foreign.
SSRC_SWITCH_PACKETS = 3
TELEPHONE_EVENT_PTS = frozenset({101, 96, 97})
SLEEP_MARGIN_S = 0.0015


@dataclass
class RtpStats:
    datagrams: int = 0
    accepted: int = 0
    malformed: int = 0
    wrong_payload_type: int = 0
    foreign_source: int = 0
    foreign_ssrc: int = 0
    ssrc_changes: int = 0
    short_frames: int = 0
    sent: int = 0
    send_errors: int = 0
    # Deviation of each send from its scheduled deadline, seconds (for the pacing benchmark).
    send_lateness: list[float] = field(default_factory=list)


class RtpEndpoint(asyncio.DatagramProtocol):
    """The agent's end of one externalMedia RTP stream."""

    def __init__(
        self,
        codec: Codec,
        on_frame: Callable[[AudioFrame], None],
        *,
        jitter_depth_frames: int = 3,
        record_lateness: bool = False,
        send_silence: bool = True,
    ) -> None:
        self.codec = codec
        self.on_frame = on_frame
        self.jitter = JitterBuffer(codec, depth_frames=jitter_depth_frames)
        self.outbound = OutboundStream(codec)
        self.stats = RtpStats()
        self.record_lateness = record_lateness
        # Keep the outbound stream continuous (silence between prompts), as phones without DTX do:
        # Asterisk then has a steady clock on the agent's leg (recordings stay aligned, NAT stays open).
        self.send_silence = send_silence
        self.remote: tuple[str, int] | None = None
        self.local_port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._ssrc: int | None = None
        self._candidate_ssrc: int | None = None
        self._candidate_count = 0
        # Playout bookkeeping: frames queued and sent (speech only, not the silence fill), and for
        # each play() the index of its first frame with the future its first packet resolves.
        self._frames_in = 0
        self._frames_out = 0
        self._starts: deque[tuple[int, asyncio.Future[float]]] = deque()
        self._drained = asyncio.Event()
        self._drained.set()
        self.closed = asyncio.Event()

    async def open(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self._transport = transport
        self.local_port = int(transport.get_extra_info("sockname")[1])
        return self.local_port

    def set_remote(self, host: str, port: int) -> None:
        self.remote = (host, port)

    def close(self) -> None:
        self.stop_playback()  # nothing more goes out: release whoever awaits playout
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    # --------------------------------------------------------------- asyncio protocol
    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable etc.: the far end may be gone; the call's events decide.
        log.debug("RTP socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.stats.datagrams += 1
        try:
            self._receive(data, (str(addr[0]), int(addr[1])))
        except MediaError as exc:
            self.stats.malformed += 1
            log.debug("dropped malformed RTP from %s: %s", addr, exc)
        except Exception:  # never let one datagram end the call
            self.stats.malformed += 1
            log.exception("unexpected error handling an RTP datagram; dropped")

    def _receive(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.remote is not None and addr != self.remote:
            self.stats.foreign_source += 1
            return
        pkt = RtpPacket.parse(data)
        if not self.codec.accepts_payload_type(pkt.payload_type):
            if pkt.payload_type not in TELEPHONE_EVENT_PTS:  # DTMF arrives as ARI events instead
                self.stats.wrong_payload_type += 1
            return
        if not self._ssrc_ok(pkt):
            return
        size, want = len(pkt.payload), self.codec.bytes_per_20ms
        if size > want or size == 0 or size % self.codec.bytes_per_sample:
            raise MediaError(f"payload of {size} bytes; up to {want} expected for 20 ms")
        if size < want:
            # A short last frame (Asterisk ends a stream on a partial frame): pad it with silence so the
            # 20 ms timeline holds.
            self.stats.short_frames += 1
            pkt = dataclasses.replace(pkt, payload=pkt.payload + self.codec.encode(
                np.zeros((want - size) // self.codec.bytes_per_sample, dtype=np.int16)))
        self.stats.accepted += 1
        for frame in self.jitter.push(pkt):
            self.on_frame(frame)

    def _ssrc_ok(self, pkt: RtpPacket) -> bool:
        if self._ssrc is None or pkt.ssrc == self._ssrc:
            self._ssrc = pkt.ssrc
            self._candidate_ssrc, self._candidate_count = None, 0
            return True
        if pkt.ssrc == self._candidate_ssrc:
            self._candidate_count += 1
        else:
            self._candidate_ssrc, self._candidate_count = pkt.ssrc, 1
        if self._candidate_count >= SSRC_SWITCH_PACKETS:
            self.stats.ssrc_changes += 1
            for frame in self.jitter.flush():
                self.on_frame(frame)
            self.jitter.reset()
            self._ssrc = pkt.ssrc
            self._candidate_ssrc, self._candidate_count = None, 0
            return True
        self.stats.foreign_ssrc += 1
        return False

    def flush_received(self) -> None:
        for frame in self.jitter.flush():
            self.on_frame(frame)

    # --------------------------------------------------------------- sending
    def play(self, pcm: Pcm) -> asyncio.Future[float]:
        """Queue audio (8 kHz int16) for paced sending. The future resolves with the monotonic time
        its first packet is sent (cancelled if the audio is flushed before that)."""
        started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        before = self.outbound.queued_frames
        self.outbound.enqueue(pcm, end_of_utterance=True)
        added = self.outbound.queued_frames - before
        if added <= 0:
            started.set_result(time.monotonic())
            return started
        self._starts.append((self._frames_in, started))
        self._frames_in += added
        self._drained.clear()
        return started

    async def drained(self) -> None:
        """Return once everything queued has been sent (or flushed)."""
        await self._drained.wait()

    @property
    def playing(self) -> bool:
        return not self._drained.is_set()

    def stop_playback(self) -> int:
        """Barge-in: drop everything queued at once. Returns frames dropped."""
        dropped = self.outbound.flush()
        self._frames_in = self._frames_out
        while self._starts:
            self._starts.popleft()[1].cancel()
        self._drained.set()
        return dropped

    def tick(self, lateness: float) -> None:
        """Called by the PacingTicker once per 20 ms."""
        speaking = self.outbound.queued_frames > 0
        pkt = self.outbound.next_packet(fill_silence=self.send_silence)
        if speaking:
            self._frames_out += 1
            now = time.monotonic()
            while self._starts and self._starts[0][0] < self._frames_out:
                started = self._starts.popleft()[1]
                if not started.done():
                    started.set_result(now)
            if self.outbound.queued_frames == 0:
                self._drained.set()
        if pkt is None or self._transport is None or self.remote is None:
            return
        try:
            self._transport.sendto(pkt, self.remote)
            self.stats.sent += 1
            if self.record_lateness:
                self.stats.send_lateness.append(lateness)
        except OSError as exc:
            self.stats.send_errors += 1
            log.debug("RTP send failed: %s", exc)


class PacingTicker:
    """One task that ticks every registered endpoint on a shared 20 ms monotonic grid."""

    def __init__(self, period: float = 0.020) -> None:
        self.period = period
        self._endpoints: set[RtpEndpoint] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.skipped = 0

    def add(self, endpoint: RtpEndpoint) -> None:
        self._endpoints.add(endpoint)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtp-pacing-ticker")

    def remove(self, endpoint: RtpEndpoint) -> None:
        self._endpoints.discard(endpoint)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        clock = PacingClock(self.period, start=time.monotonic())
        while True:
            if not self._endpoints:
                # Idle: stop ticking until a call arrives, then restart the grid from now.
                self._wake.clear()
                await self._wake.wait()
                clock = PacingClock(self.period, start=time.monotonic())
            deadline = clock.next_deadline()
            delay = deadline - time.monotonic()
            if delay > SLEEP_MARGIN_S:
                # The event loop's timers have ~1 ms granularity (epoll rounds up): wake a little early...
                await asyncio.sleep(delay - SLEEP_MARGIN_S)
            remaining = deadline - time.monotonic()
            if 0 < remaining <= SLEEP_MARGIN_S:
                # ...and sleep the last fraction of a millisecond precisely (nanosleep; no CPU burnt).
                time.sleep(remaining)  # noqa: ASYNC251
            now = time.monotonic()
            lateness = now - clock.next_deadline()
            for ep in list(self._endpoints):
                ep.tick(lateness)
            skipped = clock.advance(time.monotonic())
            if skipped:
                self.skipped += skipped
                for ep in self._endpoints:
                    ep.outbound.skip(skipped)
