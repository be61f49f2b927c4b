"""The real-call redis-outage drill's tally: completed, dropped, lost and duplicated from the calls' own
records and the backend's per-key counts (the calls themselves: tests/integration/test_fault_redis_outage_calls.py)."""

from __future__ import annotations

from pathlib import Path

from ari_agent.devtools.drill_redis_calls import BOOKED, CallRun, CycleReport, RealCallSettings, figures, passed
from ari_agent.devtools.drill_services import WorkerSupervisor


def _run(n: int, *, ok: bool = True, ended_by: str = "agent", heard: float = 0.97) -> CallRun:
    return CallRun(f"c{n}", 0, answered=True, ended_by=ended_by, said=["Hi.", BOOKED, "Anything else?"],
                   write_keys=[f"k{n}"], write_results=[{"kind": "tool_result", "ok": ok, "submitted": ok}],
                   heard_booked=heard)


def _figures(runs: list[CallRun], counts: dict[str, int], spooled: int = 2) -> dict[str, object]:
    cycle = CycleReport(0, runs, 30.0, spooled, 0.0, 30.0, True)
    return figures(RealCallSettings(cycles=1, calls_per_cycle=len(runs)), [cycle], counts, 0, [],
                   WorkerSupervisor("redis://127.0.0.1:9/0", "q", Path("/tmp")), 1.0, 40.0)


def test_every_call_served_and_every_write_landed_once_passes() -> None:
    f = _figures([_run(1), _run(2)], {"k1": 1, "k2": 1})
    assert (f["calls_placed"], f["calls_completed"], f["calls_dropped"]) == (2, 2, 0)
    assert (f["writes_made"], f["writes_landed"], f["lost"], f["duplicated"]) == (2, 2, 0, 0)
    assert passed(f)


def test_a_lost_or_duplicated_write_fails_the_drill() -> None:
    lost = _figures([_run(1), _run(2)], {"k1": 1})
    assert lost["lost"] == 1 and lost["lost_keys_sample"] == ["k2"] and not passed(lost)
    dup = _figures([_run(1), _run(2)], {"k1": 2, "k2": 1})
    assert dup["duplicated"] == 1 and not passed(dup)


def test_a_refused_write_an_unheard_answer_or_a_torn_call_fails_the_drill() -> None:
    refused = _figures([_run(1, ok=False, ended_by="handoff"), _run(2)], {"k2": 1})
    assert refused["writes_refused"] == 1 and refused["calls_handed_off"] == 1 and not passed(refused)
    assert refused["calls_dropped"] == 0  # a handoff is a served call, not a dropped one
    unheard = _figures([_run(1, heard=0.4), _run(2)], {"k1": 1, "k2": 1})
    assert unheard["calls_completed"] == 1 and not passed(unheard)
    torn = _figures([_run(1, ended_by="error"), _run(2)], {"k1": 1, "k2": 1})
    assert torn["calls_dropped"] == 1 and not passed(torn)
    no_outage = _figures([_run(1), _run(2)], {"k1": 1, "k2": 1}, spooled=0)
    assert not passed(no_outage)  # the writes never met the outage: nothing shown
