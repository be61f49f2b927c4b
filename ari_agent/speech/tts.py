"""Text-to-speech behind one small protocol, plus the prompt cache.

Embedded default: espeak-ng, run as a subprocess (GPL-3 code stays out of our process; first audio
in ~8 ms). Output is resampled to the 8 kHz line rate with soxr. Fixed prompts are rendered once and
cached on disk, keyed by a hash of engine, voice, rate, line rate and text.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

import numpy as np

from ari_agent.errors import AriAgentError, MediaError
from ari_agent.media.pcm import Pcm, wav_to_line_rate

log = logging.getLogger(__name__)
LINE_RATE = 8000
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a prompt: synthesised and played one by one (the first plays while the rest render)."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


class TtsError(AriAgentError):
    """The speech synthesiser failed or is not installed."""


class TextToSpeech(Protocol):
    cache_key: str

    def synthesize(self, text: str) -> Pcm:
        """Render ``text`` as int16 samples at the 8 kHz line rate (blocking; run in a thread)."""
        ...


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
    (``<sha256>.s16`` raw 8 kHz), and an LRU of recent other sentences (memory only)."""

    def __init__(self, tts: TextToSpeech, cache_dir: Path, recent_sentences: int = 512) -> None:
        self.tts = tts
        self.cache_dir = cache_dir
        self._mem: dict[str, Pcm] = {}
        self._recent: collections.OrderedDict[str, Pcm] = collections.OrderedDict()
        self._recent_max = recent_sentences

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
            pcm = np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16)
        except OSError:
            pcm = self.tts.synthesize(text)
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(pcm.astype("<i2").tobytes())
                tmp.replace(path)
            except OSError as exc:
                log.warning("prompt cache not writable (%s); keeping prompt in memory only", exc)
        self._mem[key] = pcm
        return pcm

    def sentence(self, text: str) -> Pcm:
        """Blocking (run in a thread): a fixed prompt from memory, a recent sentence, else the engine.
        Never touches the disk, so it is safe on the call path."""
        fixed = self.cached(text)
        if fixed is not None:
            return fixed
        hit = self._recent.get(text)
        if hit is not None:
            self._recent.move_to_end(text)
            return hit
        pcm = self.tts.synthesize(text)
        self._recent[text] = pcm
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)
        return pcm

    async def warm(self, texts: list[str]) -> None:
        """Render every fixed prompt at start-up, off the event loop."""
        for text in texts:
            await asyncio.to_thread(self.get, text)
