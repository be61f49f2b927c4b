"""WebSocket media (Asterisk 22 chan_websocket) for an externalMedia channel: the agent's side.

The agent connects to ``ws(s)://<ARI host:port>/media/<connection id>`` (subprotocol ``media``), so over
TLS whenever ARI is, with the same certificate checks. Audio is slin16 both ways; the call's loop runs at
8 kHz, so received audio is resampled 16k→8k into 20 ms frames and prompts 8k→16k before sending.

Asterisk paces what it is sent: a prompt goes out at once (in chunks under the 64 KiB frame limit),
framed by ``MARK_MEDIA`` commands whose ``MEDIA_MARK_PROCESSED`` events say when its first frame was
played (``play()``'s future) and when the last one was (``drained()``). A barge-in sends ``FLUSH_MEDIA``:
Asterisk drops everything queued. ``MEDIA_XOFF``/``MEDIA_XON`` pause and resume sending.

Asterisk sends nothing while the caller is silent; gaps are filled with silence frames by arrival time
(:class:`ArrivalTimeline`) so a recording keeps its timeline. Malformed messages are counted and
dropped; a burst of them, a wrong ``MEDIA_START`` or a lost connection make the endpoint *failed*:
``drained()`` then raises :class:`WebSocketMediaError` (a ``ConnectionError``), which the call turns
into a handoff to a human.
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

from ari_agent.errors import MediaError, TelephonyError
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import SAMPLES_PER_FRAME, Pcm, Resampler, array_to_slin_le, resample, slin_le_to_array
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
        self._down = Resampler(WIRE_RATE, LOOP_RATE, "LQ")
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
        self.stop_playback(flush_remote=False)

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

    def flush_received(self) -> None:
        tail = np.concatenate((self._pending, self._down.flush()))
        self._pending = np.zeros(0, dtype=np.int16)
        if tail.size:
            frame = np.zeros(SAMPLES_PER_FRAME, dtype=np.int16)
            frame[: min(tail.size, SAMPLES_PER_FRAME)] = tail[:SAMPLES_PER_FRAME]
            self._emit(frame)

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

