from __future__ import annotations

import datetime as dt
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ari_agent.integrations.idempotency import idempotency_key, is_valid_key

RQ_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_a_pinned_key_never_changes() -> None:
    # Keys outlive a release (queued jobs, backend records): the hash must not drift between versions.
    assert idempotency_key("call-1", "order_status", {"order_number": "4567"}) == \
        "order_status-f35fcd5a2e05aed86ed89aa418d5618f"


def test_same_inputs_same_key_whatever_the_order() -> None:
    a = idempotency_key("c1", "reschedule", {"new_date": dt.date(2030, 1, 2), "appointment_id": "A-1",
                                             "extra": {"b": 1, "a": [1, 2]}})
    b = idempotency_key("c1", "reschedule", {"appointment_id": "A-1", "extra": {"a": [1, 2], "b": 1},
                                             "new_date": "2030-01-02"})
    assert a == b


def test_any_difference_changes_the_key() -> None:
    base = idempotency_key("c1", "confirm", {"appointment_id": "A-1"})
    assert base != idempotency_key("c2", "confirm", {"appointment_id": "A-1"})
    assert base != idempotency_key("c1", "confirm2", {"appointment_id": "A-1"})
    assert base != idempotency_key("c1", "confirm", {"appointment_id": "A-2"})
    assert base != idempotency_key("c1", "confirm", {"appointment_id": "A-1", "note": None})


def test_unsafe_intent_names_are_made_rq_safe() -> None:
    key = idempotency_key("c1", "weird intent/name:with spaces!", {})
    assert RQ_SAFE.match(key) and key.startswith("weird_intent_name_with_spaces-")
    assert idempotency_key("c1", "???", {}).startswith("call-")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@given(st.text(max_size=40), st.text(max_size=40), st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_keys_are_always_rq_safe_and_stable(call_id: str, intent: str, slots: dict[str, Any]) -> None:
    key = idempotency_key(call_id, intent, slots)
    assert RQ_SAFE.match(key) and len(key) <= 72 and is_valid_key(key)
    assert key == idempotency_key(call_id, intent, dict(reversed(list(slots.items()))))
