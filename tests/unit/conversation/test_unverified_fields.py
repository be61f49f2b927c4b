"""``unverified_fields``: which result fields an intent may say to a caller who is not verified.

The map names them per intent; the others are withheld (a variant that needs one is skipped, a ``when``
on one does not match) until the caller is verified. A wrong setting is refused with file:line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, parse_intent_map
from ari_agent.errors import ConfigError
from ari_agent.seam import CallStarted, CallTool, Say, ToolResult, Utterance

from .conftest import DATA

DEMO = DEMO_MAP_PATH.read_text(encoding="utf-8")
DEMO_LINE = "    unverified_fields: [status, eta]\n"
SHIPPED = {"order_number": "4567", "status": "shipped", "eta": "2026-03-12", "carrier": "UPS",
           "items": ["boiler valve"]}


def test_the_demo_order_status_says_status_and_eta_unverified(demo_map: IntentMap) -> None:
    order = demo_map.intent("order_status")
    assert order is not None and order.unverified_fields == ("status", "eta")
    assert order.speakable("status", "none") and order.speakable("eta", "none")
    assert not order.speakable("carrier", "none")
    assert order.speakable("carrier", "basic") and order.speakable("carrier", "strong")
    # intents without the setting: every declared field (the output contract is the list)
    faq = demo_map.intent("faq_address")
    assert faq is not None and faq.unverified_fields is None and faq.speakable("answer", "none")


def _refused(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_intent_map(text, "acme.yaml")
    return info.value


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("new", "key", "reason"),
    [
        ("    unverified_fields: [status, tracking]\n", "intents[0].unverified_fields[1]",
         "'tracking' is not a result field declared in output_contract (declared: status, carrier, eta)"),
        ("    unverified_fields: [status, status]\n", "intents[0].unverified_fields[1]", "'status' is listed twice"),
        ("    unverified_fields: [eta]\n", "intents[0].responses.answer",
         "no answer variant can be said to an unverified caller: add one that uses only the result fields in "
         "unverified_fields (eta)"),
        ("    unverified_fields: status\n", "intents[0].unverified_fields", "tuple"),
    ],
)
def test_a_bad_setting_is_refused_with_file_line_and_key(new: str, key: str, reason: str) -> None:
    assert DEMO.count(DEMO_LINE) == 1
    text = DEMO.replace(DEMO_LINE, new)
    err = _refused(text)
    assert err.key_path == key and reason in err.reason, str(err)
    want = _line_of(text, new) if key.startswith("intents[0].unverified_fields") else \
        _line_of(text, "    responses:\n      intro: \"Sure, I can check on your order.\"") + 2
    assert err.line == want and str(err).startswith(f"acme.yaml:{want}: "), str(err)


def test_an_intent_that_verifies_may_not_name_unverified_fields() -> None:
    anchor = "      requires: [appointment_id, date, time, status]\n      optional: [description]\n"
    assert DEMO.count(anchor) == 1
    text = DEMO.replace(anchor, anchor + "    unverified_fields: [status]\n")
    err = _refused(text)
    assert err.key_path == "intents[1].unverified_fields" and "verification: basic" in err.reason, str(err)
    assert err.line == _line_of(text, anchor) + 2


def test_an_empty_list_withholds_everything_and_needs_an_answer_without_results() -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace("      requires: [status]",
                                                           "      requires: [status]\n    unverified_fields: []")
    err = _refused(text)
    assert err.key_path == "intents[0].responses.answer" and "(none)" in err.reason, str(err)
    ok = text.replace('      answer: "Order {order_number} is {result.status}."',
                      '      answer:\n        - say: "Order {order_number} is {result.status}."\n'
                      '        - say: "I found order {order_number}; a colleague can tell you more."')
    m = parse_intent_map(ok, "m.yaml")
    assert m.intents[0].unverified_fields == ()


# ------------------------------------------------------------------ the engine


def _ask_order(engine: ConversationEngine, result: dict[str, Any]) -> tuple[list[str], CallTool]:
    engine.handle(CallStarted(caller_id="+15551230009"))
    engine.handle(Utterance("where is my order"))
    actions = engine.handle(Utterance("four five six seven"))
    call = next(a for a in actions if isinstance(a, CallTool))
    assert call.name == "lookup_order" and call.args == {"order_number": "4567"}
    said = [a.text for a in engine.handle(ToolResult(call.call_id, True, result)) if isinstance(a, Say)]
    return said, call


def test_an_unverified_caller_hears_the_status_and_day_but_not_the_carrier(
        make_engine: Callable[..., ConversationEngine]) -> None:
    engine = make_engine()
    said, _ = _ask_order(engine, SHIPPED)
    assert said[0] == "Order 4 5 6 7 has shipped and should arrive on Thursday, March 12th.", said
    assert not any("UPS" in s for s in said)
    assert "withheld from an unverified caller: carrier" in engine.notes
    assert "completed order_status" in engine.notes


def test_nothing_is_withheld_when_nothing_withheld_was_returned(make_engine: Callable[..., ConversationEngine]) -> None:
    engine = make_engine()
    said, _ = _ask_order(engine, {"order_number": "4567", "status": "delivered", "eta": "2026-03-02"})
    assert said[0] == "Order 4 5 6 7 was delivered on Monday, March 2nd.", said
    assert not any(n.startswith("withheld") for n in engine.notes)


def test_a_verified_caller_hears_the_carrier(make_engine: Callable[..., ConversationEngine]) -> None:
    """Verification through the map's flow (appointment_confirm), then the order: the whole answer."""
    engine = make_engine()
    engine.handle(CallStarted(caller_id="+15551230001"))
    engine.handle(Utterance("I want to confirm my appointment"))
    engine.handle(Utterance("one zero zero one"))
    verify = next(a for a in engine.handle(Utterance("S W one A one A A")) if isinstance(a, CallTool))
    get = next(a for a in engine.handle(ToolResult(verify.call_id, True, {"verified": True, "level": "basic",
                                                                          "customer_id": "C-1001"}))
               if isinstance(a, CallTool))
    assert get.name == "get_appointment" and engine.verified == "basic"
    engine.handle(ToolResult(get.call_id, False, {"detail": "none"}, error="not_found"))  # no appointment: done
    actions = engine.handle(Utterance("where is my order"))
    actions = engine.handle(Utterance("four five six seven")) if not any(isinstance(a, CallTool) for a in actions) \
        else actions
    call = next(a for a in actions if isinstance(a, CallTool))
    said = [a.text for a in engine.handle(ToolResult(call.call_id, True, SHIPPED)) if isinstance(a, Say)]
    assert said[0] == "Order 4 5 6 7 has shipped with UPS and should arrive on Thursday, March 12th.", said
    assert not any(n.startswith("withheld") for n in engine.notes)


MAP_WITH_WHEN = (DATA / "minimal-map.yaml").read_text().replace(
    '      answer: "Order {order_number} is {result.status}."',
    '      answer:\n        - when: {carrier: UPS}\n          say: "Order {order_number} is on a brown van."\n'
    '        - say: "Order {order_number} is {result.status}."').replace(
    "      requires: [status]", "      requires: [status]\n      optional: [carrier]\n    unverified_fields: [status]")


def test_a_when_on_a_withheld_field_does_not_match(classifier: Any) -> None:
    """Choosing the wording on a withheld field would say it all the same: the variant is skipped."""
    m = parse_intent_map(MAP_WITH_WHEN, "m.yaml")
    engine = ConversationEngine(m, classifier, call_id="t")
    said, _ = _ask_order(engine, {"status": "shipped", "carrier": "UPS"})
    assert said[0] == "Order 4 5 6 7 is shipped.", said
    plain = parse_intent_map(MAP_WITH_WHEN.replace("    unverified_fields: [status]\n", ""), "m.yaml")
    said, _ = _ask_order(ConversationEngine(plain, classifier, call_id="t"), {"status": "shipped", "carrier": "UPS"})
    assert said[0] == "Order 4 5 6 7 is on a brown van.", said  # no setting: every declared field
