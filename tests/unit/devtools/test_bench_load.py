"""``bench load``'s RSS timeline: growth from minute 2 and the per-minute readings (pure)."""

from __future__ import annotations

from ari_agent.devtools.bench_load import RssTimeline

MB = 2**20


def test_growth_is_measured_from_the_first_sample_at_or_after_minute_two() -> None:
    t = RssTimeline([(0.0, 100 * MB), (60.0, 150 * MB), (120.0, 200 * MB), (300.0, 210 * MB), (600.0, 220 * MB)])
    assert t.growth_pct(120.0) == 10.0
    assert t.per_minute_mb() == [100.0, 150.0, 200.0, 210.0, 220.0]


def test_a_run_shorter_than_two_minutes_has_no_growth_figure() -> None:
    assert RssTimeline([(0.0, MB), (50.0, 2 * MB)]).growth_pct(120.0) is None
    assert RssTimeline().growth_pct(120.0) is None
