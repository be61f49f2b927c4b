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
    min_speech_ms: int = 60, bridge_gap_ms: int = 350, noise_margin_db: float = 10.0,
) -> list[Segment]:
    """Segments whose energy is above ``threshold_dbfs``; gaps shorter than ``bridge_gap_ms`` (pauses
    between words) are bridged, bursts shorter than ``min_speech_ms`` dropped.

    A segment that never falls below the threshold (its quietest 5 % of windows above it) is steady line
    noise with speech somewhere in it: a noisy caller at 20 dB SNR sits near -40 dBFS between words, so the
    whole turn, noise tail included, read as speech and its end came after the agent had started to answer
    (negative response times). Inside such a segment the speech is what stands ``noise_margin_db`` above
    that floor. Clean speech dips far below the threshold between words and is segmented as before."""
    env = energy_envelope(pcm, rate, win_ms)
    if env.size == 0:
        return []
    db = 20 * np.log10(np.maximum(env, 1e-9) / 32768.0)
    runs: list[tuple[int, int]] = []
    for a, b in _runs(db > threshold_dbfs, win_ms, bridge_gap_ms):
        floor = float(np.percentile(db[a:b], 5))
        if floor <= threshold_dbfs:
            runs.append((a, b))
            continue
        runs += [(a + i, a + j) for i, j in _runs(db[a:b] > floor + noise_margin_db, win_ms, bridge_gap_ms)]
    w = win_ms / 1000.0
    return [Segment(a * w, b * w) for a, b in runs if (b - a) * win_ms >= min_speech_ms]


def _runs(active: npt.NDArray[np.bool_], win_ms: int, bridge_gap_ms: int) -> list[tuple[int, int]]:
    """Runs of active windows, gaps shorter than ``bridge_gap_ms`` bridged: (first, end) window indices."""
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
    return [(a, b) for a, b in segs]


def first_onset_after(segments: list[Segment], t: float) -> Segment | None:
    for seg in segments:
        if seg.start_s >= t:
            return seg
    return None
