"""AMI messages → typed queue events and summaries: real shapes from Asterisk 22, and junk that must
never raise (one odd event must not stop the listener)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.telephony.ami_events import QueueSummary, channel_variables, parse_queue_event, parse_queue_summary

AGENT_CONNECT = {
    "Event": "AgentConnect", "Privilege": "agent,all", "Channel": "Local/c1@ari-agent-test-dialog-00000001;2",
    "CallerIDNum": "5551234", "CallerIDName": "Test caller", "Uniqueid": "1796164739.12", "Linkedid": "c1-leg",
    "DestChannel": "Local/support-desk@agent-desk-00000003;1", "Queue": "support",
    "Interface": "Local/support-desk@agent-desk/n", "MemberName": "Support desk (test)", "HoldTime": "3",
    "RingTime": "0", "ChanVariable": "ARI_AGENT_CALL_ID=call-abc123",
    "DestChanVariable": "ARI_AGENT_CALL_ID=call-abc123",
}


def test_agent_connect_is_correlated_to_our_call() -> None:
    ev = parse_queue_event(AGENT_CONNECT)
    assert ev is not None
    assert ev.kind == "agent_connect" and ev.queue == "support" and ev.call_id == "call-abc123"
    assert ev.interface == "Local/support-desk@agent-desk/n" and ev.hold_time_s == 3
    assert ev.caller_number == "5551234" and ev.member_channel.endswith(";1")


def test_each_followed_event_kind() -> None:
    kinds = {"QueueCallerJoin": "caller_join", "AgentCalled": "agent_called", "AgentConnect": "agent_connect",
             "AgentComplete": "agent_complete", "QueueCallerAbandon": "caller_abandon",
             "QueueCallerLeave": "caller_leave"}
    for name, kind in kinds.items():
        ev = parse_queue_event({**AGENT_CONNECT, "Event": name})
        assert ev is not None and ev.kind == kind


def test_call_id_from_the_member_channel_or_repeated_headers() -> None:
    only_dest = {k: v for k, v in AGENT_CONNECT.items() if k != "ChanVariable"}
    assert (ev := parse_queue_event(only_dest)) is not None and ev.call_id == "call-abc123"
    repeated = {**AGENT_CONNECT, "ChanVariable": ["OTHER=1", "ARI_AGENT_CALL_ID=call-x", "broken"]}
    assert (ev := parse_queue_event(repeated)) is not None and ev.call_id == "call-x"
    assert channel_variables({"ChanVariable(PJSIP/1-0001)": "ARI_AGENT_CALL_ID=call-y"}) == {
        "ARI_AGENT_CALL_ID": "call-y"}


def test_a_caller_that_did_not_come_from_the_agent_has_no_call_id() -> None:
    plain = {k: v for k, v in AGENT_CONNECT.items() if "Variable" not in k}
    assert (ev := parse_queue_event(plain)) is not None and ev.call_id is None
    empty = {**plain, "ChanVariable": "ARI_AGENT_CALL_ID="}
    assert (ev := parse_queue_event(empty)) is not None and ev.call_id is None


def test_malformed_events_give_none_or_defaults() -> None:
    assert parse_queue_event({}) is None
    assert parse_queue_event({"Event": "Hangup", "Queue": "support"}) is None  # not followed
    assert parse_queue_event({"Event": "AgentConnect"}) is None  # no queue
    assert parse_queue_event({"Event": ["AgentConnect"], "Queue": ""}) is None
    ev = parse_queue_event({**AGENT_CONNECT, "HoldTime": "soon", "Position": "-4", "TalkTime": "9" * 40})
    assert ev is not None and ev.hold_time_s is None and ev.position is None and ev.talk_time_s is None
    assert parse_queue_event({"Event": None, "Queue": None}) is None
    assert parse_queue_event({1: 2, "Event": "AgentCalled", "Queue": "q", "ChanVariable": [None, 5]}) is not None


@given(st.dictionaries(st.sampled_from(["Event", "Queue", "HoldTime", "ChanVariable", "DestChanVariable",
                                        "Interface", "Position", "Uniqueid", "x"]),
                       st.one_of(st.none(), st.text(max_size=30), st.integers(),
                                 st.lists(st.one_of(st.text(max_size=20), st.none()), max_size=4)),
                       max_size=9))
def test_no_input_raises(headers: dict[str, Any]) -> None:
    parse_queue_event(headers)
    parse_queue_summary([headers], "support")


SUMMARY_REPLY = [
    {"Response": "Success", "EventList": "start", "Message": "Queue summary will follow"},
    {"Event": "QueueSummary", "Queue": "support", "LoggedIn": "2", "Available": "1", "Callers": "0",
     "HoldTime": "45", "TalkTime": "120", "LongestHoldTime": "0"},
    {"Event": "QueueSummaryComplete", "EventList": "Complete", "ListItems": "1"},
]


def test_queue_summary() -> None:
    s = parse_queue_summary(SUMMARY_REPLY, "support")
    assert s == QueueSummary("support", logged_in=2, available=1, callers=0, hold_time_s=45, talk_time_s=120,
                             longest_hold_s=0)
    assert s.estimated_wait_s == 0  # a member is free for the next caller


def test_queue_summary_of_a_missing_queue_or_error_reply() -> None:
    assert parse_queue_summary(SUMMARY_REPLY, "billing") is None
    assert parse_queue_summary({"Response": "Error", "Message": "Permission denied"}, "support") is None
    broken = [{**SUMMARY_REPLY[1], "LoggedIn": "two"}]
    assert parse_queue_summary(broken, "support") is None
    assert parse_queue_summary("garbage", "support") is None


def test_estimated_wait_when_busy() -> None:
    busy = QueueSummary("support", logged_in=2, available=0, callers=3, hold_time_s=90, talk_time_s=0,
                        longest_hold_s=150)
    assert busy.estimated_wait_s == 150
