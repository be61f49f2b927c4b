"""Whether a turn says the code on record, from the worker's two constrained decodes (pure logic)."""

from __future__ import annotations

import math

from ari_agent.speech.code_check import CheckLimits, CodeCheck, matches


def check(heard: str | None, heard_score: float, record_score: float, weakest: float,
          error: str | None = None) -> CodeCheck:
    return CodeCheck("SW1A1AA", heard, heard_score, record_score, weakest, error=error)


def test_the_record_as_likely_as_the_best_code_found_and_sure_at_each_position() -> None:
    assert matches(check("SW1A1AA", -8.0, -8.0, 0.4))  # the free decode wrote the record itself
    assert matches(check("S181AS", -33.7, -21.7, -1.8))  # the record explains the audio better than what greedy found
    assert matches(check("SW1A1AB", -10.0, -11.5, -2.5))  # within the limits on both counts


def test_a_record_much_less_likely_or_doubtful_at_one_position_is_refused() -> None:
    assert not matches(check("IM187MM", -45.0, -103.6, -1.9))  # far less likely than what was heard
    assert not matches(check("SW1A1AB", -10.0, -10.5, -3.5))  # another letter preferred by 3.5 somewhere
    limits = CheckLimits(max_gap=0.5, max_doubt=1.0)
    assert not matches(check("SW1A1AB", -10.0, -11.0, -0.5), limits)
    assert matches(check("SW1A1AB", -10.0, -10.2, -0.5), limits)


def test_no_record_written_or_an_engine_error_never_matches() -> None:
    assert not matches(check(None, -45.0, -math.inf, -5.0))  # silence: no code at all, the record not writable
    assert not matches(check("SW1A1AA", -8.0, -8.0, 0.4, error="whisper worker 12 timed out"))
    assert check(None, -45.0, -math.inf, 0.0).gap == math.inf
    assert check(None, -45.0, -20.0, 0.0).gap == 0.0  # no free code, but the record was written
