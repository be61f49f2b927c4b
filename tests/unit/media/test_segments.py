"""Speech segments by energy (media/segments.py): where a caller's talk starts and stops in a recording,
the basis of every caller-side latency figure."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ari_agent.media.segments import Segment, speech_segments

RATE = 8000


def _level(dbfs: float) -> float:
    return 32768.0 * 10 ** (dbfs / 20)


def _speech(seconds: float, dbfs: float = -20.0) -> npt.NDArray[np.float64]:
    """A voiced-sounding burst: a 180 Hz tone with a 4 Hz syllable envelope that never drops to silence."""
    t = np.arange(int(seconds * RATE)) / RATE
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return np.asarray(_level(dbfs) * np.sqrt(2) * env * np.sin(2 * np.pi * 180 * t))


def _pcm(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _near(seg: Segment, start: float, end: float, tol: float = 0.05) -> bool:
    return abs(seg.start_s - start) <= tol and abs(seg.end_s - end) <= tol


def test_clean_speech_with_a_short_pause_is_one_segment_and_a_long_pause_two() -> None:
    gap = np.zeros(int(0.2 * RATE))
    silence = np.zeros(int(0.5 * RATE))
    pcm = _pcm(np.concatenate([silence, _speech(1.0), gap, _speech(0.5), silence, silence, _speech(0.4), silence]))
    segs = speech_segments(pcm)
    assert len(segs) == 2
    assert _near(segs[0], 0.5, 2.2) and _near(segs[1], 3.2, 3.6)


def test_speech_in_steady_line_noise_ends_where_the_speech_ends_not_where_the_noise_does() -> None:
    # A noisy caller's turn (20 dB SNR): noise near -40 dBFS, above the -45 dBFS threshold, before, between
    # and after the words, with digital silence around the turn as in a call recording.
    rng = np.random.default_rng(7)
    turn = _level(-40.0) * rng.standard_normal(int(2.6 * RATE))
    turn[int(0.4 * RATE):int(1.6 * RATE)] += _speech(1.2)
    silence = np.zeros(int(0.5 * RATE))
    segs = speech_segments(_pcm(np.concatenate([silence, turn, silence])))
    assert len(segs) == 1
    assert _near(segs[0], 0.9, 2.1), segs  # not 0.5 .. 3.1, the noise's extent


def test_noise_alone_above_the_threshold_is_not_speech() -> None:
    rng = np.random.default_rng(3)
    noise = _level(-40.0) * rng.standard_normal(2 * RATE)
    assert speech_segments(_pcm(noise)) == []


def test_empty_and_short_bursts() -> None:
    assert speech_segments(np.zeros(0, dtype=np.int16)) == []
    click = np.concatenate([np.zeros(RATE), _speech(0.03), np.zeros(RATE)])
    assert speech_segments(_pcm(click)) == []
