"""The AMI side of the handoff on the real Asterisk 22: reconnect after a restart, a refused login, and
the queue check before a transfer (an empty queue → its fallback, announced; every queue tried → the
exhausted path, never round again; AMI unreachable → the intended queue anyway)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.config import Config, load_config
from ari_agent.devtools.backend_process import free_port
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.telephony.ami import AmiClient, AmiUnavailable

from .conftest import agent_config
from .conftest_redis import redis_server  # noqa: F401
from .test_handoff_screenpop import DeskReports, wait_for

pytestmark = pytest.mark.integration

BILLING_DESK = "Local/billing-desk@agent-desk/n"
SUPPORT_DESK = "Local/support-desk@agent-desk/n"


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    async with running_demo_backend() as url:
        yield url


def voice_config(tmp_path: Path, redis_url: str, backend_url: str, **extra: str) -> Config:
    return agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url,
                        redis__url=redis_url, **extra)


async def pause(ami: AmiClient, queue: str, interface: str, paused: bool) -> None:
    reply = await ami.action({"Action": "QueuePause", "Queue": queue, "Interface": interface,
                              "Paused": "true" if paused else "false", "Reason": "ari-agent test"})
    assert getattr(reply, "success", False), reply


async def test_ami_reconnects_after_asterisk_restart(pbx: LocalPbx) -> None:
    cfg = load_config(None, env={})
    async with AmiClient(cfg.ami) as ami:
        assert await ami.wait_connected(10), ami.last_error
        before = await ami.queue_summary("support")
        assert before is not None and before.logged_in >= 1
        assert ami.logins == 1
        await asyncio.to_thread(pbx.down)
        await wait_for(lambda: not ami.connected, 15, "AMI to notice the restart")
        with pytest.raises(AmiUnavailable):
            await ami.queue_summary("support")  # a clear failure, not a parked action
        await asyncio.to_thread(pbx.up)
        await wait_for(lambda: ami.connected and ami.logins >= 2, 30, "AMI to reconnect")
        after = await ami.queue_summary("support")
        assert after is not None and after.queue == "support"
        print(f"AMI logins={ami.logins} support after restart: {after}")
    assert not ami.connected


async def test_ami_refused_login_is_reported_without_the_secret(pbx: LocalPbx) -> None:
    cfg = load_config(None, env={"ARI_AGENT__AMI__SECRET": "wrong-secret-123",
                                 "ARI_AGENT__AMI__RECONNECT_MAX_S": "0.5"})
    async with AmiClient(cfg.ami) as ami:
        assert not await ami.wait_connected(3)
        await wait_for(lambda: bool(ami.last_error), 10, "the login failure")
        assert "login refused" in ami.last_error and "wrong-secret" not in ami.last_error
        with pytest.raises(AmiUnavailable, match="not connected"):
            await ami.queue_summary("support")


async def test_empty_queue_goes_to_its_fallback_announced(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str) -> None:  # noqa: F811
    """Billing's only member is paused: the bill payment (a restricted intent → billing) goes to the
    fallback (support) instead of ringing nobody, and the caller hears why and where."""
    cfg = voice_config(tmp_path, redis_server, backend_url)
    desk = DeskReports(cfg)
    admin = AmiClient(cfg.ami)
    store = HandoffStore(redis_server)
    try:
        assert await admin.wait_connected(10) and await desk.ami.wait_connected(10)
        await pause(admin, "billing", BILLING_DESK, True)
        summary = await admin.queue_summary("billing")
        assert summary is not None and summary.available == 0, summary
        async with InProcessAgent(cfg) as agent:
            assert agent.caller is not None and agent.manager is not None and agent.ari is not None
            wavs = [synthesize_caller("I want to pay my bill please.", "flite:rms", voice_dir)]
            place = asyncio.create_task(agent.caller.place_dialog(wavs, "t", tail_wait_s=25))
            manager = agent.manager
            await wait_for(lambda: any(o.ended_by == "handoff" for o in manager.outcomes) or place.done(), 90,
                           "the handoff")
            outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
            assert outcome.handoff_queue == "support", outcome
            await wait_for(lambda: any(d.get("CallId") == outcome.call_id for d in desk.seen), 30, "the desk")
            report = next(d for d in desk.seen if d.get("CallId") == outcome.call_id)
            assert report["Desk"] == "support-desk", report  # nobody rang at the paused billing desk
            assert not any(d.get("Desk") == "billing-desk" and d.get("CallId") == outcome.call_id for d in desk.seen)
            record = await store.get(outcome.call_id)
            assert record is not None
            assert record["requested_queue"] == "billing" and record["queue"] == "support", record
            assert record["rerouted_because"] == "none_available", record
            said = [e["text"] for e in getattr(next(s.conversation for s in manager.ended
                                                    if s.call_id == outcome.call_id), "events", [])
                    if e.get("kind") == "say"]
            announced = [t for t in said if "billing team can't take calls" in t and "support team" in t]
            assert announced, said
            await agent.ari.quietly(agent.ari.hangup(outcome.caller_channel))
            res = await place
            # The caller heard the announcement (its own recording, Asterisk's MixMonitor).
            from .test_voice_conversation import heard_contains

            # (in a thread: seconds of numpy must not block the loop the agent's tasks run on)
            score = await asyncio.to_thread(heard_contains, agent, res, announced[0])
            assert score >= 0.9, f"announcement not audible in the caller's recording (corr {score:.3f})"
            print(f"fallback announced: {announced[0]!r} corr={score:.3f}")
    finally:
        if admin.connected:
            await pause(admin, "billing", BILLING_DESK, False)
        await store.close()
        await admin.close()
        await desk.ami.close()


async def test_caller_back_from_a_queue_is_not_sent_round_again(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str) -> None:  # noqa: F811
    """The caller's channel carries ARI_AGENT_TRIED=support (it came back from support): asking for a
    person again does not put it back in support; it takes the exhausted path."""
    cfg = voice_config(tmp_path, redis_server, backend_url)
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None and agent.ari is not None
        manager = agent.manager
        wavs = [synthesize_caller("Can I speak to a real person please?", "flite:rms", voice_dir)]
        place = asyncio.create_task(agent.caller.place_dialog(wavs, "t", tail_wait_s=10))
        await wait_for(lambda: bool(manager.sessions) or place.done(), 30, "the call")
        session = next(iter(manager.sessions.values()))
        await agent.ari.set_variable(session.caller.id, "__ARI_AGENT_TRIED", "support")
        await wait_for(lambda: any(o.ended_by == "handoff" for o in manager.outcomes) or place.done(), 90,
                       "the handoff")
        outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
        assert outcome.handoff_queue == cfg.handoff.exhausted_extension, outcome
        said = [e["text"] for e in getattr(next(s.conversation for s in manager.ended
                                                if s.call_id == outcome.call_id), "events", [])
                if e.get("kind") == "say"]
        assert any("all of our teams are busy" in t for t in said), said
        await place


async def test_ami_unreachable_transfers_to_the_intended_queue(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    cfg = voice_config(tmp_path, redis_server, backend_url, ami__port=str(free_port()), ami__action_timeout_s="0.5")
    caplog.set_level(logging.WARNING, logger="ari_agent.call.handoff")
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None and agent.ari is not None
        manager = agent.manager
        wavs = [synthesize_caller("Can I speak to a real person please?", "flite:rms", voice_dir)]
        place = asyncio.create_task(agent.caller.place_dialog(wavs, "t", tail_wait_s=25))
        await wait_for(lambda: any(o.ended_by == "handoff" for o in manager.outcomes) or place.done(), 90,
                       "the handoff")
        outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
        assert outcome.handoff_queue == "support", outcome
        assert any("AMI unreachable" in r.getMessage() for r in caplog.records), caplog.text
        # Really in the queue: Asterisk says the caller channel is in the agent-handoff context/Queue.
        info = await agent.ari.get_channel(outcome.caller_channel)
        assert info["dialplan"]["context"] == "agent-handoff", info
        await agent.ari.quietly(agent.ari.hangup(outcome.caller_channel))
        await place
