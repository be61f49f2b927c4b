"""Asterisk restarted mid-call, on the real Asterisk 22: the agent comes back by itself.

The agent runs in this process (``InProcessAgent``: the same ``CallManager`` as ``ari-agent run``), so
the test can look at its per-call state. A test caller is being served when Asterisk goes away, either
by ``kill -9`` (a crash: no hang-up, no event, the WebSocket just drops) or by ``core stop now``;
then Asterisk is started again and the test checks that

- the agent's events WebSocket is back, i.e. Asterisk lists its application again (measured from the
  first moment ARI answers again; printed, ``-s`` shows it);
- the broken call is ended (its channel vanished with the old Asterisk) without an exception, and the
  agent holds no state for it (sessions, channel routes, tasks);
- ARI lists no channel or bridge of ours, and the next call is served, then leaves nothing behind.

No timing is asserted: the bounds are generous poll deadlines (the figures are benchmarks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from ari_agent.devtools.harness import InProcessAgent
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.telephony.ari import AriClient, AriError, AriUnreachable

from .conftest import agent_config, wait_until_clean
from .test_fault_restart import APP, Call, leaked, ours_left, quiet_wav, served, test_ari, wait_for  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.fault]


async def first_answer(ari: AriClient, app: str, deadline_s: float) -> tuple[float, float]:
    """Poll ARI every 10 ms: (when ``/asterisk/info`` first answered, when our application was first
    listed, i.e. the agent's WebSocket had subscribed it), both monotonic."""
    deadline = time.monotonic() + deadline_s
    t_ari: float | None = None
    while time.monotonic() < deadline:
        try:
            if t_ari is None:
                await ari.asterisk_info()
                t_ari = time.monotonic()
            await ari.application(app)
            return t_ari, time.monotonic()
        except (AriError, AriUnreachable):
            await asyncio.sleep(0.01)
    raise AssertionError(f"ARI {'never answered' if t_ari is None else f'never listed {app}'} "
                         f"within {deadline_s:.0f}s")


@pytest.mark.parametrize("how", ["crash", "stop"])
async def test_asterisk_restart_mid_call_agent_reconnects_and_serves_next_call(
        pbx: LocalPbx, test_ari: AriClient, quiet_wav: Path, tmp_path: Path, how: str,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    cfg = agent_config(tmp_path, agent__listen_after_greeting_s="120")
    async with InProcessAgent(cfg) as agent:
        manager = agent.manager
        assert manager is not None and manager.stream is not None
        stream = manager.stream
        call = Call(test_ari, quiet_wav)
        cid = await call.place()
        try:
            await wait_for(lambda: served(test_ari, cid), 20, "agent serving the call")
            await asyncio.sleep(1.0)  # mid-call
            assert len(manager.sessions) == 1
            (broken,) = manager.sessions.values()
            connects = stream.connects

            t_fault = time.monotonic()
            await asyncio.to_thread(pbx.crash if how == "crash" else pbx.down)
            await wait_for(lambda: _false(stream.connected.is_set()), 10, "agent saw the WebSocket drop")
            t_dropped = time.monotonic()
            up = asyncio.create_task(asyncio.to_thread(pbx.up))
            t_ari, t_subscribed = await first_answer(test_ari, APP, 90)
            await up
            await wait_for(lambda: _true(stream.connected.is_set() and stream.connects > connects), 10,
                           "agent's own view: connected again")
            reconnect_s = t_subscribed - t_ari

            # The broken call: its channel went with the old Asterisk; the reconnect's reconcile ends it.
            await wait_for(lambda: _true(not manager.sessions and not manager.tasks), 15,
                           "the broken call's session ended")
            t_ended = time.monotonic()
            await asyncio.wait_for(manager.reconciled.wait(), 15)
            assert broken.outcome.ended_by in ("error", "caller"), broken.outcome
            assert not manager._routes and not manager._expected, (manager._routes, manager._expected)
            left = await ours_left(test_ari)
            assert leaked(left) == 0, left
            await call.hang_up()

            # The next call is served, and leaves nothing behind.
            nxt = Call(test_ari, quiet_wav)
            next_cid = await nxt.place()
            try:
                t_placed = time.monotonic()
                await wait_for(lambda: served(test_ari, next_cid), 20, "agent serving the next call")
                t_served = time.monotonic()
                await asyncio.sleep(1.0)
            finally:
                await nxt.hang_up()
            await wait_for(lambda: _true(not manager.sessions and not manager.tasks), 15, "next call's session ended")
        finally:
            await call.hang_up()
            if pbx.pid() is None:
                await asyncio.to_thread(pbx.up)
        chans, bridges = await wait_until_clean(test_ari, 10)
        tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("ari_agent")]
        print(f"\nAsterisk {how} mid-call: agent saw the drop {t_dropped - t_fault:.2f}s after the fault; "
              f"ARI back {t_ari - t_fault:.2f}s after the fault; agent subscribed again {reconnect_s:.3f}s after "
              f"ARI answered (down {stream.last_down_s:.2f}s in the agent's log); broken call ended "
              f"{t_ended - t_subscribed:.2f}s after the reconnect (ended_by={broken.outcome.ended_by}); next call "
              f"served {t_served - t_placed:.2f}s after it was placed; leaked channels/bridges after: "
              f"{len(chans)}/{len(bridges)}; tracebacks logged: {len(tracebacks)}")
        assert chans == [] and bridges == [], (chans, bridges)
        assert tracebacks == [], [r.getMessage() for r in tracebacks]
        assert manager.calls_started == 2


async def _true(value: bool) -> bool:
    return value


async def _false(value: bool) -> bool:
    return not value
