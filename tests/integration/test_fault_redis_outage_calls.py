"""Redis down during real calls through the local Asterisk: the calls go on, each slow write lands once.

Two callers at once ask the agent (voice mode, the demo map plus ``callback_request``) for a callback
and say yes; the test SIGKILLs its redis-server once both calls are answered, before either has made
its write, and starts it again only once both writes have gone to the agent's spool. The callers must
hear the booked answer and carry on to their goodbye after redis is back; every write must be applied
exactly once, counted in the demo backend's own ``writes`` table. The long version is
``ari-agent bench drill redis-outage --calls-per-cycle N`` (docs/fault-drills.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ari_agent.devtools.drill_redis_calls import (
    BOOKED,
    HEARD_MIN,
    SERVED,
    OutageRig,
    caller_wavs,
    drained,
    outage_cycle,
)
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.ops.localpbx import LocalPbx

from .conftest import agent_config

pytestmark = [pytest.mark.integration, pytest.mark.fault]


async def test_real_calls_go_on_through_a_redis_outage_and_each_write_lands_once(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path) -> None:
    wavs = caller_wavs(voice_dir)
    async with OutageRig(tmp_path / "rig") as rig:
        async with InProcessAgent(rig.agent_config(agent_config(tmp_path))) as agent:
            report = await outage_cycle(agent, rig, wavs, cycle=0, calls=2, down_s=1.0, until_spooled=True)
            keys = {k for run in report.calls for k in run.write_keys}
            counts = await drained(rig, agent, keys, timeout_s=30)
        workers_log = "\n".join(p.read_text(errors="replace")[-2000:] for p in (tmp_path / "rig").glob("workers/*"))
    detail = json.dumps([{**run.__dict__, "events": run.events[-12:]} for run in report.calls], indent=1,
                        default=str)
    # The outage spanned both writes: redis went down once both calls were up, before either wrote,
    # and came back only after both writes had been spooled (fsync'd) by the agent.
    assert report.stopped_before_any_write and report.spooled == 2, detail
    for run in report.calls:
        assert run.answered and run.error is None and run.ended_by in SERVED, detail
        assert len(run.write_keys) == 1 and run.accepted, detail  # the write accepted: queued, not refused
        # The caller was told (and heard, in the caller-side recording) that it is done ...
        assert run.said_booked and run.heard_booked >= HEARD_MIN, detail
        # ... and the call went on past the outage: the next question and the goodbye after the booked answer,
        # the call over only after redis was back.
        assert run.said.index(BOOKED) < len(run.said) - 1 and run.ended_at > report.up_at, detail
    # Counted in the backend: each call's write applied exactly once, nothing else.
    assert len(keys) == 2 and counts == {k: 1 for k in keys}, f"{counts}\n{detail}\n{workers_log}"
