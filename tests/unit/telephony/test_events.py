"""ARI events: typed parsing; malformed events are refused with a reason and never stop dispatch."""

from __future__ import annotations

from typing import Any

import pytest

from ari_agent.call.manager import CallManager
from ari_agent.call.session import Conversation
from ari_agent.config import load_config
from ari_agent.telephony.ari import AriClient
from ari_agent.telephony.events import (
    AriEventError,
    ChannelDtmfReceived,
    OtherEvent,
    StasisStart,
    channel_of,
    parse_event,
)

CHANNEL = {"id": "c1", "name": "PJSIP/x-1", "state": "Ring", "caller": {"number": "100", "name": "A"},
           "dialplan": {"context": "ari-agent-inbound", "exten": "agent"}}


def test_stasis_start_parsed() -> None:
    ev = parse_event({"type": "StasisStart", "application": "ari-agent", "args": ["inbound", "agent"],
                      "channel": CHANNEL})
    assert isinstance(ev, StasisStart)
    assert ev.args == ("inbound", "agent")
    assert ev.channel.caller_number == "100"
    assert channel_of(ev) == "c1"


def test_dtmf_parsed() -> None:
    ev = parse_event({"type": "ChannelDtmfReceived", "digit": "5", "duration_ms": 120, "channel": CHANNEL})
    assert isinstance(ev, ChannelDtmfReceived) and ev.digit == "5"


def test_unknown_type_kept() -> None:
    ev = parse_event({"type": "BridgeBlindTransfer", "foo": 1})
    assert isinstance(ev, OtherEvent)
    assert channel_of(ev) is None


@pytest.mark.parametrize(
    "data",
    [
        None, [], "x", {}, {"type": ""}, {"type": "StasisStart"}, {"type": "StasisStart", "channel": {}},
        {"type": "StasisStart", "channel": {"id": ""}}, {"type": "StasisStart", "channel": CHANNEL, "args": "x"},
        {"type": "ChannelDtmfReceived", "channel": CHANNEL}, {"type": "ChannelDtmfReceived", "digit": "12",
                                                              "channel": CHANNEL},
        {"type": "PlaybackFinished", "playback": {}}, {"type": "StasisEnd", "channel": "c1"},
    ],
)
def test_malformed_events_refused_with_reason(data: Any) -> None:
    with pytest.raises(AriEventError):
        parse_event(data)


class _Idle:
    async def run(self, call: Any) -> None:
        return None


async def test_dispatch_survives_odd_events() -> None:
    """Events for unknown channels, of unknown types, or a replaced app are absorbed without a session."""
    cfg = load_config(None, env={})
    conv: Conversation = _Idle()
    mgr = CallManager(cfg, AriClient(cfg.ari.url, "u", "p", "a"), lambda: conv)
    for data in ({"type": "StasisEnd", "channel": {"id": "nobody"}}, {"type": "Whatever"},
                 {"type": "ApplicationReplaced", "application": "ari-agent"},
                 {"type": "ChannelDestroyed", "channel": {"id": "zz"}, "cause": "x"}):
        mgr.dispatch(parse_event(data))
    assert mgr.sessions == {}
    await mgr.close()


def test_handoff_variables_are_dialplan_safe_and_inherited() -> None:
    from ari_agent.call.handoff import handoff_variables

    v = handoff_variables("tool_error", {"intent": "order_status", "verified_identity": "basic",
                                         "result.status": "shipped", "summary": "x" * 900})
    assert v["__ARI_AGENT_INTENT"] == "order_status"
    assert v["__ARI_AGENT_VERIFIED"] == "basic"
    assert v["__ARI_AGENT_RESULT_STATUS"] == "shipped"
    assert v["__ARI_AGENT_REASON"] == "tool_error"
    assert len(v["__ARI_AGENT_SUMMARY"]) == 500
    assert all(k.startswith("__ARI_AGENT_") and k[2:].replace("_", "").isalnum() for k in v)
