"""The call-record tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

These tables are the head of the Alembic migrations in ``migrations/versions`` (``records.migrate``
runs them): a schema change is a new revision there plus the change here, and
``tests/unit/records/test_migrations.py`` checks that both give the same tables. Times are stored in
UTC. Intents and tool calls are rows of their own (the repeat-call lookup and the tool failure rate
query them); per-stage latencies and policy events are JSON on the call row.
"""

from __future__ import annotations

import sqlalchemy as sa

# The legacy version row (``ari_agent_schema``, from before Alembic): each revision still sets it, so an
# ari-agent older than the migrations refuses a database newer than it knows instead of misreading it.
SCHEMA_VERSION = 3

metadata = sa.MetaData()

schema_info = sa.Table(
    "ari_agent_schema", metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

call_records = sa.Table(
    "call_records", metadata,
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
    # schema 2
    sa.Column("heard", sa.JSON),
    sa.Column("no_match_turns", sa.Integer, nullable=False, default=0, server_default="0"),
    # schema 3: service level
    sa.Column("answer_s", sa.Float),  # the call's arrival at the agent to its first prompt
    sa.Column("human_answered", sa.Boolean),  # after a transfer: a person answered (None: not reported)
    sa.Column("human_wait_s", sa.Float),  # after a transfer: time in the queue until answered or abandoned
)

call_intents = sa.Table(
    "call_intents", metadata,
    sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("intent", sa.String(128), nullable=False, index=True),
)

tool_calls = sa.Table(
    "tool_calls", metadata,
    sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.String(128)),
    sa.Column("ms", sa.Float),
)
