"""FastAGI routing from a real ``AGI()`` on Asterisk 22 (dialplan/agi-entry.conf): the routing service
sends a caller straight to the queue or to the agent, and a half-open AGI client does not stall the
routing of the next call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_agent.call.agi_routing import AgiRouter
from ari_agent.config import AgiRoutingConfig, load_config
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import TestCaller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.telephony.agi import FastAgiServer
from ari_agent.telephony.ami import AmiClient
from ari_agent.telephony.ari import AriClient

from .conftest import agent_config
from .test_handoff_screenpop import DeskReports, wait_for

pytestmark = pytest.mark.integration

DEFAULT_AGI = "agi://127.0.0.1:4573"


@pytest.fixture
async def agi_global(pbx: LocalPbx) -> AsyncIterator[tuple[AmiClient, list[FastAgiServer]]]:
    cfg = load_config(None, env={})
    ami = AmiClient(cfg.ami)
    assert await ami.wait_connected(10), ami.last_error
    servers: list[FastAgiServer] = []
    try:
        yield ami, servers
    finally:
        await ami.action({"Action": "Setvar", "Variable": "ARI_AGENT_AGI", "Value": DEFAULT_AGI})
        for s in servers:
            await s.close()
        await ami.close()


async def start_router(ami: AmiClient, servers: list[FastAgiServer], cfg: AgiRoutingConfig) \
        -> tuple[FastAgiServer, AgiRouter]:
    router = AgiRouter(cfg)
    server = FastAgiServer(router, header_timeout_s=3.0)
    port = await server.start("127.0.0.1", 0)
    servers.append(server)
    reply = await ami.action({"Action": "Setvar", "Variable": "ARI_AGENT_AGI", "Value": f"agi://127.0.0.1:{port}"})
    assert getattr(reply, "success", False), reply
    return server, router


async def test_outside_the_pilot_goes_straight_to_the_queue_despite_a_half_open_client(
        agi_global: tuple[AmiClient, list[FastAgiServer]], ari: AriClient, caller_wav: Path) -> None:
    ami, servers = agi_global
    server, router = await start_router(ami, servers, AgiRoutingConfig(pilot_percent=0, queue="support"))
    port = server.server.sockets[0].getsockname()[1] if server.server else 0
    _, half_open = await asyncio.open_connection("127.0.0.1", port)
    half_open.write(b"agi_network: yes\nagi_netw")  # and then nothing, for the whole call
    cfg = load_config(None, env={})
    desk = DeskReports(cfg)
    try:
        assert await desk.ami.wait_connected(10)
        caller = TestCaller(ari, cfg.pbx.model_copy(update={"inbound_context": "ari-agent-agi-inbound"}))
        place = asyncio.create_task(caller.place(caller_wav, pre_wait_s=1, tail_wait_s=3, max_duration_s=40))
        await wait_for(lambda: bool(router.decisions) or place.done(), 30, "the routing decision")
        assert router.decisions[0].target == "queue" and router.decisions[0].reason == "outside_pilot"
        # The caller reached a queue member without the agent: the desk reports it (by caller id).
        await wait_for(lambda: any(d.get("Desk") == "support-desk" for d in desk.seen) or place.done(), 30,
                       "the support desk")
        assert any(d.get("Desk") == "support-desk" for d in desk.seen), desk.seen
        await place
        assert server.handled == 1
    finally:
        half_open.close()
        await desk.ami.close()


async def test_in_the_pilot_goes_to_the_agent(agi_global: tuple[AmiClient, list[FastAgiServer]], ari: AriClient,
                                              caller_wav: Path, tmp_path: Path) -> None:
    ami, servers = agi_global
    _, router = await start_router(ami, servers, AgiRoutingConfig(pilot_percent=100))
    cfg = agent_config(tmp_path, agent__listen_after_greeting_s="3")
    async with InProcessAgent(cfg) as agent:
        assert agent.manager is not None
        caller = TestCaller(ari, cfg.pbx.model_copy(update={"inbound_context": "ari-agent-agi-inbound"}))
        res = await caller.place(caller_wav, pre_wait_s=1, tail_wait_s=2, max_duration_s=40)
        assert router.decisions and router.decisions[0].target == "agent"
        await agent.manager.wait_idle(10)
        assert res.answered and agent.manager.calls_started == 1


async def test_the_routing_service_of_ari_agent_run_follows_the_kill_switch(
        agi_global: tuple[AmiClient, list[FastAgiServer]], ari: AriClient, caller_wav: Path, tmp_path: Path) -> None:
    from ari_agent.cli.serve import start_agi

    ami, _ = agi_global
    override = tmp_path / "killswitch.on"
    override.write_text("on\n")  # transfer-only on this host, whatever Redis says
    cfg = load_config(None, env={"ARI_AGENT__AGI__ENABLED": "true", "ARI_AGENT__AGI__BIND": "127.0.0.1:0",
                                 "ARI_AGENT__GOVERNANCE__KILLSWITCH_OVERRIDE_FILE": str(override),
                                 "ARI_AGENT__GOVERNANCE__KILLSWITCH_STATE_FILE": str(tmp_path / "ks.last"),
                                 "ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0"})
    service = await start_agi(cfg)  # what `ari-agent run` starts with agi.enabled
    assert service is not None
    desk = DeskReports(cfg)
    try:
        reply = await ami.action({"Action": "Setvar", "Variable": "ARI_AGENT_AGI",
                                  "Value": f"agi://127.0.0.1:{service.port}"})
        assert getattr(reply, "success", False), reply
        assert await desk.ami.wait_connected(10)
        caller = TestCaller(ari, cfg.pbx.model_copy(update={"inbound_context": "ari-agent-agi-inbound"}))
        place = asyncio.create_task(caller.place(caller_wav, pre_wait_s=1, tail_wait_s=3, max_duration_s=40))
        router = service.router
        await wait_for(lambda: bool(router.decisions) or place.done(), 30, "the routing decision")
        assert (router.decisions[0].target, router.decisions[0].reason) == ("queue", "kill_switch")
        await wait_for(lambda: any(d.get("Desk") == "support-desk" for d in desk.seen) or place.done(), 30,
                       "the support desk")
        assert any(d.get("Desk") == "support-desk" for d in desk.seen), desk.seen
        await place
    finally:
        await service.close()
        await desk.ami.close()
