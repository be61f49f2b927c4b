"""Per-call recording of the audio the agent received, written once at the end of the call.

With ``seal`` (``governance.at_rest.recording_seal``: ``storage.encrypt_at_rest``) the WAV is encrypted
before it touches the disk and written as ``<name>.enc``."""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ari_agent.governance.at_rest import SEALED_SUFFIX, write_atomic
from ari_agent.media.jitter import AudioFrame


class CallRecorder:
    def __init__(self, rate: int = 8000, max_seconds: float = 900.0,
                 seal: Callable[[bytes], bytes] | None = None) -> None:
        self.seal = seal
        self.rate = rate
        self.max_samples = int(rate * max_seconds)
        self._chunks: list[npt.NDArray[np.int16]] = []
        self.samples = 0
        self.concealed_frames = 0

    def add(self, frame: AudioFrame) -> None:
        if frame.concealed:
            self.concealed_frames += 1
        if self.samples >= self.max_samples:
            return
        self._chunks.append(frame.pcm)
        self.samples += frame.pcm.size

    def pcm(self) -> npt.NDArray[np.int16]:
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks).astype(np.int16)

    def write(self, path: Path) -> Path:
        """Write a mono 16-bit WAV (blocking: call from a thread); sealed: ``path`` + ``.enc``, mode 0600."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.seal is not None:
            buf = io.BytesIO()
            self._wav(buf)
            return write_atomic(path.with_name(path.name + SEALED_SUFFIX), self.seal(buf.getvalue()))
        with path.open("wb") as f:
            self._wav(f)
        return path

    def _wav(self, target: BinaryIO) -> None:
        with wave.open(target, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.pcm().astype("<i2").tobytes())
