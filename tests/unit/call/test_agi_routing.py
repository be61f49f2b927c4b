"""Front-door routing decisions (pure): per-number enablement and a deterministic pilot share."""

from __future__ import annotations

from ari_agent.call.agi_routing import pilot_bucket, route_call
from ari_agent.config import AgiRoutingConfig, load_config


def test_numbers_can_be_switched_off_or_enabled_one_by_one() -> None:
    cfg = AgiRoutingConfig(disabled_dids=("9000",))
    assert route_call(cfg, caller="5551", did="9000").reason == "did_disabled"
    only = AgiRoutingConfig(enabled_dids=("8000",))
    assert route_call(only, caller="5551", did="8001").target == "queue"
    assert route_call(only, caller="5551", did="8000").target == "agent"


def test_pilot_share_is_deterministic_and_about_right() -> None:
    cfg = AgiRoutingConfig(pilot_percent=25)
    callers = [f"+4420700{i:05d}" for i in range(4000)]
    first = [route_call(cfg, caller=c, did="8000").target for c in callers]
    again = [route_call(cfg, caller=c, did="8000").target for c in callers]
    assert first == again
    share = first.count("agent") / len(first)
    assert 0.22 < share < 0.28, share
    assert route_call(AgiRoutingConfig(pilot_percent=0), caller="1", did="").reason == "outside_pilot"
    assert route_call(AgiRoutingConfig(pilot_percent=100), caller="1", did="").target == "agent"
    # anonymous callers are bucketed by their call instead, not all together
    assert pilot_bucket("u1") != pilot_bucket("u2")


def test_the_kill_switch_and_the_agents_hours_send_callers_to_a_queue() -> None:
    from datetime import datetime

    cfg = AgiRoutingConfig(agent_hours={"mon": "09:00-17:00"}, after_hours_queue="billing")
    monday_noon, monday_night, tuesday = datetime(2026, 3, 2, 12), datetime(2026, 3, 2, 20), datetime(2026, 3, 3, 12)
    assert route_call(cfg, caller="1", did="", now=monday_noon).target == "agent"
    late = route_call(cfg, caller="1", did="", now=monday_night)
    assert (late.target, late.queue, late.reason) == ("queue", "billing", "after_hours")
    assert route_call(cfg, caller="1", did="", now=tuesday).reason == "after_hours"  # a day not listed
    off = route_call(cfg, caller="1", did="", now=monday_noon, kill_switch=True)
    assert (off.target, off.queue, off.reason) == ("queue", "support", "kill_switch")
    ignoring = AgiRoutingConfig(follow_kill_switch=False)
    assert route_call(ignoring, caller="1", did="", kill_switch=True).target == "agent"


def test_bad_routing_settings_are_refused() -> None:
    import pytest

    from ari_agent.errors import ConfigError

    with pytest.raises(ConfigError, match="HH:MM"):
        load_config(None, env={"ARI_AGENT__AGI__AGENT_HOURS__MON": "9-5"})
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(None, env={"ARI_AGENT__AGI__TIMEZONE": "Mars/Olympus"})


async def test_the_routing_service_serves_a_request_and_refuses_a_taken_port() -> None:
    import asyncio

    import pytest

    from ari_agent.call.agi_routing import AgiRoutingService
    from ari_agent.errors import AriAgentError

    cfg = load_config(None, env={"ARI_AGENT__AGI__BIND": "127.0.0.1:0", "ARI_AGENT__AGI__PILOT_PERCENT": "0",
                                 "ARI_AGENT__GOVERNANCE__KILLSWITCH": "false"})
    service = AgiRoutingService(cfg)
    port = await service.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network_script: route\nagi_callerid: 5551\nagi_uniqueid: u1\n\n")
        replies = []
        for _ in range(3):
            replies.append((await reader.readline()).decode())
            writer.write(b"200 result=1\n")
        writer.close()
        assert replies[0].startswith('SET VARIABLE ARI_AGENT_ROUTE "queue"')
        assert 'ARI_AGENT_ROUTE_REASON "outside_pilot"' in replies[2]
        taken = AgiRoutingService(cfg.model_copy(update={"agi": cfg.agi.model_copy(
            update={"bind": f"127.0.0.1:{port}"})}))
        with pytest.raises(AriAgentError, match="cannot serve FastAGI"):
            await taken.start()
    finally:
        await service.close()
