"""Schema 3: the service-level facts (the agent's first prompt, a transfer's human leg).

When the agent's first prompt began (``answer_s``), and the human leg of a transfer as the ACD reports
it (``human_answered``, ``human_wait_s``: whether a person answered, after how long in the queue).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_records", sa.Column("answer_s", sa.Float))
    op.add_column("call_records", sa.Column("human_answered", sa.Boolean))
    op.add_column("call_records", sa.Column("human_wait_s", sa.Float))
    op.execute("UPDATE ari_agent_schema SET version = 3")


def downgrade() -> None:
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("human_wait_s")
        batch.drop_column("human_answered")
        batch.drop_column("answer_s")
    op.execute("UPDATE ari_agent_schema SET version = 2")
