"""RQ workers SIGKILLed mid-job (after the backend applied the write, before RQ marked it done, and
elsewhere): no duplicate side effect, nothing lost. Short version of
``ari-agent bench drill worker-kill --jobs 1000`` (docs/fault-drills.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ari_agent.devtools.drill_worker import KillSettings, passed, run_worker_kill_drill

pytestmark = [pytest.mark.integration, pytest.mark.fault]


async def test_worker_kills_mid_job_duplicate_no_side_effect(tmp_path: Path) -> None:
    figures = await run_worker_kill_drill(KillSettings(jobs=150, workers=2, kill_every_s=1.0, drain_timeout_s=240),
                                          tmp_path)
    print("\nWORKER KILL FIGURES " + json.dumps(figures, sort_keys=True))
    assert figures["kills_after_apply_before_done"] >= 1, figures  # the window that matters was hit
    assert figures["killed_jobs_rerun"] >= 1, figures  # and re-runs happened: the backend made them no-ops
    assert passed(figures), figures  # 0 duplicate side effects, 0 lost
