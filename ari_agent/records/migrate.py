"""Schema migrations of the call-record database: Alembic, run programmatically (no ``alembic.ini``).

``upgrade(conn)`` brings a database to the newest schema ("head") inside the caller's transaction;
``CallRecordStore`` runs it on every open, and ``ari-agent records migrate --db URL`` runs it on its own
(``--to REVISION`` for an older one, ``records status`` to see where a database stands).

Three kinds of database are met:
- empty: the revisions run from the first (``0001_initial`` creates the tables);
- Alembic-managed (an ``alembic_version`` row): the revisions after its own run; a revision this
  ari-agent does not ship means a newer ari-agent wrote it, and it is refused rather than misread;
- made before Alembic (ari-agent's own ``ari_agent_schema`` version row, 1 or 2, and no
  ``alembic_version``): stamped at the revision of its version, then upgraded like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from ari_agent.errors import AriAgentError

MIGRATIONS = Path(__file__).with_name("migrations")
# ari_agent_schema.version of a database from before Alembic -> the revision that made that schema.
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
VERSION_TABLE = "alembic_version"  # Alembic's default


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # None: an empty database (or one from before Alembic, not stamped yet)
    legacy_version: int | None  # the ari_agent_schema row, when there is one
    head: str

    @property
    def at_head(self) -> bool:
        return self.revision == self.head


def _config(conn: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    rev = _scripts().get_current_head()
    assert rev is not None, "no migrations shipped"
    return rev


def state(conn: Connection) -> SchemaState:
    """Where ``conn``'s database stands (reads only)."""
    inspector = sa.inspect(conn)
    revision: str | None = None
    if inspector.has_table(VERSION_TABLE):  # read directly: MigrationContext logs two INFO lines per use
        rows = [str(r[0]) for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))]
        if len(rows) > 1:
            raise AriAgentError(f"the records database has several schema heads ({', '.join(rows)}): not one of ours")
        revision = rows[0] if rows else None
    legacy: int | None = None
    if inspector.has_table("ari_agent_schema"):
        row = conn.execute(sa.text("SELECT version FROM ari_agent_schema")).first()
        legacy = None if row is None else int(row[0])
    return SchemaState(revision, legacy, head())


def upgrade(conn: Connection, to: str = "head") -> SchemaState:
    """Migrate ``conn``'s database to revision ``to`` (the newest by default); returns the state after.
    Raises ``AriAgentError`` for a database newer than this ari-agent or an unknown target."""
    scripts = _scripts()
    before = state(conn)
    if to != "head" and _revision(scripts, to) is None:
        raise AriAgentError(f"no records schema revision {to!r} (known: {', '.join(known_revisions())})")
    if before.revision is not None and _revision(scripts, before.revision) is None:
        raise AriAgentError(f"the records database is at schema revision {before.revision}, which this ari-agent "
                            f"does not know (its newest is {before.head}): upgrade ari-agent")
    if to == "head" and before.at_head:
        return before  # the usual open: nothing to do, nothing logged
    cfg = _config(conn)
    if before.revision is None and before.legacy_version is not None:
        legacy = LEGACY_REVISIONS.get(before.legacy_version)
        if legacy is None:
            raise AriAgentError(f"the records database has schema {before.legacy_version}, newer than this "
                                f"ari-agent knows without a migration history: upgrade ari-agent")
        command.stamp(cfg, legacy)
    command.upgrade(cfg, to)
    return state(conn)


def known_revisions() -> list[str]:
    """The shipped revisions, oldest first."""
    return [s.revision for s in reversed(list(_scripts().walk_revisions()))]


def _revision(scripts: ScriptDirectory, rev: str) -> object | None:
    try:
        return scripts.get_revision(rev)
    except Exception:  # alembic raises several kinds (CommandError, ResolutionError) for an unknown id
        return None
