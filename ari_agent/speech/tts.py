"""Text-to-speech behind one small protocol, plus the prompt cache and the stream of rendered pieces.

Embedded default: espeak-ng, run as a subprocess (GPL-3 code stays out of our process; first audio
in ~8 ms). Output is resampled to the 8 kHz line rate with soxr. Fixed prompts are rendered once and
cached on disk, keyed by a hash of engine, voice, rate, line rate and text.

Streaming: :meth:`PromptCache.stream` renders a text piece by piece, in order, in a worker thread, and
hands each piece over as soon as it is rendered, so the first plays while the next render. An engine
that sets ``streams_clauses = True`` (a neural voice: hundreds of milliseconds per sentence) is cut at
its clauses (:mod:`ari_agent.speech.clauses`), any other by sentence. A fixed prompt already rendered
(whole, or sentence by sentence) comes out of the cache as it is. Closing the stream (a barge-in)
cancels the pieces not rendered yet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from ari_agent.errors import AriAgentError, MediaError
from ari_agent.media.pcm import Pcm, trim_leading_silence, wav_to_line_rate
from ari_agent.speech.clauses import sentence_clauses, split_sentences

__all__ = ["LINE_RATE", "CancelToken", "EspeakNg", "PromptCache", "SpeechChunk", "SpeechStream", "TextToSpeech",
           "TtsError", "split_sentences", "wav_bytes_to_line_rate"]

log = logging.getLogger(__name__)
LINE_RATE = 8000


class TtsError(AriAgentError):
    """The speech synthesiser failed or is not installed."""


class TextToSpeech(Protocol):
    """A voice. Optional: a class attribute ``streams_clauses = True`` asks :meth:`PromptCache.stream` to
    cut texts at clauses rather than sentences (a voice slow enough for the cut to matter); a method
    ``synthesize_cancellable(text, cancel: CancelToken) -> Pcm`` that gives up (raising TtsError) once
    ``cancel`` is set lets a closed stream stop the piece it is rendering, not only the ones after it."""

    cache_key: str

    def synthesize(self, text: str) -> Pcm:
        """Render ``text`` as int16 samples at the 8 kHz line rate (blocking; run in a thread)."""
        ...


class CancelToken:
    """Set once, from any thread: the rendering it was handed to is no longer wanted. Hooks registered
    with :meth:`on_cancel` run at that moment (at once when it is set already)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._hooks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._set

    def cancel(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        with self._lock:
            if not self._set:
                self._hooks.append(hook)
                return
        hook()


@dataclass(frozen=True)
class SpeechChunk:
    """One rendered piece of a text: its words and its audio (int16 at the line rate)."""

    text: str
    pcm: Pcm


class SpeechStream:
    """The pieces of one text, rendered in order, one at a time in a worker thread, each handed over as soon
    as it is ready (so the caller plays piece 1 while piece 2 renders). ``async for`` or :meth:`next`.

    :meth:`aclose` (or leaving ``async with``) cancels every piece not rendered yet, and sets ``cancel``
    (handed to ``render``): an engine that can stop midway stops the piece it is rendering, any other
    finishes it in its thread and it is dropped. ``lookup`` answers pieces already rendered (memory only)
    without a thread hop; a rendering error is raised by :meth:`next`, in order."""

    def __init__(self, pieces: list[str], render: Callable[[str, CancelToken], Pcm],
                 lookup: Callable[[str], Pcm | None] | None = None) -> None:
        self.pieces = list(pieces)
        self._render = render
        self._lookup = lookup
        self.cancel = CancelToken()
        self._ready: asyncio.Queue[SpeechChunk | Exception | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self.rendered = 0  # pieces rendered (by the engine or from memory) so far
        self.closed = False

    def start(self) -> None:
        """Begin rendering (the first :meth:`next` does it too)."""
        if self._task is None and not self.closed:
            self._task = asyncio.get_running_loop().create_task(self._produce(), name="tts-stream")

    async def _produce(self) -> None:
        try:
            for piece in self.pieces:
                pcm = self._lookup(piece) if self._lookup is not None else None
                if pcm is None:
                    pcm = await asyncio.to_thread(self._render, piece, self.cancel)
                self.rendered += 1
                self._ready.put_nowait(SpeechChunk(piece, pcm))
        except Exception as exc:  # the engine failed: raised to the reader, after the pieces before it
            self._ready.put_nowait(exc)
            return
        self._ready.put_nowait(None)

    def ready(self) -> bool:
        """True when :meth:`next` will not wait."""
        return self._done or self.closed or not self._ready.empty()

    async def next(self) -> SpeechChunk | None:
        """The next piece, waiting for its rendering; None after the last (and once closed)."""
        if self._done or self.closed:
            return None
        self.start()
        item = await self._ready.get()
        if item is None or isinstance(item, Exception):
            self._done = True
            if item is not None:
                raise item
            return None
        return item

    def __aiter__(self) -> SpeechStream:
        return self

    async def __anext__(self) -> SpeechChunk:
        chunk = await self.next()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Stop: no piece not yet rendered is rendered."""
        self.closed = True
        self.cancel.cancel()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> SpeechStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class EspeakNg:
    def __init__(self, voice: str = "en-us", rate_wpm: int = 165, binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise TtsError(f"{binary} is not installed (apt-get install espeak-ng)")
        self.binary = path
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.cache_key = f"espeak-ng:{voice}:{rate_wpm}:{LINE_RATE}"

    def synthesize(self, text: str) -> Pcm:
        res = subprocess.run(
            [self.binary, "-v", self.voice, "-s", str(self.rate_wpm), "--stdout", text],
            capture_output=True, timeout=30, check=False,
        )
        if res.returncode != 0 or not res.stdout:
            raise TtsError(f"espeak-ng failed (exit {res.returncode}): {res.stderr.decode(errors='replace')[:200]}")
        return wav_bytes_to_line_rate(res.stdout)


def wav_bytes_to_line_rate(data: bytes) -> Pcm:
    """A synthesiser's 16-bit WAV output (as bytes) -> int16 samples at 8 kHz."""
    try:
        return wav_to_line_rate(data)
    except MediaError as exc:
        raise TtsError(f"the synthesiser returned audio that cannot be used: {exc}") from None


class PromptCache:
    """The one cache of rendered speech: fixed prompts rendered once and kept in memory and on disk
    (``<sha256>.s16`` raw 8 kHz), and an LRU of recent other sentences (memory only). What the engine renders
    is kept without its inaudible lead-in (:func:`~ari_agent.media.pcm.trim_leading_silence`): the caller
    hears a reply as soon as it plays."""

    def __init__(self, tts: TextToSpeech, cache_dir: Path, recent_sentences: int = 512, *,
                 clauses: bool | None = None) -> None:
        self.tts = tts
        self.cache_dir = cache_dir
        self._mem: dict[str, Pcm] = {}
        self._recent: collections.OrderedDict[str, Pcm] = collections.OrderedDict()
        self._recent_lock = threading.Lock()  # sentences render in several threads at once (calls)
        self._recent_max = recent_sentences
        # Streams cut at clauses (not sentences): the engine's choice unless told.
        self.clauses = bool(getattr(tts, "streams_clauses", False)) if clauses is None else clauses

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.tts.cache_key}\n{text}".encode()).hexdigest()

    def path(self, text: str) -> Path:
        return self.cache_dir / f"{self.key(text)}.s16"

    def cached(self, text: str) -> Pcm | None:
        """A prompt already rendered in this process (no disk access: safe on the call path)."""
        return self._mem.get(self.key(text))

    def get(self, text: str) -> Pcm:
        key = self.key(text)
        hit = self._mem.get(key)
        if hit is not None:
            return hit
        path = self.path(text)
        try:
            pcm = trim_leading_silence(np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16))
        except OSError:
            pcm = trim_leading_silence(self.tts.synthesize(text))
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(pcm.astype("<i2").tobytes())
                tmp.replace(path)
            except OSError as exc:
                log.warning("prompt cache not writable (%s); keeping prompt in memory only", exc)
        self._mem[key] = pcm
        return pcm

    def sentence(self, text: str, cancel: CancelToken | None = None) -> Pcm:
        """Blocking (run in a thread): a fixed prompt from memory, a recent sentence, else the engine.
        Never touches the disk, so it is safe on the call path. ``cancel``: handed to an engine that can
        stop midway (``synthesize_cancellable``); a cancelled rendering raises TtsError."""
        hit = self.remembered(text)
        if hit is not None:
            return hit
        cancellable = getattr(self.tts, "synthesize_cancellable", None)
        pcm = trim_leading_silence(cancellable(text, cancel) if cancel is not None and cancellable is not None
                                   else self.tts.synthesize(text))
        with self._recent_lock:
            self._recent[text] = pcm
            while len(self._recent) > self._recent_max:
                self._recent.popitem(last=False)
        return pcm

    def remembered(self, text: str) -> Pcm | None:
        """A fixed prompt or a recent sentence already rendered (memory only: safe on the event loop)."""
        fixed = self.cached(text)
        if fixed is not None:
            return fixed
        with self._recent_lock:
            hit = self._recent.get(text)
            if hit is not None:
                self._recent.move_to_end(text)
            return hit

    def plan(self, text: str) -> list[str]:
        """The pieces :meth:`stream` renders ``text`` in: the whole text when it is a fixed prompt rendered
        whole; else sentence by sentence, a sentence not rendered already cut at its clauses when the
        engine streams clauses. Joined with spaces they are the text's words."""
        if self.cached(text) is not None:
            return [text]
        pieces: list[str] = []
        for sentence in split_sentences(text):
            if self.clauses and self.cached(sentence) is None:
                pieces.extend(sentence_clauses(sentence))
            else:
                pieces.append(sentence)
        return pieces

    def stream(self, text: str) -> SpeechStream:
        """``text`` piece by piece (:meth:`plan`), each handed over as soon as it is rendered."""
        return SpeechStream(self.plan(text), self.sentence, lookup=self.remembered)

    async def warm(self, texts: list[str]) -> None:
        """Render every fixed prompt at start-up, off the event loop."""
        for text in texts:
            await asyncio.to_thread(self.get, text)
