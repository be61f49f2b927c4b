"""Recognition floors on simulated callers (flite / espeak-ng through G.711 at 8 kHz), through the real
endpointer and pocketsphinx. The floors are the measured figures less about one utterance: synthesis,
line noise (seeded) and decoding are deterministic, so a drop means the recogniser got worse.

The full per-voice table is `slow` (ARI_AGENT_SLOW_TESTS=1); ``python -m tests.unit.speech.bench`` prints it.
"""

from __future__ import annotations

import pytest

from ari_agent.config import PocketsphinxSettings

from .bench import run_voice


def test_rms_voice_subset_floors() -> None:
    res = run_voice("flite:rms", PocketsphinxSettings(), n_yes=5, n_digits=5, n_open=8)
    assert res["yes_no"].correct >= 4  # measured 5/5
    assert res["digits"].correct >= 4  # measured 5/5 strings fully right
    assert res["open"].wer <= 0.15  # measured 10.3 % on phrasings absent from the LM's training text


# voice: (yes/no polarity right of 10, 4-digit strings right of 10, open-turn WER ceiling). Measured again
# 2026-12-07, once the test audio's resampling became deterministic (media/pcm.py: soxr's int16 output had been
# dithered at random, so these figures moved from run to run; rms's open WER went 10.6 % -> 14.1 % = 20 of 142
# words, the others within a word or two of before).
FLOORS = {
    "flite:rms": (9, 9, 0.17),  # measured 10, 10, 14.1 %
    "flite:slt": (8, 4, 0.28),  # measured 9, 4, 23.9 %
    "flite:awb": (9, 9, 0.16),  # measured 9, 9, 11.3 %
    "flite:kal16": (9, 6, 0.23),  # measured 10, 7, 19.7 %
    "espeak:en-us": (9, 2, 0.47),  # measured 10, 2, 42.3 %
}


@pytest.mark.slow
@pytest.mark.parametrize("voice", sorted(FLOORS))
def test_full_table_floors_per_voice(voice: str) -> None:
    yes_no, digits, open_wer = FLOORS[voice]
    res = run_voice(voice, PocketsphinxSettings())
    assert res["yes_no"].correct >= yes_no
    assert res["digits"].correct >= digits
    assert res["open"].wer <= open_wer
    # (decoding time is a benchmark figure, `python -m tests.unit.speech.bench`, not a test assertion:
    # a p90 < 100 ms check here failed whenever the machine was busy)


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["flite:rms", "flite:awb", "flite:kal16", "flite:slt"])
def test_domain_lm_beats_the_generic_lm_on_the_open_turn(voice: str) -> None:
    domain = run_voice(voice, PocketsphinxSettings(), n_yes=0, n_digits=0)["open"]
    generic = run_voice(voice, PocketsphinxSettings(), n_yes=0, n_digits=0, open_kind="free_text")["open"]
    assert domain.wer < generic.wer / 2  # measured e.g. rms 10.6 % vs 62.7 %
