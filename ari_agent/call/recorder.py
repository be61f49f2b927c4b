"""Per-call recording of the audio the agent received, written once at the end of the call."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ari_agent.media.jitter import AudioFrame


class CallRecorder:
    def __init__(self, rate: int = 8000, max_seconds: float = 900.0) -> None:
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
        """Write a mono 16-bit WAV (blocking: call from a thread)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(self.pcm().astype("<i2").tobytes())
        return path
