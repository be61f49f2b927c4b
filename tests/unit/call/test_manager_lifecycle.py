"""The call manager's lifecycle logic on a fake ARI line: drain routing, connect cleanup, readiness.

Pure logic only; the same paths run against the real Asterisk in tests/integration/test_fault_restart.py."""

from __future__ import annotations

import asyncio
from typing import Any

from ari_agent.call.manager import CallManager
from ari_agent.config import load_config
from ari_agent.metrics import REGISTRY
from ari_agent.telephony.events import StasisStart, parse_event


class FakeAri:
    """Records what the manager asks of ARI; answers listings from canned data."""

    def __init__(self, channels: list[dict[str, Any]] | None = None,
                 bridges: list[dict[str, Any]] | None = None) -> None:
        self.channels = channels or []
        self.bridges = bridges or []
        self.calls: list[tuple[str, ...]] = []
        self.vars: dict[tuple[str, str], str] = {}

    async def set_variable(self, cid: str, name: str, value: str) -> None:
        self.vars[(cid, name)] = value
        self.calls.append(("set", cid, name, value))

    async def get_variable(self, cid: str, name: str) -> str:
        return self.vars.get((cid, name), "")

    async def continue_in_dialplan(self, cid: str, context: str, extension: str, priority: int = 1) -> None:
        self.calls.append(("continue", cid, context, extension))

    async def hangup(self, cid: str, reason: str = "normal") -> None:
        self.calls.append(("hangup", cid))

    async def destroy_bridge(self, bid: str) -> None:
        self.calls.append(("destroy", bid))

    async def list_channels(self) -> list[dict[str, Any]]:
        return self.channels

    async def list_bridges(self) -> list[dict[str, Any]]:
        return self.bridges

    async def application(self, name: str) -> dict[str, Any]:
        return {"name": name, "channel_ids": [c["id"] for c in self.channels], "bridge_ids": []}

    async def quietly(self, coro: Any) -> None:
        await coro


def manager(ari: FakeAri) -> CallManager:
    cfg = load_config(None, env={"ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
                                 "ARI_AGENT__LIFECYCLE__RECONCILE_GRACE_S": "0"})
    return CallManager(cfg, ari, lambda: None)  # type: ignore[arg-type, return-value]


def stasis_start(cid: str) -> StasisStart:
    event = parse_event({"type": "StasisStart", "application": "ari-agent", "args": ["inbound"],
                         "channel": {"id": cid, "name": "PJSIP/x", "state": "Ring"}})
    assert isinstance(event, StasisStart)
    return event


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def continued(ari: FakeAri) -> list[str]:
    return [c[1] for c in ari.calls if c[0] == "continue"]


async def test_draining_sends_new_callers_to_the_queue_with_reason() -> None:
    ari = FakeAri()
    m = manager(ari)
    m.start_drain()
    assert m.readiness() == (False, "draining")
    m.dispatch(stasis_start("new-caller"))
    await settle()
    assert m.sessions == {} and m.calls_started == 0
    assert continued(ari) == ["new-caller"]
    assert ari.vars[("new-caller", "__ARI_AGENT_REASON")] == "draining"
    assert ("new-caller", "TIMEOUT(absolute)") not in ari.vars  # the lease stays until the dialplan drops it
    # The drain with nothing in progress ends at once.
    assert await asyncio.wait_for(m.drain(30), 1) == 0


async def test_connect_cleanup_hands_off_orphans_and_ignores_their_late_stasis_start() -> None:
    stasis = {"app_name": "Stasis", "app_data": "ari-agent,inbound,agent"}
    ari = FakeAri(
        channels=[{"id": "orphan", "name": "Local/c@x-1;1", "dialplan": stasis},
                  {"id": "call-1-media", "name": "UnicastRTP/127.0.0.1:1-1", "dialplan": stasis}],
        bridges=[{"id": "call-1-bridge", "bridge_class": "stasis", "channels": ["orphan", "call-1-media"]}],
    )
    ari.vars[("orphan", "ARI_AGENT_CALL_ID")] = "call-1"
    m = manager(ari)
    plan = await m.clean_up_orphans()
    assert (plan.handoff, plan.hangup, plan.destroy) == (["orphan"], ["call-1-media"], ["call-1-bridge"])
    assert continued(ari) == ["orphan"]
    assert ari.vars[("orphan", "__ARI_AGENT_REASON")] == "agent_restart"
    assert ari.vars[("orphan", "__ARI_AGENT_SUMMARY")].startswith("The automated agent restarted")
    assert ("hangup", "call-1-media") in ari.calls and ("destroy", "call-1-bridge") in ari.calls
    m.dispatch(stasis_start("orphan"))  # its StasisStart was still on the wire
    await settle()
    assert m.sessions == {} and m.calls_started == 0 and continued(ari) == ["orphan"]


