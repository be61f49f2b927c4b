"""The call-record store on a real SQLite file: round trip, repeat-call links, no raw caller ids."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from ari_agent.errors import AriAgentError
from ari_agent.records.migrate import head
from ari_agent.records.model import CallerHasher, CallRecord, ToolCallRecord, version_hash
from ari_agent.records.store import CallRecordStore

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
HASH = CallerHasher("test-salt-1234")


def rec(call_id: str, at: dt.datetime, intents: list[str], caller: str = "+15551230001", **kw: object) -> CallRecord:
    return CallRecord(call_id=call_id, started_at=at, ended_at=at + dt.timedelta(seconds=90),
                      caller_hash=HASH.hash(caller), intents=intents, **kw)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> CallRecordStore:
    s = CallRecordStore(f"sqlite:///{tmp_path / 'records.sqlite3'}")
    yield s  # type: ignore[misc]
    s.close()


def test_a_record_round_trips(store: CallRecordStore) -> None:
    r = rec("c1", T0, ["account_unlock", "bill_payment"], outcome="transferred", transfer_queue="billing",
            transfer_reason="restricted", transfer_correct=True, turns=5,
            stage_ms={"stt": [40.0, 55.5], "engine": [1.2]},
            tool_calls=[ToolCallRecord("verify_identity", True, None, 12.5), ToolCallRecord("unlock_account", False,
                                                                                           "backend_error", 700.0)],
            policy_events=["unverified: x"], config_version=version_hash(b"map"), human_handle_s=240.0,
            heard=["my account is locked"], no_match_turns=1, answer_s=0.42, human_answered=True, human_wait_s=12.0)
    store.add(r)
    back = store.get("c1")
    assert back == r
    assert back is not None and back.started_at.tzinfo is not None and back.duration_s == 90.0
    assert store.count() == 1


def test_repeat_calls_are_linked_within_7_days_by_caller_and_intent(store: CallRecordStore) -> None:
    store.add(rec("a", T0, ["order_status"]))
    assert store.add(rec("b", T0 + dt.timedelta(days=2), ["faq_hours", "order_status"])).repeat_of == "a"
    assert store.add(rec("c", T0 + dt.timedelta(days=3), ["order_status"])).repeat_of == "b"  # the latest earlier
    assert store.add(rec("d", T0 + dt.timedelta(days=3), ["account_unlock"])).repeat_of is None  # other intent
    assert store.add(rec("e", T0 + dt.timedelta(days=3), ["order_status"], caller="+15551230002")).repeat_of is None
    assert store.add(rec("f", T0 + dt.timedelta(days=10, hours=1), ["order_status"])).repeat_of is None  # > 7 days
    assert store.add(rec("g", T0, ["order_status"], caller="anonymous")).repeat_of is None
    assert store.get("c") is not None and store.get("c").repeat_of == "b"  # type: ignore[union-attr]


def test_between_is_start_inclusive_end_exclusive(store: CallRecordStore) -> None:
    for i in range(3):
        store.add(rec(f"r{i}", T0 + dt.timedelta(days=i), []))
    got = store.between(T0, T0 + dt.timedelta(days=2))
    assert [r.call_id for r in got] == ["r0", "r1"]
    # the KPI window reaches 7 days either side (repeats after the range decide FCR)
    assert [r.call_id for r in store.kpi_window(T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2))] == \
        ["r0", "r1", "r2"]


def test_the_caller_number_is_never_stored(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    s = CallRecordStore(f"sqlite:///{db}")
    s.add(rec("x", T0, ["order_status"], caller="+1 555 123 0001"))
    s.close()
    raw = db.read_bytes()
    assert b"5551230001" not in raw and b"555 123" not in raw
    assert HASH.hash("+1 (555) 123-0001") == HASH.hash("+15551230001")
    assert CallerHasher("another-salt-99").hash("+15551230001") != HASH.hash("+15551230001")
    with pytest.raises(AriAgentError, match="at least 8 characters"):
        CallerHasher("short")


def test_a_newer_schema_and_bad_urls_are_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite3"
    CallRecordStore(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(AriAgentError, match=f"at schema revision 0099, which this ari-agent does not know "
                                            f"\\(its newest is {head()}\\): upgrade ari-agent"):
        CallRecordStore(f"sqlite:///{db}")
    with pytest.raises(AriAgentError, match="bad records database URL"):
        CallRecordStore("nosuchdb://x")
    with pytest.raises(AriAgentError, match=r"cannot open records database sqlite:////proc/x/y.db"):
        CallRecordStore("sqlite:////proc/x/y.db")
    CallRecordStore(f"sqlite:///{tmp_path / 'new' / 'dir' / 'r.db'}").close()  # the folder is made
    assert (tmp_path / "new" / "dir" / "r.db").exists()
    with pytest.raises(AriAgentError) as err:
        CallRecordStore("postgresql://u:secret-pw@127.0.0.1:1/db")
    assert "secret-pw" not in str(err.value)


def test_records_refuse_naive_times_and_unknown_outcomes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CallRecord("x", dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="outcome must be one of"):
        CallRecord("x", T0, outcome="great")
