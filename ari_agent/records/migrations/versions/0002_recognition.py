"""Schema 2: what the recogniser heard each caller turn (redacted) and the turns it did not understand.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_records", sa.Column("heard", sa.JSON))
    op.add_column("call_records", sa.Column("no_match_turns", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE ari_agent_schema SET version = 2")


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("no_match_turns")
        batch.drop_column("heard")
    op.execute("UPDATE ari_agent_schema SET version = 1")
