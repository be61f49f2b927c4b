from __future__ import annotations

import numpy as np
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.vad import Vad, VadConfig
from tests.unit.speech.corpus import caller_audio

FRAME = 160


def frames(pcm: np.ndarray) -> list[np.ndarray]:
    return [pcm[i : i + FRAME] for i in range(0, pcm.size - FRAME + 1, FRAME)]


def noise(ms: int, db: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, 32768 * 10 ** (db / 20), ms * 8), -32768, 32767).astype(np.int16)


def test_speech_is_found_and_silence_is_not() -> None:
    audio = caller_audio("four five six seven", "flite:rms", lead_ms=600, trail_ms=600)
    vad = Vad()
    verdicts = [vad.is_speech(f) for f in frames(audio)]
    lead, trail = 600 // 20, 600 // 20
    assert not any(verdicts[: lead - 2])  # quiet line before the speech
    assert not any(verdicts[-trail + 5 :])
    speech = verdicts[lead : len(verdicts) - trail]
    assert sum(speech) / len(speech) > 0.6


def test_steady_background_stops_counting_as_speech() -> None:
    """A fan switched on: loud steady noise. The floor climbs to it and the gate closes."""
    vad = Vad(VadConfig(mode=0))  # the most permissive webrtcvad mode
    loud = noise(4000, -30.0)
    verdicts = [vad.analyse(f) for f in frames(loud)]
    assert verdicts[-1].floor_db > -33.0
    assert sum(v.speech for v in verdicts[-95:]) == 0  # from one window (2 s) on


def test_floor_follows_quiet_down_fast() -> None:
    vad = Vad(VadConfig(initial_floor_db=-20.0))
    for f in frames(noise(40, -70.0)):
        vad.analyse(f)
    assert vad.noise_floor_db < -60.0


def test_tones_below_the_absolute_minimum_are_not_speech() -> None:
    t = np.arange(FRAME * 50) / 8000
    tone = (32768 * 10 ** (-62 / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    vad = Vad(VadConfig(mode=0, initial_floor_db=-100.0))
    assert not any(vad.is_speech(f) for f in frames(tone))


def test_bad_frames_and_config_are_refused() -> None:
    with pytest.raises(MediaError):
        Vad().is_speech(np.zeros(100, dtype=np.int16))
    with pytest.raises(MediaError):
        VadConfig(mode=4)
    with pytest.raises(MediaError):
        VadConfig(floor_window_ms=0)


def test_talking_does_not_lift_the_floor() -> None:
    audio = caller_audio("I'd like to check the status of my order and when it will be delivered", "flite:awb",
                         lead_ms=300, trail_ms=300)
    vad = Vad()
    floors = [vad.analyse(f).floor_db for f in frames(audio)]
    assert max(floors) < -50.0
