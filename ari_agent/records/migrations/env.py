"""Alembic's environment for the call records: always given an open connection by ``records.migrate``
(``config.attributes["connection"]``); there is no offline (SQL script) mode and no ``alembic.ini``."""

from __future__ import annotations

from alembic import context

from ari_agent.records.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the call-record migrations run through ari_agent.records.migrate (ari-agent records "
                       "migrate), which hands them a connection")
# render_as_batch: SQLite cannot ALTER most things; batch mode copies the table when a change needs it.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
