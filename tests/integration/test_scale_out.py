"""Two agent processes sharing the calls of one Asterisk 22; one is killed; no caller is lost.

Scheme (docs/deploy.md, "Several agents on one Asterisk"): each process registers its own ARI app
name (``ari.app``); the dialplan (dialplan/inbound.conf) lists them in the global ``ARI_AGENT_APPS``,
starts each call at the next one round-robin and falls through to the next while ``Stasis()`` returns
FAILED (no agent connected for that name: Asterisk decides, before any agent hears of the call).

Here two real ``ari-agent run`` processes (apps ``ari-agent-a`` and ``ari-agent-b``) serve test callers
that stay on the line. Then ``kill -9`` of A mid-call:

- every new call goes to B (A's name fails in Stasis(), the dialplan falls through);
- A's callers reach the queue through the dialplan lease (no agent renews it), B's callers stay served;
- every caller is either served (in Stasis of B, with a media channel) or in a queue: 0 lost;
- A is restarted under the same name (its supervisor's job): its connect cleanup destroys the empty
  bridges the dead process left, and once every caller hangs up ARI lists no channel and no bridge.

Figures are printed (``-s``); the only bounds are generous poll deadlines.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_agent.call.orphans import stasis_app_of
from ari_agent.telephony.ari import AriClient, AriNotFound

from .conftest import wait_until_clean
from .test_fault_restart import (  # noqa: F401
    AgentProcess,
    Call,
    agents,
    channel,
    in_queue,
    quiet_wav,
    reason_of,
    test_ari,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

APP_A, APP_B = "ari-agent-a", "ari-agent-b"
LEASE_S = 6.0


@pytest.fixture
async def two_apps(test_ari: AriClient) -> AsyncIterator[str]:  # noqa: F811
    """The dialplan spreads calls over both names for this test (ARI sets the global; reset after)."""
    await test_ari.set_global("ARI_AGENT_APPS", f"{APP_A}&{APP_B}")
    try:
        yield await test_ari.get_global("ARI_AGENT_APPS")
    finally:
        await test_ari.set_global("ARI_AGENT_APPS", "")


async def app_of(ari: AriClient, cid: str) -> str | None:
    """The agent app serving this caller (in Stasis of it, and its media channel is up), else None."""
    ch = await channel(ari, cid)
    if ch is None:
        return None
    app = stasis_app_of(ch)
    if app is None:
        return None
    media = {c["id"] for c in await ari.list_channels() if c["id"].endswith("-media")}
    try:
        call_id = await ari.get_variable(cid, "ARI_AGENT_CALL_ID")  # set by the agent once it claims the call
    except AriNotFound:  # not yet (Asterisk answers 404 for a variable never set), or the caller left
        return None
    return app if call_id and f"{call_id}-media" in media else None


async def start_agents(started: list[AgentProcess], tmp_path: Path, env_a: dict[str, str], env_b: dict[str, str]) \
        -> tuple[AgentProcess, AgentProcess]:
    """``ari-agent run`` as app A and as app B, both connected (ready) on return."""
    a = AgentProcess(tmp_path, "a", ari__app=APP_A, **env_a)
    b = AgentProcess(tmp_path, "b", ari__app=APP_B, **env_b)
    started.extend([a, b])
    a.start()
    b.start()
    await a.wait_ready()
    await b.wait_ready()
    return a, b


async def is_draining(agent: AgentProcess) -> bool:
    status, body = await asyncio.to_thread(agent.probe, "/readyz")
    return status == 503 and body.get("reason") == "draining"


async def place_served(ari: AriClient, wav: Path, n: int) -> tuple[list[Call], list[str], list[str]]:
    """Place ``n`` calls one after the other, each served before the next: (calls, channel ids, apps)."""
    calls, cids, apps = [], [], []
    for _ in range(n):
        call = Call(ari, wav)
        cid = await call.place()
        calls.append(call)
        cids.append(cid)
        found: list[str] = []

        async def is_served(cid: str = cid, found: list[str] = found) -> bool:
            app = await app_of(ari, cid)
            if app:
                found.append(app)
            return app is not None

        await wait_for(is_served, 20, f"call {cid} served by an agent")
        apps.append(found[-1])
    return calls, cids, apps


async def test_two_agents_share_calls_one_killed_no_caller_lost(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path,  # noqa: F811
        two_apps: str) -> None:
    assert two_apps == f"{APP_A}&{APP_B}"
    env = {"lifecycle__channel_lease_s": f"{LEASE_S:g}"}
    a, _ = await start_agents(agents, tmp_path, env, env)
    all_calls: list[Call] = []
    try:
        calls, cids, apps = await place_served(test_ari, quiet_wav, 4)
        all_calls += calls
        spread = Counter(apps)
        assert spread[APP_A] >= 1 and spread[APP_B] >= 1, spread  # round-robin: 2 and 2
        a_callers = [cid for cid, app in zip(cids, apps, strict=True) if app == APP_A]
        b_callers = [cid for cid, app in zip(cids, apps, strict=True) if app == APP_B]

        a.kill9()
        killed = time.monotonic()
        # New calls while A is dead: Stasis(ari-agent-a) fails at once, the dialplan falls through to B.
        new_calls, new_cids, new_apps = await place_served(test_ari, quiet_wav, 4)
        all_calls += new_calls
        t_new = time.monotonic()
        assert set(new_apps) == {APP_B}, new_apps

        # A's callers: the lease nobody renews moves them to the queue (reason agent_unresponsive).
        async def a_callers_queued() -> bool:
            return all([await in_queue(test_ari, cid) for cid in a_callers])

        t_queued = await wait_for(a_callers_queued, LEASE_S + 20, "A's callers in the queue")
        reasons = {await reason_of(test_ari, cid) for cid in a_callers}
        assert reasons == {"agent_unresponsive"}, reasons

        # Every caller: served by the survivor or in a queue. None lost, none served twice.
        state = {cid: ("queue" if await in_queue(test_ari, cid) else await app_of(test_ari, cid))
                 for cid in cids + new_cids}
        lost = [cid for cid, s in state.items() if s not in ("queue", APP_B)]
        assert lost == [], state
        assert all(state[cid] == APP_B for cid in b_callers + new_cids), state
        media = [c for c in await test_ari.list_channels() if c["id"].endswith("-media")]
        a_left = await test_ari.application(APP_A)
        print(f"\nscale-out: first {len(cids)} calls spread {dict(spread)}; kill -9 of {APP_A}: next "
              f"{len(new_cids)} calls all to {sorted(set(new_apps))} ({t_new - killed:.2f}s for all 4 to be "
              f"served); A's {len(a_callers)} caller(s) in the queue {t_queued - killed:.2f}s after the kill "
              f"(lease {LEASE_S:g}s); lost {len(lost)} of {len(state)}; media channels up {len(media)} "
              f"(= B's {len(b_callers) + len(new_cids)} calls); left by A before its restart: "
              f"{len(a_left.get('channel_ids') or [])} channel(s), {len(a_left.get('bridge_ids') or [])} bridge(s)")
        assert len(media) == len(b_callers) + len(new_cids), media

        # A's supervisor restarts it under the same name: its connect cleanup destroys what it left.
        a2 = AgentProcess(tmp_path, "a-restarted", ari__app=APP_A, **env)
        agents.append(a2)
        a2.start()
        await a2.wait_ready()

        async def a_clean() -> bool:
            return not (await test_ari.application(APP_A)).get("bridge_ids")

        await wait_for(a_clean, 15, "A's leftover bridges destroyed by the restarted A")
        # And it takes calls again.
        more, _, more_apps = await place_served(test_ari, quiet_wav, 2)
        all_calls += more
        assert set(more_apps) == {APP_A, APP_B}, more_apps
    finally:
        for c in all_calls:
            await c.hang_up()
    chans, bridges = await wait_until_clean(test_ari, 15)
    print(f"after every caller hung up: {len(chans)} channel(s), {len(bridges)} bridge(s) left")
    assert chans == [] and bridges == [], (chans, bridges)


async def test_draining_agent_passes_new_calls_to_the_other_agent(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path,  # noqa: F811
        two_apps: str) -> None:
    """A rolling deploy across two agents: SIGTERM to B; B's new callers are passed on to A (dialplan
    label ``next``), not to the queue; B's call in progress stays with B until it ends; B exits 0."""
    _, b = await start_agents(agents, tmp_path, {}, {"lifecycle__drain_deadline_s": "60"})
    all_calls: list[Call] = []
    try:
        calls, cids, apps = await place_served(test_ari, quiet_wav, 2)
        all_calls += calls
        assert sorted(apps) == [APP_A, APP_B], apps
        assert b.proc is not None
        b.proc.send_signal(signal.SIGTERM)
        sigterm = time.monotonic()

        await wait_for(lambda: is_draining(b), 10, "B's /readyz 503 draining")
        new_calls, new_cids, new_apps = await place_served(test_ari, quiet_wav, 4)
        all_calls += new_calls
        t_new = time.monotonic()
        queued = [cid for cid in new_cids if await in_queue(test_ari, cid)]
        b_call = cids[apps.index(APP_B)]
        still_b = await app_of(test_ari, b_call)
        passed_on = b.log_path.read_text(errors="replace").count("passed on to the next agent")
        print(f"\nscale-out drain: after SIGTERM to {APP_B}, {len(new_cids)} new calls served by "
              f"{sorted(set(new_apps))} (all within {t_new - sigterm:.2f}s of the SIGTERM; {passed_on} of them "
              f"passed on by B), {len(queued)} in a queue; B's call in progress still with {still_b}")
        assert set(new_apps) == {APP_A} and queued == [], (new_apps, queued)
        assert passed_on >= 1  # round-robin started some of them at B, which passed them on
        assert still_b == APP_B
        await all_calls[apps.index(APP_B)].hang_up()
        rc = await asyncio.to_thread(b.proc.wait, 30)
        print(f"B exited {rc} {time.monotonic() - sigterm:.2f}s after SIGTERM, once its last call ended")
        assert rc == 0, b.tail()
    finally:
        for c in all_calls:
            await c.hang_up()
    chans, bridges = await wait_until_clean(test_ari, 15)
    assert chans == [] and bridges == [], (chans, bridges)
