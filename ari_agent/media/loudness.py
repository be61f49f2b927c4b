"""How loud a caller spoke, against how loud they usually speak: a raised voice is one cue of frustration.

Pure and cheap: one level per utterance (computed once, at the end of the turn, from the audio the
endpointer already holds), never a per-frame judgement. Line gain, handset and distance differ by
caller by 20 dB and more, so an absolute level says nothing; the comparison is with the same caller's
median of their earlier turns.

The utterance's level is the 80th percentile of its 20 ms frames' RMS levels (dBFS): the pauses
between words and the silence around them do not pull it down, and one click does not push it up.
"""

from __future__ import annotations

import statistics

import numpy as np
import numpy.typing as npt

from ari_agent.media.pcm import SAMPLES_PER_FRAME, SILENCE_DB, as_pcm16

LEVEL_PERCENTILE = 80.0
MIN_FRAMES = 10  # under 200 ms of audio: too short to judge
MIN_LEVEL_DB = -55.0  # quieter than this: nothing was said loud enough to measure (or only the line's hiss)
BASELINE_TURNS = 2  # earlier turns needed before a turn is compared with them
BASELINE_KEEP = 20  # the most recent turns the median is taken over


def utterance_level_db(audio: npt.ArrayLike) -> float | None:
    """The speech level of one utterance (8 kHz int16), dBFS; None when it is too short or too quiet."""
    samples = as_pcm16(audio, "utterance_level_db")
    frames = samples.size // SAMPLES_PER_FRAME
    if frames < MIN_FRAMES:
        return None
    x = samples[: frames * SAMPLES_PER_FRAME].astype(np.float64).reshape(frames, SAMPLES_PER_FRAME)
    power = np.mean(np.square(x), axis=1)
    db = np.maximum(10.0 * np.log10(np.maximum(power, 1e-12) / (32768.0 ** 2)), SILENCE_DB)
    level = float(np.percentile(db, LEVEL_PERCENTILE))
    return level if level >= MIN_LEVEL_DB else None


class LevelBaseline:
    """One caller's running baseline: how much louder each turn is than their median so far."""

    def __init__(self, *, min_turns: int = BASELINE_TURNS, keep: int = BASELINE_KEEP) -> None:
        self.min_turns = min_turns
        self.keep = keep
        self.levels: list[float] = []

    def observe(self, level_db: float | None) -> float | None:
        """``level_db`` over the median of the earlier turns (dB; negative: quieter), then remembered;
        None when it was not measured or there are fewer than ``min_turns`` earlier turns."""
        if level_db is None:
            return None
        over = level_db - statistics.median(self.levels) if len(self.levels) >= self.min_turns else None
        self.levels = [*self.levels, level_db][-self.keep:]
        return round(over, 1) if over is not None else None
