"""``follow_up``: a slow write queued once an intent completed (the demo map's confirmation text).

The map refuses a follow-up that is not a queued write, that no confirmed write covers, or that names
what the intent does not have, with file:line; the engine sends it after the answer, says ``say`` only
when the write is accepted, and never hands off for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, parse_intent_map
from ari_agent.errors import ConfigError
from ari_agent.seam import CallStarted, CallTool, Hangup, Listen, Say, Timeout, ToolResult, Transfer, Utterance

DEMO = DEMO_MAP_PATH.read_text(encoding="utf-8")
CONFIRM_TOOLS = ("    tools: [verify_identity, identity_record, get_appointment, confirm_appointment, "
                 "send_confirmation]\n")
FOLLOW_UP_TOOL = "    follow_up:  # after the confirmation: a text message, said only once it is queued (durably)\n" \
                 "      tool: send_confirmation\n"


def test_the_demo_appointment_intents_send_a_queued_confirmation(demo_map: IntentMap) -> None:
    assert demo_map.tools["send_confirmation"].async_write
    assert demo_map.tools_config.spec("send_confirmation").url == "{base_url}/messages"
    for name in ("appointment_confirm", "appointment_reschedule"):
        intent = demo_map.intent(name)
        assert intent is not None and intent.follow_up is not None
        assert intent.follow_up.tool == "send_confirmation" and intent.follow_up.failed
    # the NLU sees no change: no intent was added for it
    assert [i.name for i in demo_map.nlu_intents()].count("appointment_confirm") == 1


def _refused(old: str, new: str) -> ConfigError:
    assert DEMO.count(old) == 1, old
    text = DEMO.replace(old, new)
    with pytest.raises(ConfigError) as info:
        parse_intent_map(text, "map.yaml")
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "key", "reason", "line_text"),
    [
        (CONFIRM_TOOLS, CONFIRM_TOOLS.replace(", send_confirmation", ""), "intents[1].follow_up.tool",
         "not in this intent's tools allowlist", "      tool: send_confirmation"),
        (FOLLOW_UP_TOOL, FOLLOW_UP_TOOL.replace("send_confirmation", "get_appointment"),
         "intents[1].follow_up.tool", "is not 'async_write: true'", "      tool: get_appointment"),
        (FOLLOW_UP_TOOL, FOLLOW_UP_TOOL.replace("send_confirmation", "nope"), "intents[1].follow_up.tool",
         "not defined in 'tools'", "      tool: nope"),
        ('      say: "I\'ve sent a text message confirming it to the number on your account."',
         '      say: "Sent to {result.phone}."', "intents[1].follow_up.say", "result field 'phone'",
         '      say: "Sent to {result.phone}."'),
        ('      failed: "I couldn\'t send a confirmation text just now, but your appointment is confirmed."',
         '      failed: "Not sent to {identity.nope}."', "intents[1].follow_up.failed", "nope",
         '      failed: "Not sent to {identity.nope}."'),
        ("      failed: \"I couldn't send a confirmation text just now, but your appointment is confirmed.\"\n",
         "      failed: \"I couldn't send a confirmation text just now, but your appointment is confirmed.\"\n"
         "      confirm: \"Shall I text you?\"\n", "intents[1].follow_up.confirm", "unknown key",
         '      confirm: "Shall I text you?"'),
    ],
)
def test_a_bad_follow_up_is_refused_with_file_line_and_reason(old: str, new: str, key: str, reason: str,
                                                              line_text: str) -> None:
    err = _refused(old, new)
    assert err.key_path == key and reason in err.reason, str(err)
    assert err.line == DEMO.replace(old, new).splitlines().index(line_text) + 1, str(err)
    assert err.file == "map.yaml"


def test_a_follow_up_needs_a_write_to_ride_on() -> None:
    old = "    tools: [lookup_order]\n"
    new = ("    tools: [lookup_order, send_confirmation]\n    follow_up:\n      tool: send_confirmation\n"
           "      say: \"Sent.\"\n")
    err = _refused(old, new)
    assert err.key_path == "intents[0].follow_up" and "no write step" in err.reason, str(err)
    assert err.line == DEMO.replace(old, new).splitlines().index("    follow_up:") + 1


# ------------------------------------------------------------------ the engine

APPOINTMENT = {"appointment_id": "A-100", "customer_id": "C-1001", "date": "2026-03-07", "time": "10:30",
               "status": "confirmed", "description": "boiler service"}


def _to_the_question(engine: ConversationEngine) -> None:
    """Verify the caller and read A-100, up to "Would you like me to confirm it?"."""
    engine.handle(CallStarted(caller_id="+15551230001"))
    engine.handle(Utterance("I want to confirm my appointment"))
    engine.handle(Utterance("1001"))
    verify = _call(engine.handle(Utterance("SW1A 1AA")))
    get = _call(engine.handle(ToolResult(verify.call_id, True, {"verified": True, "level": "basic",
                                                                "customer_id": "C-1001"})))
    engine.handle(ToolResult(get.call_id, True, {**APPOINTMENT, "status": "booked"}))


def _to_the_write(engine: ConversationEngine) -> CallTool:
    """Confirm A-100 up to the write's CallTool."""
    _to_the_question(engine)
    write = _call(engine.handle(Utterance("yes")))
    assert write.name == "confirm_appointment"
    return write


