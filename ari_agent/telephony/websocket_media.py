"""WebSocket media (Asterisk 22 chan_websocket) for an externalMedia channel: the agent's side.

The agent connects to ``ws(s)://<ARI host:port>/media/<connection id>`` (subprotocol ``media``), so over
TLS whenever ARI is, with the same certificate checks. Audio is slin16 both ways; the call's loop runs at
8 kHz, so received audio is decimated 16k→8k (:class:`HalfRateDecimator`) into 20 ms frames, each handed on
as soon as its message arrives, and prompts are resampled 8k→16k before sending.

Asterisk paces what it is sent: a prompt goes out at once (in chunks under the 64 KiB frame limit),
framed by ``MARK_MEDIA`` commands whose ``MEDIA_MARK_PROCESSED`` events say when its first frame was
played (``play()``'s future) and when the last one was (``drained()``). A barge-in sends ``FLUSH_MEDIA``:
Asterisk drops everything queued. ``MEDIA_XOFF``/``MEDIA_XON`` pause and resume sending.

Asterisk sends nothing while the caller is silent; gaps are filled with silence frames by arrival time
(:class:`ArrivalTimeline`) so a recording keeps its timeline. Malformed messages are counted and
dropped; a burst of them, a wrong ``MEDIA_START`` or a connection lost or closed under the agent make
the endpoint *failed*: ``failed`` is set and ``on_failure`` called at once (the call hands the caller to a
person then, whatever it was doing), and ``drained()`` raises :class:`WebSocketMediaError` (a
``ConnectionError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import numpy as np
import numpy.typing as npt

from ari_agent.errors import MediaError, TelephonyError
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import SAMPLES_PER_FRAME, Pcm, array_to_slin_le, resample, slin_le_to_array
from ari_agent.telephony.tls import TlsContext, tls_failure
from ari_agent.telephony.websocket_protocol import (
    ControlEvent,
    WebSocketProtocolError,
    check_media_start,
    chunks,
    command,
    parse_control,
)

log = logging.getLogger(__name__)

WIRE_RATE: Final = 16000
LOOP_RATE: Final = 8000
FRAME_S: Final = 0.020
MAX_MALFORMED: Final = 50  # this many bad messages in one call: the media path is not trustworthy
MEDIA_START_TIMEOUT_S: Final = 5.0


class WebSocketMediaError(TelephonyError, ConnectionError):
    """The WebSocket media connection failed or broke the protocol (the call goes to a human)."""


@dataclass
class WebSocketMediaStats:
    messages: int = 0
    frames_in: int = 0
    gap_filled: int = 0
    malformed: int = 0
    bytes_sent: int = 0
    frames_sent: int = 0
    marks: int = 0
    flushes: int = 0
    xoff: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class ArrivalTimeline:
    """Frame numbering by arrival time (no timestamps on the wire): how many silence frames a gap needs.

    Only a gap longer than ``slack_frames`` counts: TCP delivers late frames late, not lost, and a
    delay filled with silence would cut into the caller's words (measured: a 60 ms slack garbled speech
    on a loaded 2-core machine). Asterisk stops sending while the caller is silent; those gaps are long."""

    def __init__(self, slack_frames: int = 15, max_fill_frames: int = 50) -> None:
        self.slack_frames = slack_frames
        self.max_fill_frames = max_fill_frames
        self._anchor: float | None = None
        self.frames = 0

    def gap_before(self, now: float) -> int:
        """Silence frames to insert before a frame arriving at ``now`` (then counts that frame)."""
        if self._anchor is None:
            self._anchor = now
            self.frames = 1
            return 0
        due = (now - self._anchor) / FRAME_S
        gap = 0
        if due - self.frames > self.slack_frames:
            gap = min(round(due - self.frames), self.max_fill_frames)
        if due < self.frames - 25 or gap:  # far ahead of the clock (a burst) or after a gap: re-anchor
            self._anchor = now - (self.frames + gap) * FRAME_S
        self.frames += gap + 1
        return gap


def _half_band_taps(count: int = 47, beta: float = 5.65) -> npt.NDArray[np.float64]:
    """Kaiser-windowed sinc low-pass at a quarter of the input rate (4 kHz at 16 kHz), unity gain at DC:
    flat to about 3.4 kHz, about 60 dB down from 4.6 kHz (what would alias into the 8 kHz band)."""
    n = np.arange(count) - (count - 1) / 2
    taps = np.sinc(n / 2) * np.kaiser(count, beta)
    out: npt.NDArray[np.float64] = taps / taps.sum()
    return out


class HalfRateDecimator:
    """16 kHz → 8 kHz for a live stream: every input sample pair gives one output sample at once.

    A FIR low-pass then every other sample, with the filter's history kept across chunks: a constant delay
    of 23 input samples (1.4 ms) and no block buffering. (soxr's streaming resampler, used here before,
    returns its output in blocks: a 20 ms message gave 0, 0, 0, then about 60 ms of audio. The listener
    fills any 60 ms without a frame with silence, so real frames arriving in such bursts got 60 ms of
    silence put in front of them in the middle of the caller's words, and the recogniser heard extra
    words.)"""

    TAPS: Final = _half_band_taps()

    def __init__(self) -> None:
        self._history = np.zeros(self.TAPS.size - 1, dtype=np.float64)
        self._odd = False  # the stream so far has an odd number of samples: the next output is at index 1

    def reset(self) -> None:
        self._history[:] = 0.0
        self._odd = False

    def process(self, chunk: Pcm) -> Pcm:
        if chunk.size == 0:
            return np.zeros(0, dtype=np.int16)
        buf = np.concatenate((self._history, chunk.astype(np.float64)))
        filtered = np.convolve(buf, self.TAPS, mode="valid")  # one value per input sample of this chunk
        picked = filtered[1 if self._odd else 0::2]
        self._odd = (int(self._odd) + chunk.size) % 2 == 1
        self._history = buf[buf.size - self._history.size:]
        return np.clip(np.rint(picked), -32768, 32767).astype(np.int16)

    def flush(self) -> Pcm:
        """The delayed tail (the last input samples through the filter's centre); then a new stream."""
        tail = self.process(np.zeros((self.TAPS.size - 1) // 2, dtype=np.int16))
        self.reset()
        return tail


@dataclass
class _Play:
    frames: int
    started: asyncio.Future[float]
    start_mark: str
    end_mark: str
    first_frame: int  # index of its first frame in everything queued since the last flush
    began_at: float | None = None


@dataclass
class _Outbox:
    items: deque[str | bytes] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class WebSocketMediaEndpoint:
    """The agent's end of one chan_websocket media connection (same playout interface as RtpEndpoint)."""

    def __init__(self, on_frame: Callable[[AudioFrame], None]) -> None:
        self.on_frame = on_frame
        self.stats = WebSocketMediaStats()
        self.failure: str | None = None
        self.frame_size = 640
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._timeline = ArrivalTimeline()
        self._down = HalfRateDecimator()
        self._pending: Pcm = np.zeros(0, dtype=np.int16)
        self._seq = 0
        self._outbox = _Outbox()
        self._xon = asyncio.Event()
        self._xon.set()
        self._plays: deque[_Play] = deque()
        self._frames_queued = 0
        self._marks = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.closed = asyncio.Event()
        # Set with ``failure`` (and ``on_failure`` called, once): the call hands the caller to a person at
        # once, not at the next playout wait.
        self.failed = asyncio.Event()
        self.on_failure: Callable[[], None] | None = None
        self._closing = False

    # ------------------------------------------------------------------ connection
    async def connect(self, url: str, tls: TlsContext | None, timeout_s: float = MEDIA_START_TIMEOUT_S) -> None:
        """Connect and wait for a valid MEDIA_START (WebSocketMediaError otherwise)."""
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(
                url, protocols=("media",), ssl=tls.ssl if tls is not None else True, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0), max_msg_size=1 << 20)
            msg = await asyncio.wait_for(self._ws.receive(), timeout_s)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise WebSocketMediaError(f"WebSocket media: expected MEDIA_START, got a {msg.type.name} message")
            self.frame_size = check_media_start(parse_control(str(msg.data)))
        except aiohttp.ClientSSLError as exc:
            await self.aclose()
            raise WebSocketMediaError(f"WebSocket media: {tls_failure(exc, url, tls)}") from None
        except (aiohttp.ClientError, OSError) as exc:
            await self.aclose()
            if isinstance(exc, WebSocketMediaError):
                raise
            raise WebSocketMediaError(f"WebSocket media: cannot connect ({exc.__class__.__name__}: {exc})") from None
        except TimeoutError:
            await self.aclose()
            raise WebSocketMediaError(f"WebSocket media: no MEDIA_START within {timeout_s:g}s") from None
        except WebSocketProtocolError as exc:
            await self.aclose()
            raise WebSocketMediaError(f"WebSocket media: {exc}") from None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._reader(), name="ws-media-reader"),
                       loop.create_task(self._writer(), name="ws-media-writer")]

    async def aclose(self) -> None:
        self._closing = True
        self.stop_playback(flush_remote=False)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.flush_received()
        self.closed.set()

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            log.error("WebSocket media failed: %s", reason)
            self.failed.set()
            if self.on_failure is not None:
                self.on_failure()
        self.stop_playback(flush_remote=False)

    async def wait_failed(self) -> WebSocketMediaError:
        """Wait until the media path fails mid-call; the error says why."""
        await self.failed.wait()
        return WebSocketMediaError(f"WebSocket media: {self.failure}")

    # ------------------------------------------------------------------ receiving
    async def _reader(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                self.stats.messages += 1
                if msg.type == aiohttp.WSMsgType.BINARY:
                    self.handle_binary(bytes(msg.data), time.monotonic())
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self.handle_text(str(msg.data))
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    self._fail(f"WebSocket error: {self._ws.exception()}")
                    break
                else:
                    self._malformed(f"unexpected {msg.type.name} message")
                if self.failure is not None:
                    break
            if not self._closing and self._ws is not None:  # closed under us: Asterisk or the network
                self._fail(f"connection closed mid-call (code {self._ws.close_code})")
        except Exception as exc:  # never let the reader die silently
            self._fail(f"reader crashed: {exc.__class__.__name__}: {exc}")
        finally:
            self.stop_playback(flush_remote=False)  # whoever awaits playout is released
            self.closed.set()

    def _malformed(self, what: str) -> None:
        self.stats.malformed += 1
        log.warning("WebSocket media: dropped malformed message (%s)", what)
        if self.stats.malformed >= MAX_MALFORMED:
            self._fail(f"{self.stats.malformed} malformed messages")

    def handle_binary(self, data: bytes, now: float) -> None:
        try:
            pcm16 = slin_le_to_array(data)
        except MediaError as exc:
            self._malformed(str(exc))
            return
        if pcm16.size == 0:
            self._malformed("empty media message")
            return
        gap = self._timeline.gap_before(now)
        if gap:
            # Asterisk stopped sending (the caller went quiet): what the last talk spurt left in the
            # decimator and the partial frame goes out now, at the end of that spurt, not seconds later
            # in front of the next one (stale audio there was heard as an extra leading word).
            gap = max(0, gap - self.flush_received())
        for _ in range(gap):
            self._emit(np.zeros(SAMPLES_PER_FRAME, dtype=np.int16), gap_fill=True)
        self._pending = np.concatenate((self._pending, self._down.process(pcm16)))
        while self._pending.size >= SAMPLES_PER_FRAME:
            frame, self._pending = self._pending[:SAMPLES_PER_FRAME], self._pending[SAMPLES_PER_FRAME:]
            self.stats.frames_in += 1
            self._emit(frame.copy())

    def _emit(self, pcm: Pcm, gap_fill: bool = False) -> None:
        if gap_fill:
            self.stats.gap_filled += 1
        self.on_frame(AudioFrame(self._seq & 0xFFFF, self._seq * SAMPLES_PER_FRAME, pcm, False, gap_fill))
        self._seq += 1

    def flush_received(self) -> int:
        """Emit what is held back (a partial frame, the decimator's tail), the last frame padded with
        silence; returns the frames emitted."""
        tail = np.concatenate((self._pending, self._down.flush()))
        self._pending = np.zeros(0, dtype=np.int16)
        frames = -(-tail.size // SAMPLES_PER_FRAME)
        padded = np.zeros(frames * SAMPLES_PER_FRAME, dtype=np.int16)
        padded[: tail.size] = tail
        for i in range(frames):
            self._emit(padded[i * SAMPLES_PER_FRAME:(i + 1) * SAMPLES_PER_FRAME])
        return frames

    def handle_text(self, text: str) -> None:
        try:
            event = parse_control(text)
        except WebSocketProtocolError as exc:
            self._malformed(str(exc))
            return
        self._on_event(event)

    def _on_event(self, event: ControlEvent) -> None:
        if event.name == "MEDIA_MARK_PROCESSED":
            self._mark_processed(event.argument)
        elif event.name == "MEDIA_XOFF":
            self.stats.xoff += 1
            self._xon.clear()
        elif event.name == "MEDIA_XON":
            self._xon.set()
        elif event.name == "ERROR":
            log.warning("WebSocket media: Asterisk reports an error: %s", event.fields.get("error_text", event))
        # MEDIA_START again, STATUS, QUEUE_DRAINED, DTMF_END (DTMF comes as ARI events): nothing to do.

    def _mark_processed(self, mark: str) -> None:
        for play in self._plays:
            if mark == play.start_mark:
                play.began_at = time.monotonic()
                if not play.started.done():
                    play.started.set_result(play.began_at)
                return
            if mark == play.end_mark:
                while self._plays and self._plays[0] is not play:
                    self._settle(self._plays.popleft())
                self._settle(self._plays.popleft())
                if not self._plays:
                    self._drained.set()
                return
        # a mark of flushed audio: nothing waits for it any more

    @staticmethod
    def _settle(play: _Play) -> None:
        if not play.started.done():
            play.started.set_result(time.monotonic())

    # ------------------------------------------------------------------ sending
    def play(self, pcm: Pcm) -> asyncio.Future[float]:
        """Queue 8 kHz audio; the future resolves when Asterisk plays its first frame (cancelled if flushed)."""
        started: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        frames = -(-pcm.size // SAMPLES_PER_FRAME)
        if frames == 0 or self._ws is None or self.failure is not None:
            if self.failure is not None:
                started.cancel()
            else:
                started.set_result(time.monotonic())
            return started
        padded = np.zeros(frames * SAMPLES_PER_FRAME, dtype=np.int16)
        padded[: pcm.size] = pcm
        wire = array_to_slin_le(resample(padded, LOOP_RATE, WIRE_RATE))
        self._marks += 1
        play = _Play(frames, started, f"s{self._marks}", f"e{self._marks}", self._frames_queued)
        self._plays.append(play)
        self._frames_queued += frames
        self._drained.clear()
        self._send(command("MARK_MEDIA", play.start_mark))
        for part in chunks(wire):
            self._send(part)
        self._send(command("MARK_MEDIA", play.end_mark))
        self.stats.marks += 2
        self.stats.frames_sent += frames
        return started

    def _send(self, item: str | bytes) -> None:
        self._outbox.items.append(item)
        self._outbox.ready.set()

    async def _writer(self) -> None:
        box = self._outbox
        try:
            while True:
                await box.ready.wait()
                while box.items:
                    if isinstance(box.items[0], bytes):
                        await self._xon.wait()
                    if not box.items:
                        break
                    item = box.items.popleft()
                    ws = self._ws
                    if ws is None:
                        return
                    if isinstance(item, bytes):
                        await ws.send_bytes(item)
                        self.stats.bytes_sent += len(item)
                    else:
                        await ws.send_str(item)
                box.ready.clear()
        except (aiohttp.ClientError, OSError) as exc:
            self._fail(f"send failed: {exc.__class__.__name__}: {exc}")

    def _frames_played(self, now: float) -> int:
        played = 0
        for play in self._plays:
            if play.began_at is None:
                break
            played = play.first_frame + min(play.frames, int((now - play.began_at) / FRAME_S))
        return played if self._plays else self._frames_queued

    def stop_playback(self, flush_remote: bool = True) -> int:
        """Barge-in: Asterisk drops what it has queued (FLUSH_MEDIA). Returns the 20 ms frames not played."""
        if not self._plays:
            self._drained.set()
            return 0
        dropped = max(0, self._frames_queued - self._frames_played(time.monotonic()))
        self._outbox.items.clear()
        if flush_remote and self._ws is not None and self.failure is None:
            self._send(command("FLUSH_MEDIA"))
            self.stats.flushes += 1
        while self._plays:
            self._plays.popleft().started.cancel()
        self._frames_queued = 0
        self._drained.set()
        return dropped

    async def drained(self) -> None:
        """Return once everything queued has been played (or flushed); WebSocketMediaError if the media failed."""
        await self._drained.wait()
        if self.failure is not None:
            raise WebSocketMediaError(f"WebSocket media: {self.failure}")

    @property
    def playing(self) -> bool:
        return not self._drained.is_set()

