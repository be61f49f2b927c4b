"""Voice activity detection for 8 kHz telephone frames: webrtcvad gated by energy over a noise floor.

webrtcvad alone calls 12–17 % of non-speech frames speech (line hiss, clicks, hum); the energy gate
asks, in addition, that a frame stand ``margin_db`` above a tracked noise floor (and above an absolute
``min_speech_db``). The floor is the quietest frame of the last ``floor_window_ms`` (minimum
statistics): speech always has quieter moments between syllables and words, so talking does not
lift it, while a steady new background (a fan switched on) becomes the floor within one window and
stops counting as speech. The window starts filled with ``initial_floor_db``.

Pure: no I/O, one small object per call. ``analyse`` gives the details, ``is_speech`` the verdict.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy.typing as npt
import webrtcvad

from ari_agent.errors import MediaError
from ari_agent.media.pcm import SAMPLE_RATE, as_pcm16, frame_energy_db

_FRAME_SIZES: Final = (80, 160, 240)  # 10, 20, 30 ms at 8 kHz: what webrtcvad accepts


@dataclass(frozen=True)
class VadConfig:
    mode: int = 2
    """webrtcvad aggressiveness 0 (most speech) .. 3 (least false speech)."""
    margin_db: float = 9.0
    """A speech frame stands at least this far above the tracked noise floor."""
    min_speech_db: float = -55.0
    """Frames quieter than this (dBFS) are never speech, whatever the floor."""
    initial_floor_db: float = -65.0
    floor_window_ms: int = 2000
    """The noise floor is the quietest frame of this much recent audio."""

    def __post_init__(self) -> None:
        if self.mode not in (0, 1, 2, 3):
            raise MediaError(f"VAD mode must be 0..3, got {self.mode!r}")
        if self.floor_window_ms < 20:
            raise MediaError(f"VAD floor_window_ms must be at least one frame, got {self.floor_window_ms!r}")


@dataclass(frozen=True)
class VadFrame:
    """One frame's verdict with the measures behind it."""

    speech: bool
    voiced: bool  # webrtcvad's own verdict
    energy_db: float
    floor_db: float  # the noise floor this frame was judged against

    @property
    def snr_db(self) -> float:
        return self.energy_db - self.floor_db


class Vad:
    """Frame-by-frame speech/non-speech for one 8 kHz stream (not thread-safe; one per call)."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self._vad = webrtcvad.Vad(self.config.mode)
        self._window: deque[float] = deque(maxlen=max(1, self.config.floor_window_ms // 10))
        self.reset()

    @property
    def noise_floor_db(self) -> float:
        return min(self._window)

    def reset(self) -> None:
        """Forget the tracked noise floor (a new, unrelated stream)."""
        self._window.clear()
        self._window.extend([self.config.initial_floor_db] * (self._window.maxlen or 1))

    def analyse(self, frame: npt.ArrayLike) -> VadFrame:
        """Judge one 10, 20 or 30 ms frame of 8 kHz int16 samples and update the noise floor."""
        samples = as_pcm16(frame, "VAD frame")
        if samples.size not in _FRAME_SIZES:
            raise MediaError(f"VAD frame must hold 80, 160 or 240 samples at 8 kHz, got {samples.size}")
        cfg = self.config
        energy = frame_energy_db(samples)
        floor = min(self._window)
        voiced = bool(self._vad.is_speech(samples.tobytes(), SAMPLE_RATE))
        loud_enough = energy >= cfg.min_speech_db and energy >= floor + cfg.margin_db
        speech = voiced and loud_enough
        # One entry per 10 ms of audio, so the window length holds whatever the frame size.
        for _ in range(max(1, samples.size // 80)):
            self._window.append(energy)
        return VadFrame(speech=speech, voiced=voiced, energy_db=energy, floor_db=floor)

    def is_speech(self, frame: npt.ArrayLike) -> bool:
        return self.analyse(frame).speech