def _call(actions: list[Any]) -> CallTool:
    calls = [a for a in actions if isinstance(a, CallTool)]
    assert len(calls) == 1, actions
    return calls[0]


def _said(actions: list[Any]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Say))


def test_the_follow_up_comes_after_the_answer_and_is_said_once_accepted(
        make_engine: Callable[..., ConversationEngine]) -> None:
    engine = make_engine()
    write = _to_the_write(engine)
    out = engine.handle(ToolResult(write.call_id, True, APPOINTMENT))
    assert "that's confirmed" in _said(out) and "text message" not in _said(out)
    follow = _call(out)
    assert follow.name == "send_confirmation"
    assert follow.args == {"customer_id": "C-1001", "appointment_id": "A-100"}
    assert follow.idempotency_key.startswith("appointment_confirm-") and follow.idempotency_key != \
        write.idempotency_key
    assert engine.state.phase == "tool"
    assert engine.handle(Utterance("hello?")) == []  # waiting on the queue, not on the caller
    done = engine.handle(ToolResult(follow.call_id, True, {"state": "spooled"}, submitted=True))
    assert "I've sent a text message confirming it" in _said(done)
    assert any(isinstance(a, Listen) and a.expect.kind == "open" for a in done)
    assert "send_confirmation ok (queued)" in engine.notes
    assert isinstance(engine.handle(Utterance("no thanks"))[-1], Hangup)


@pytest.mark.parametrize("failure", ["queue_unavailable", "timeout", "cancelled"])
def test_a_follow_up_that_cannot_be_stored_is_not_claimed_and_hands_nobody_off(
        make_engine: Callable[..., ConversationEngine], failure: str) -> None:
    engine = make_engine()
    write = _to_the_write(engine)
    follow = _call(engine.handle(ToolResult(write.call_id, True, APPOINTMENT)))
    if failure == "timeout":
        out = engine.handle(Timeout("tool"))
    elif failure == "cancelled":  # an operator cancelled the job with this key: ok from the queue, never sent
        out = engine.handle(ToolResult(follow.call_id, True, {"state": "cancelled"}, submitted=True))
    else:
        out = engine.handle(ToolResult(follow.call_id, False, {}, error=failure))
    said = _said(out)
    assert "couldn't send a confirmation text" in said and "I've sent" not in said
    assert not any(isinstance(a, Transfer) for a in out) and not engine.ended
    assert f"follow-up send_confirmation failed: {failure}" in engine.notes


def test_a_declined_write_sends_no_follow_up(make_engine: Callable[..., ConversationEngine]) -> None:
    engine = make_engine()
    _to_the_question(engine)
    out = engine.handle(Utterance("no"))
    assert not any(isinstance(a, CallTool) for a in out)
    assert "left your appointment as it is" in _said(out)