def test_readiness_needs_a_connected_stream() -> None:
    assert manager(FakeAri()).readiness() == (False, "ari_disconnected")


async def test_sweep_works_when_asterisk_does_not_know_the_app_yet() -> None:
    from ari_agent.call.sweep import sweep_orphans
    from ari_agent.telephony.ari import AriNotFound

    class FreshAri(FakeAri):
        async def application(self, name: str) -> dict[str, Any]:
            raise AriNotFound("GET", f"/applications/{name}", 404, "Application not found")

    stasis = {"app_name": "Stasis", "app_data": "ari-agent,inbound,agent"}
    ari = FreshAri(channels=[{"id": "orphan", "name": "Local/c@x-1;1", "dialplan": stasis}])
    cfg = load_config(None, env={"ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0"})
    plan = await sweep_orphans(ari, cfg, grace_s=0)  # type: ignore[arg-type]
    assert plan.handoff == ["orphan"] and continued(ari) == ["orphan"]
    assert (await sweep_orphans(FreshAri(), cfg, grace_s=0)).is_empty()  # type: ignore[arg-type]


def full_manager(ari: FakeAri, max_calls: str) -> CallManager:
    cfg = load_config(None, env={"ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
                                 "ARI_AGENT__LIFECYCLE__RECONCILE_GRACE_S": "0",
                                 "ARI_AGENT__AGENT__MAX_CALLS": max_calls})
    return CallManager(cfg, ari, lambda: None)  # type: ignore[arg-type, return-value]


async def test_a_caller_past_max_calls_is_passed_on_with_reason_capacity() -> None:
    ari = FakeAri()
    m = full_manager(ari, "2")
    assert m.max_calls == 2
    m.sessions.update({"call-1": object(), "call-2": object()})  # type: ignore[dict-item]  # two calls in progress
    before = REGISTRY.get_sample_value("ari_agent_calls_passed_on_total", {"reason": "capacity"}) or 0.0
    m.dispatch(stasis_start("third-caller"))
    await settle()
    assert REGISTRY.get_sample_value("ari_agent_calls_passed_on_total", {"reason": "capacity"}) == before + 1
    assert m.calls_started == 0
    assert continued(ari) == ["third-caller"]
    assert ari.vars[("third-caller", "__ARI_AGENT_REASON")] == "capacity"
    assert m.readiness()[1] != "draining"  # full is not stopping: the agent stays ready for the next free slot
    del m.sessions["call-2"]  # one call ended: the next caller is served
    m.dispatch(stasis_start("fourth-caller"))
    assert m.calls_started == 1 and "fourth-caller" not in continued(ari)
    for task in list(m.tasks):
        task.cancel()
    await asyncio.gather(*m.tasks, return_exceptions=True)


def test_max_calls_zero_sizes_the_limit_from_the_engine_and_the_cores() -> None:
    from ari_agent.call.capacity import call_limit, usable_cores

    assert call_limit(0, "both", 2) == 4 and call_limit(0, "whisper", 4) == 8
    assert call_limit(0, "pocketsphinx", 2) == 12
    assert call_limit(0, "auto", 3) == 6  # not resolved yet: the neural engines' figure
    assert call_limit(5, "pocketsphinx", 64) == 5  # set: as set
    assert call_limit(0, "both", 0) == 2  # never below one core's worth
    assert call_limit(0, "pocketsphinx", 2, voice=False) == 0  # greet_and_listen runs no recogniser: no limit
    assert call_limit(3, "pocketsphinx", 2, voice=False) == 3
    assert usable_cores() >= 1
    m = manager(FakeAri())
    assert m.cfg.conversation.mode == "voice" and m.max_calls == call_limit(0, m.cfg.stt.engine, usable_cores())
