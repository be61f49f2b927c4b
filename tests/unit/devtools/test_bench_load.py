"""``bench load``'s RSS timeline: per-minute minima and means over full concurrency, growth from minute 2 (pure)."""

from __future__ import annotations

from ari_agent.devtools.bench_load import RssTimeline

MB = 2**20


def _timeline(per_minute: list[list[int]], after_calls_mb: int | None = None, step_s: float = 5.0) -> RssTimeline:
    """Samples every ``step_s`` seconds, minute k taking the MB values of ``per_minute[k]`` in turn."""
    t = RssTimeline()
    for k, values in enumerate(per_minute):
        for i in range(int(60 / step_s)):
            t.samples.append((60.0 * k + i * step_s, values[i % len(values)] * MB))
    if after_calls_mb is not None:
        t.samples.append((60.0 * len(per_minute) + 20.0, after_calls_mb * MB))
    return t


def test_growth_compares_the_minimum_of_minute_two_with_that_of_the_last_full_minute() -> None:
    # Each minute swings between a floor and a peak 20 % above it; the floor rises 100 -> 110 MB.
    t = _timeline([[90, 150], [95, 120], [100, 120], [104, 125], [110, 132]], after_calls_mb=300)
    g = t.growth(full_until_s=300.0)
    assert g["from_minute"] == 2 and g["to_minute"] == 4
    assert g["growth_pct_of_minute_minimum"] == 10.0
    assert g["growth_pct_of_minute_mean"] == 10.0  # (110+132)/2 vs (100+120)/2
    assert t.per_minute_min_mb(300.0) == [90.0, 95.0, 100.0, 104.0, 110.0]
    assert t.per_minute_mean_mb(300.0) == [120.0, 107.5, 110.0, 114.5, 121.0]


def test_a_peak_in_the_last_minute_does_not_count_as_growth_of_the_minimum() -> None:
    t = _timeline([[100], [100], [100, 100], [100, 100], [100, 140]])
    g = t.growth(300.0)
    assert g["growth_pct_of_minute_minimum"] == 0.0
    assert g["growth_pct_of_minute_mean"] == 20.0


def test_the_sample_after_the_calls_end_and_a_partial_minute_take_no_part() -> None:
    t = _timeline([[100], [100], [100], [100], [100]], after_calls_mb=50)
    t.samples.append((330.0, 500 * MB))  # after full concurrency ended at 300 s: ignored
    g = t.growth(300.0)
    assert g["to_minute"] == 4 and g["growth_pct_of_minute_minimum"] == 0.0
    # Full concurrency ending mid-minute: minute 4 (240-300 s) is not whole by 290 s, so minute 3 is last.
    assert t.growth(290.0)["to_minute"] == 3
    report = t.report(300.0, 5.0)
    assert report["sample_every_s"] == 5.0 and len(report["per_minute_min_mb"]) == 5
    assert report["after_calls_mb"] == 500.0


def test_a_run_without_a_whole_minute_from_minute_two_has_no_growth_figure() -> None:
    assert RssTimeline([(0.0, MB), (50.0, 2 * MB)]).growth(60.0)["growth_pct_of_minute_minimum"] is None
    assert RssTimeline().growth(600.0)["growth_pct_of_minute_mean"] is None
    only_two = _timeline([[100], [100], [100]])
    assert only_two.growth(170.0)["to_minute"] is None  # minute 2 not whole by 170 s
    assert only_two.growth(180.0)["growth_pct_of_minute_minimum"] == 0.0  # minute 2 compared with itself
    assert RssTimeline().report(600.0, 5.0)["after_calls_mb"] is None
