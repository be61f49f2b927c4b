"""The connect cleanup's decisions (call/orphans.py), from ARI listings shaped like Asterisk 22's."""

from __future__ import annotations

from typing import Any

from ari_agent.call.orphans import plan_cleanup, stasis_app_of


def chan(cid: str, app: str | None, name: str = "Local/x@ctx-00000001;1") -> dict[str, Any]:
    dialplan = {"context": "ari-agent-inbound", "exten": "agent", "priority": 3,
                "app_name": "Stasis" if app else "Wait", "app_data": f"{app},inbound,agent" if app else "3600"}
    return {"id": cid, "name": name, "state": "Up", "dialplan": dialplan}


def bridge(bid: str, *members: str, cls: str = "stasis") -> dict[str, Any]:
    return {"id": bid, "bridge_class": cls, "channels": list(members)}


def test_stasis_app_of_reads_the_dialplan_snapshot() -> None:
    assert stasis_app_of(chan("a", "ari-agent")) == "ari-agent"
    assert stasis_app_of(chan("a", None)) is None
    assert stasis_app_of({"id": "a"}) is None


def test_after_kill9_the_orphans_of_our_app_are_planned_and_nothing_else() -> None:
    channels = [
        chan("c1-leg", "ari-agent"),  # our caller, nobody serves it
        chan("call-1-media", "ari-agent", name="UnicastRTP/127.0.0.1:40000-0000001"),  # our leftover media
        chan("c1-leg;2", None),  # the caller's phone side: not in Stasis
        chan("c2-leg", "ari-agent-b"),  # another agent's caller on the same Asterisk
        chan("call-2-media", "ari-agent-b", name="UnicastRTP/127.0.0.1:40002-0000002"),
        chan("c3-leg", "ari-agent"),  # served by a live session of ours
    ]
    bridges = [
        bridge("call-1-bridge", "c1-leg", "call-1-media"),
        bridge("call-2-bridge", "c2-leg", "call-2-media"),  # the other agent's
        bridge("call-3-bridge", "c3-leg"),  # live
        bridge("queue-bridge", "c9", cls="basic"),  # Queue()'s own
        bridge("call-4-bridge"),  # empty, subscribed by our app
        bridge("call-5-bridge"),  # empty, not ours to judge
    ]
    app = {"name": "ari-agent", "channel_ids": ["c1-leg", "c3-leg"], "bridge_ids": ["call-4-bridge"]}
    plan = plan_cleanup("ari-agent", channels, bridges, app, served_channels=["c3-leg"],
                        live_bridges=["call-3-bridge"])
    assert plan.handoff == ["c1-leg"]
    assert plan.hangup == ["call-1-media"]
    assert plan.destroy == ["call-1-bridge", "call-4-bridge"]


def test_a_subscribed_channel_without_a_stasis_snapshot_is_still_ours() -> None:
    ch = {"id": "call-9-media", "name": "UnicastRTP/127.0.0.1:1-1", "dialplan": {}}
    plan = plan_cleanup("ari-agent", [ch], [], {"channel_ids": ["call-9-media"]}, [], [])
    assert plan.hangup == ["call-9-media"] and plan.handoff == []


def test_nothing_to_do_when_everything_is_served() -> None:
    channels = [chan("c1-leg", "ari-agent"), chan("call-1-media", "ari-agent", name="UnicastRTP/a:1-1")]
    plan = plan_cleanup("ari-agent", channels, [bridge("call-1-bridge", "c1-leg", "call-1-media")],
                        {"channel_ids": ["c1-leg"], "bridge_ids": ["call-1-bridge"]},
                        served_channels=["c1-leg", "call-1-media"], live_bridges=["call-1-bridge"])
    assert plan.is_empty()


def test_a_bridge_with_a_foreign_channel_is_never_destroyed() -> None:
    plan = plan_cleanup("ari-agent", [chan("c1-leg", "ari-agent")], [bridge("b", "c1-leg", "other")],
                        {"bridge_ids": ["b"]}, [], [])
    assert plan.handoff == ["c1-leg"] and plan.destroy == []
