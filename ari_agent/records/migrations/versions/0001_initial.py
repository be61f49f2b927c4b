"""Schema 1: calls, their intents and tool calls (ari-agent before the recognition columns).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy = op.create_table("ari_agent_schema", sa.Column("version", sa.Integer, nullable=False))
    op.bulk_insert(legacy, [{"version": 1}])
    op.create_table(
        "call_records",
        sa.Column("call_id", sa.String(128), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("caller_hash", sa.String(64)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("transfer_queue", sa.String(128)),
        sa.Column("transfer_reason", sa.String(64)),
        sa.Column("transfer_correct", sa.Boolean),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("stage_ms", sa.JSON, nullable=False),
        sa.Column("policy_events", sa.JSON, nullable=False),
        sa.Column("config_version", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("human_handle_s", sa.Float),
        sa.Column("repeat_of", sa.String(128)),
    )
    op.create_index("ix_call_records_started_at", "call_records", ["started_at"])
    op.create_index("ix_call_records_caller_hash", "call_records", ["caller_hash"])
    op.create_index("ix_call_records_repeat_of", "call_records", ["repeat_of"])
    op.create_table(
        "call_intents",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("intent", sa.String(128), nullable=False),
    )
    op.create_index("ix_call_intents_intent", "call_intents", ["intent"])
    op.create_table(
        "tool_calls",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("call_records.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.String(128)),
        sa.Column("ms", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("tool_calls")
    op.drop_table("call_intents")
    op.drop_table("call_records")
    op.drop_table("ari_agent_schema")
