"""Speech segments in a recording, by short-term energy: where talk starts and stops.

Used to measure latency on the line from caller-side recordings: the end of a caller utterance in
``said.wav`` and the start of the agent's answer in ``heard.wav`` (both written by Asterisk's
MixMonitor on the caller's channel, so they share one timeline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ari_agent.media.pcm import energy_envelope


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def speech_segments(
    pcm: npt.NDArray[np.int16], rate: int = 8000, *, win_ms: int = 10, threshold_dbfs: float = -45.0,
    min_speech_ms: int = 60, bridge_gap_ms: int = 350,
) -> list[Segment]:
    """Segments whose energy is above ``threshold_dbfs``; gaps shorter than ``bridge_gap_ms`` (pauses
    between words) are bridged, bursts shorter than ``min_speech_ms`` dropped."""
    env = energy_envelope(pcm, rate, win_ms)
    if env.size == 0:
        return []
    db = 20 * np.log10(np.maximum(env, 1e-9) / 32768.0)
    active = db > threshold_dbfs
    segs: list[list[int]] = []
    i = 0
    n = active.size
    while i < n:
        if active[i]:
            j = i
            while j < n and active[j]:
                j += 1
            if segs and (i - segs[-1][1]) * win_ms < bridge_gap_ms:
                segs[-1][1] = j
            else:
                segs.append([i, j])
            i = j
        else:
            i += 1
    w = win_ms / 1000.0
    return [Segment(a * w, b * w) for a, b in segs if (b - a) * win_ms >= min_speech_ms]


def first_onset_after(segments: list[Segment], t: float) -> Segment | None:
    for seg in segments:
        if seg.start_s >= t:
            return seg
    return None
