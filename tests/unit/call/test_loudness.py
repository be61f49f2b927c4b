"""Raised voice: one level per utterance from synthetic audio, against the caller's own median; the
listener passes it in the heard event and the engine counts a shouted "agent!" toward frustration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from ari_agent.media.loudness import LevelBaseline, utterance_level_db
from ari_agent.media.pcm import Pcm

from .conftest import Harness, buzz

Start = Callable[..., Awaitable[Harness]]
RATE = 8000


def _speech(seconds: float, amplitude: float, *, seed: int = 1) -> Pcm:
    """Speech-like audio: a 140 Hz harmonic buzz under a syllable-rate envelope, with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    voice = np.zeros(t.size)
    for k in range(1, 20):
        voice += (1 / k) * np.sin(2 * np.pi * 140 * k * t)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    x = voice / np.max(np.abs(voice)) * envelope * amplitude + rng.normal(0, 30, t.size)
    out: Pcm = np.clip(x, -32768, 32767).astype(np.int16)
    return out


def _silence(seconds: float) -> Pcm:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def test_the_level_follows_the_voice_not_the_pauses_around_it() -> None:
    quiet = utterance_level_db(_speech(1.0, 2000))
    loud = utterance_level_db(_speech(1.0, 2000 * 10 ** (10 / 20)))  # +10 dB
    assert quiet is not None and loud is not None
    assert loud - quiet == pytest.approx(10.0, abs=0.5)
    padded = utterance_level_db(np.concatenate([_silence(0.3), _speech(1.0, 2000), _silence(0.5)]))
    assert padded == pytest.approx(quiet, abs=1.5)  # leading and trailing silence do not pull it down
    assert utterance_level_db(_speech(0.1, 2000)) is None  # too short to judge
    assert utterance_level_db(_silence(1.0)) is None  # nothing said
    assert utterance_level_db(np.random.default_rng(2).normal(0, 20, RATE).astype(np.int16)) is None  # hiss


def test_each_turn_is_compared_with_the_callers_median_of_earlier_turns() -> None:
    base = LevelBaseline()
    levels = [-30.0, -28.0, -29.0, -18.0, -31.0, None]
    assert [base.observe(x) for x in levels] == [None, None, 0.0, 11.0, -2.5, None]
    # a quiet caller shouting and a loud caller speaking normally: the caller's own median decides
    quiet, loud = LevelBaseline(), LevelBaseline()
    for _ in range(3):
        quiet.observe(utterance_level_db(_speech(1.0, 500)))
        loud.observe(utterance_level_db(_speech(1.0, 12000)))
    shout = quiet.observe(utterance_level_db(_speech(1.0, 2000)))  # still quieter than the loud caller's normal
    normal = loud.observe(utterance_level_db(_speech(1.0, 12000, seed=3)))
    assert shout is not None and shout >= 10 and normal is not None and abs(normal) < 1


async def test_a_shouted_agent_is_a_frustrated_caller_a_spoken_one_is_a_request(start_call: Start) -> None:
    async def turns(gains: list[float], texts: list[str]) -> tuple[list[object], object]:
        h = await start_call(texts)
        for n, gain in enumerate(gains, 1):
            await h.until_listening(n)
            for i in range(400 // 20):
                h.line._push((buzz(i).astype(np.float64) * gain).astype(np.int16))
            await h.line.silence(700)
        await h.finished()
        heard = [e.get("raised_db") for e in h.conversation.events if e["kind"] == "heard"]
        return heard, h.line.handoffs[0]

    texts = ["where is my order", "four five six seven", "agent"]
    heard, handoff = await turns([0.4, 0.4, 0.4 * 10 ** (11 / 20)], texts)  # the last turn 11 dB louder
    assert heard[:2] == [None, None] and heard[2] == pytest.approx(11.0, abs=1.0)
    assert handoff.reason == "frustration" and "raised voice" in handoff.context["reason"]  # type: ignore[attr-defined]
    heard, handoff = await turns([0.4, 0.4, 0.4 * 10 ** (3 / 20)], texts)  # a little louder: just a request
    assert heard[2] == pytest.approx(3.0, abs=1.0)
    assert handoff.reason == "caller_request"  # type: ignore[attr-defined]
