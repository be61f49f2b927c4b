"""The intent map: the demo map loads; broken maps are refused with file:line, key path and reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ari_agent.conversation.intent_map import (
    DEMO_MAP_PATH,
    IntentMap,
    load_intent_map,
    parse_intent_map,
)
from ari_agent.errors import ConfigError

from .conftest import DATA

BROKEN = sorted((DATA / "broken_maps").glob("*.yaml"))


def _expectations(path: Path) -> tuple[int, str, str]:
    text = path.read_text(encoding="utf-8")
    line = next(i for i, raw in enumerate(text.splitlines(), 1) if "# <-- error" in raw)
    key = re.search(r"^# expect-key: ?(.*)$", text, re.M)
    reason = re.search(r"^# expect-reason: (.*)$", text, re.M)
    assert key is not None and reason is not None, path
    return line, key.group(1).strip(), reason.group(1).strip()


def test_there_are_at_least_ten_broken_maps() -> None:
    assert len(BROKEN) >= 10


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_map_is_refused_with_line_key_and_reason(path: Path) -> None:
    line, key, reason = _expectations(path)
    with pytest.raises(ConfigError) as info:
        load_intent_map(path)
    err = info.value
    assert err.file == str(path)
    assert err.line == line, f"{err} (wanted line {line})"
    assert err.key_path == key, str(err)
    assert reason in err.reason, str(err)
    assert str(err).startswith(f"{path}:{line}: ")  # one line a person can act on, no traceback


def test_minimal_map_is_valid() -> None:
    m = load_intent_map(DATA / "minimal-map.yaml")
    assert [i.name for i in m.intents] == ["order_status"]
    assert m.tools["lookup_order"].write is False


def test_demo_map_loads_with_every_intent(demo_map: IntentMap) -> None:
    names = {i.name for i in demo_map.intents}
    assert names == {"order_status", "appointment_confirm", "appointment_reschedule", "faq_hours", "faq_address",
                     "account_unlock", "bill_payment", "speak_to_human"}
    assert set(demo_map.spec.queues) == {"support", "billing"}
    assert demo_map.spec.fallback_queue == "support"
    unlock = demo_map.intent("account_unlock")
    assert unlock is not None and unlock.restricted and unlock.verification == "strong"
    bill = demo_map.intent("bill_payment")
    assert bill is not None and bill.restricted and bill.handoff == "always" and bill.escalation.queue == "billing"
    reschedule = demo_map.intent("appointment_reschedule")
    assert reschedule is not None and {s.type for s in reschedule.slots} == {"date", "time"}
    assert all(demo_map.tools[s.tool].write is False or s.confirm for i in demo_map.intents for s in i.steps)
    order = demo_map.intent("order_status")
    assert order is not None and order.slots[0].min_length == 4 and order.slots[0].max_length == 8


def test_demo_map_path_is_packaged() -> None:
    assert DEMO_MAP_PATH.name == "demo-intent-map.yaml" and DEMO_MAP_PATH.exists()


def test_nlu_intents_skip_disabled() -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "    description: \"Order status.\"", "    description: \"Order status.\"\n    enabled: false")
    m = parse_intent_map(text, "m.yaml")
    assert m.nlu_intents() == []


def test_missing_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_intent_map("/nonexistent/map.yaml")


def test_root_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="a mapping"):
        parse_intent_map("- just a list\n", "x.yaml")


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("{result.status}", "{identity.customer_id}"), "intents[0].responses.answer",
         "needs no verification"),
        (("    tools: [lookup_order]", "    tools: [lookup_order, nope]"), "intents[0].tools[1]", "not defined"),
        (('      answer: "Order {order_number} is {result.status}."', '      answer: "Order {order_number"'),
         "intents[0].responses.answer", "bad template"),
        (("        prompt: \"What's your order number?\"", "        prompt: \"What's your {result.x}?\""),
         "intents[0].slots[0].prompt", "result field 'x'"),
        (("      - name: order_number", "      - name: result"), "intents[0].slots[0].name", "reserved"),
    ],
)
def test_more_cross_field_rules(change: tuple[str, str], key: str, reason: str) -> None:
    assert_minimal_map_refused(change, key, reason)


def assert_minimal_map_refused(change: tuple[str, str], key: str, reason: str) -> None:
    """The minimal map with ``change`` applied is refused at ``key`` for ``reason``, with a line."""
    text = (DATA / "minimal-map.yaml").read_text()
    assert change[0] in text
    with pytest.raises(ConfigError) as info:
        parse_intent_map(text.replace(change[0], change[1]), "m.yaml")
    assert info.value.key_path == key and reason in info.value.reason, str(info.value)
    assert info.value.line is not None


def test_locale_and_postcode_slots() -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "fallback_queue: support\n", "fallback_queue: support\ndate_order: DMY\nlocale: {postcode: uk}\n")
    m = parse_intent_map(text, "m.yaml")
    assert m.spec.date_order == "DMY" and m.spec.locale.postcode == "uk"
    assert parse_intent_map((DATA / "minimal-map.yaml").read_text(), "m.yaml").spec.locale.postcode == "any"
    postcode = text.replace("        type: digits\n        min_length: 4\n        max_length: 8\n",
                            "        type: letters\n        format: postcode\n")
    slot = parse_intent_map(postcode, "m.yaml").intents[0].slots[0]
    assert slot.format == "postcode" and slot.alphanumeric  # a postcode holds digits: implied


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("fallback_queue: support\n", "fallback_queue: support\nlocale: {postcode: fr}\n"), "locale.postcode",
         "'any', 'uk' or 'us'"),
        (("fallback_queue: support\n", "fallback_queue: support\nlocale: {currency: GBP}\n"), "locale.currency",
         "unknown key"),
        (("fallback_queue: support\n", "fallback_queue: support\ndate_order: YMD\n"), "date_order",
         "'MDY' or 'DMY'"),
        (("        type: digits\n", "        type: digits\n        format: postcode\n"), "intents[0].slots[0]",
         "applies to letters slots, not digits"),
        (("        type: digits\n        min_length: 4\n        max_length: 8\n",
          "        type: letters\n        format: postcode\n        alphanumeric: false\n"), "intents[0].slots[0]",
         "holds digits too"),
        (("        type: digits\n", "        type: letters\n        format: zip\n"), "intents[0].slots[0].format",
         "'postcode'"),
    ],
)
def test_locale_rules(change: tuple[str, str], key: str, reason: str) -> None:
    assert_minimal_map_refused(change, key, reason)


@pytest.mark.parametrize(
    ("change", "key", "line"),
    [
        (("fallback_queue: support\n", "fallback_queue: support\nqueues: [billing]\n"), "queues", 6),
        (('examples: ["where is my order", "has my package shipped"]',
          'examples: ["where is my order"]\n    examples: ["has my package shipped"]'), "intents[0].examples", 15),
        (("        type: digits\n", "        type: digits\n        type: letters\n"), "intents[0].slots[0].type", 18),
        (("lookup_order: {method: GET,", "lookup_order: {method: POST, method: GET,"),
         "tools.definitions.lookup_order.method", 9),
    ],
)
def test_a_duplicate_key_anywhere_is_refused(change: tuple[str, str], key: str, line: int) -> None:
    text = (DATA / "minimal-map.yaml").read_text()
    assert change[0] in text
    with pytest.raises(ConfigError) as info:
        parse_intent_map(text.replace(change[0], change[1]), "m.yaml")
    err = info.value
    assert (err.key_path, err.line) == (key, line), str(err)
    assert err.reason.startswith("duplicate key (first at line"), str(err)
    assert str(err).startswith(f"m.yaml:{line}: {key}: duplicate key")


def test_demo_map_has_no_duplicate_keys() -> None:
    load_intent_map(DEMO_MAP_PATH)  # would raise: every key of the demo map is said once


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (("    tool: identity_record\n", "    tool: nope\n"), "verification.record.tool", "not defined"),
        (("    tool: identity_record\n", "    tool: unlock_account\n"), "verification.record.tool",
         "a record lookup only reads"),
        (("    codes: {postcode: postcode}", "    codes: {customer_number: postcode}"),
         "verification.record.codes.customer_number", "not 'format: postcode'"),
        (("    codes: {postcode: postcode}", "    codes: {nope: postcode}"), "verification.record.codes.nope",
         "not a slot of the verification levels"),
        (('    args: {customer_id: "C-{identity.customer_number}"}\n    codes',
          '    args: {customer_id: "{identity.postcode}"}\n    codes'), "verification.record.args.customer_id",
         "the lookup comes before it is asked"),
        (("    tools: [verify_identity, identity_record, unlock_account]",
          "    tools: [verify_identity, unlock_account]"),
         "intents[5].tools", "the record lookup needs the tool 'identity_record'"),
    ],
)
def test_the_record_lookup_is_checked(change: tuple[str, str], key: str, reason: str) -> None:
    text = DEMO_MAP_PATH.read_text()
    assert change[0] in text
    with pytest.raises(ConfigError) as info:
        parse_intent_map(text.replace(change[0], change[1]), "m.yaml")
    assert info.value.key_path == key and reason in info.value.reason, str(info.value)


def test_open_context_is_the_descriptions_that_fit(demo_map: IntentMap) -> None:
    """Whisper's open-turn prompt: every enabled intent's description, remarks in brackets left out."""
    context = demo_map.open_context()
    assert context.startswith("Tell the caller where their order is. Confirm an existing appointment.")
    assert "Pay a bill." in context and "restricted" not in context and "(" not in context
    assert context.endswith("The caller asks for a person.")
    # whole descriptions only, as many as fit
    short = demo_map.open_context(limit=80)
    assert short == "Tell the caller where their order is. Confirm an existing appointment."
    expect = demo_map.open_expectation(also=("no thanks",))
    assert (expect.kind, expect.context, expect.dtmf) == ("open", context, True)
    assert expect.phrases[-1] == "no thanks" and expect.phrases[:-1] == demo_map.open_phrases()


def test_open_context_skips_disabled_intents() -> None:
    text = (DATA / "minimal-map.yaml").read_text().replace(
        "    description: \"Order status.\"", "    description: \"Order status.\"\n    enabled: false")
    assert parse_intent_map(text, "m.yaml").open_context() == ""


def test_a_date_or_time_turn_carries_its_question_unless_it_could_hold_personal_data(demo_map: IntentMap) -> None:
    new_date = demo_map.slot("new_date")
    assert new_date is not None
    assert demo_map.slot_expectation(new_date).context == "What day would you like to move it to?"
    templated = new_date.model_copy(update={"prompt": "Your visit is on {result.date}. What day instead?"})
    assert demo_map.slot_expectation(templated).context == ""
    customer = demo_map.slot("customer_number")
    assert customer is not None and demo_map.slot_expectation(customer).context == ""  # digits: its own prompt
