"""Checks of the records migrations shared by the SQLite and PostgreSQL tests.

``make_legacy_database`` makes a call-record database the way ari-agent made them before Alembic:
``metadata.create_all`` of that schema's tables plus its ``ari_agent_schema`` version row (the code of
``records/schema.py`` and ``store.py`` at schema 1 and 2, kept here so the migrations are tested
against the real thing). ``check_upgraded`` opens one with the store and checks it is at the newest
revision with its rows kept; ``schema_drift`` compares a database's tables with ``records/schema.py``."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ari_agent.records import migrate
from ari_agent.records.model import CallRecord
from ari_agent.records.schema import SCHEMA_VERSION, metadata
from ari_agent.records.store import CallRecordStore


def legacy_metadata(version: int) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table("ari_agent_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
    columns = [
        sa.Column("call_id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("caller_hash", sa.String(64), index=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("transfer_queue", sa.String(128)),
        sa.Column("transfer_reason", sa.String(64)),
        sa.Column("transfer_correct", sa.Boolean),
        sa.Column("turns", sa.Integer, nullable=False, default=0),
        sa.Column("stage_ms", sa.JSON, nullable=False),
        sa.Column("policy_events", sa.JSON, nullable=False),
        sa.Column("config_version", sa.String(64), nullable=False, default=""),
        sa.Column("source", sa.String(16), nullable=False, default="call"),
        sa.Column("human_handle_s", sa.Float),
        sa.Column("repeat_of", sa.String(128), index=True),
    ]
    if version >= 2:
        columns += [sa.Column("heard", sa.JSON),
                    sa.Column("no_match_turns", sa.Integer, nullable=False, default=0, server_default="0")]
    sa.Table("call_records", metadata, *columns)
    sa.Table("call_intents", metadata,
             sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
                       primary_key=True),
             sa.Column("seq", sa.Integer, primary_key=True),
             sa.Column("intent", sa.String(128), nullable=False, index=True))
    sa.Table("tool_calls", metadata,
             sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
                       primary_key=True),
             sa.Column("seq", sa.Integer, primary_key=True),
             sa.Column("name", sa.String(128), nullable=False),
             sa.Column("ok", sa.Boolean, nullable=False),
             sa.Column("error", sa.String(128)),
             sa.Column("ms", sa.Float))
    return metadata


LEGACY_T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def make_legacy_database(url: str, version: int) -> None:
    """A database of schema ``version`` (1 or 2) holding one call ("old", with an intent and a tool call)."""
    metadata = legacy_metadata(version)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(metadata.tables["ari_agent_schema"].insert().values(version=version))
            row = {"call_id": "old", "started_at": LEGACY_T0, "ended_at": LEGACY_T0 + dt.timedelta(minutes=2),
                   "caller_hash": "c0ffee", "outcome": "resolved", "turns": 2, "stage_ms": {"stt": [41.0]},
                   "policy_events": [], "config_version": "v1", "source": "call"}
            if version >= 2:
                row.update(heard=["where is my order", "thanks"], no_match_turns=1)
            conn.execute(metadata.tables["call_records"].insert().values(**row))
            conn.execute(metadata.tables["call_intents"].insert().values(call_id="old", seq=0, intent="order_status"))
            conn.execute(metadata.tables["tool_calls"].insert().values(call_id="old", seq=0, name="lookup_order",
                                                                       ok=True, error=None, ms=12.0))
    finally:
        engine.dispose()


T1 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def schema_drift(url: str) -> list[object]:
    """What differs between the database's tables and ``records/schema.py`` (Alembic's autogenerate)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def revision_of(url: str) -> migrate.SchemaState:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return migrate.state(conn)
    finally:
        engine.dispose()


def check_upgraded(url: str, legacy: int) -> None:
    """The database is at the newest revision with its old call intact, and takes the new columns."""
    store = CallRecordStore(url)
    try:
        old = store.get("old")
        assert old is not None
        assert (old.started_at, old.outcome, old.turns, old.intents, old.stage_ms) == \
            (LEGACY_T0, "resolved", 2, ["order_status"], {"stt": [41.0]})
        assert [t.name for t in old.tool_calls] == ["lookup_order"] and old.caller_hash == "c0ffee"
        if legacy >= 2:
            assert old.heard == ["where is my order", "thanks"] and old.no_match_turns == 1
        else:
            assert old.heard == [] and old.no_match_turns == 0
        assert old.answer_s is None and old.human_answered is None and old.human_wait_s is None
        new = CallRecord("new", T1, T1 + dt.timedelta(minutes=1), "c0ffee", ["order_status"], "transferred",
                         transfer_queue="support", heard=["agent please"], no_match_turns=0, answer_s=0.6)
        assert store.add(new).repeat_of == "old"  # the old rows still serve the repeat-call link
        assert store.report_human_leg("new", answered=True, wait_s=14.0, handle_s=200.0)
        back = store.get("new")
        assert back is not None and (back.answer_s, back.human_answered, back.human_wait_s, back.human_handle_s) == \
            (0.6, True, 14.0, 200.0)
        assert store.count() == 2
    finally:
        store.close()
    st = revision_of(url)
    assert st.at_head and st.revision == migrate.head() and st.legacy_version == SCHEMA_VERSION
    assert schema_drift(url) == []
