"""Front-door routing decisions (pure): per-number enablement and a deterministic pilot share."""

from __future__ import annotations

from ari_agent.call.agi_routing import pilot_bucket, route_call
from ari_agent.config import AgiRoutingConfig


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
