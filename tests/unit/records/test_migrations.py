"""The records database's Alembic migrations on real SQLite files: a new database, databases made by
ari-agent before Alembic (schema 1 and 2, made the old way), ``ari-agent records migrate/status``, and
the migrated tables matching ``records/schema.py`` (no drift between the two)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.errors import AriAgentError
from ari_agent.records import migrate
from ari_agent.records.schema import SCHEMA_VERSION
from ari_agent.records.store import CallRecordStore
from tests.unit.records.migration_checks import check_upgraded, make_legacy_database, revision_of, schema_drift


def test_a_new_database_is_created_at_the_newest_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    CallRecordStore(url).close()
    st = revision_of(url)
    assert st.revision == migrate.head() == migrate.known_revisions()[-1] and st.legacy_version == SCHEMA_VERSION
    assert migrate.known_revisions() == ["0001", "0002", "0003"]
    assert schema_drift(url) == []
    CallRecordStore(url).close()  # opening again changes nothing
    assert revision_of(url).revision == migrate.head()


@pytest.mark.parametrize("legacy", [1, 2])
def test_a_database_from_before_alembic_is_upgraded_with_its_rows(tmp_path: Path, legacy: int) -> None:
    url = f"sqlite:///{tmp_path / f'schema{legacy}.sqlite3'}"
    make_legacy_database(url, legacy)
    st = revision_of(url)
    assert st.revision is None and st.legacy_version == legacy and not st.at_head
    check_upgraded(url, legacy)


def test_records_migrate_and_status_step_through_the_revisions(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    make_legacy_database(url, 1)
    assert main(["records", "status", "--db", url]) == 1
    out = capsys.readouterr().out
    assert "revision none, legacy version row 1; newest 0003 (run: ari-agent records migrate)" in out
    assert main(["records", "migrate", "--db", url, "--to", "0002"]) == 0
    assert "schema legacy 1 -> 0002 (newest: 0003)" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "old.sqlite3") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(call_records)")}
        assert {"heard", "no_match_turns"} <= columns and "answer_s" not in columns
        assert conn.execute("SELECT version FROM ari_agent_schema").fetchone() == (2,)
    assert main(["records", "migrate", "--db", url]) == 0
    assert "schema 0002 -> 0003 (newest: 0003)" in capsys.readouterr().out
    assert main(["records", "status", "--db", url]) == 0
    assert "revision 0003, legacy version row 3; newest 0003 (up to date)" in capsys.readouterr().out
    check_upgraded(url, 1)


def test_unknown_revisions_and_newer_databases_are_refused_in_one_line(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    assert main(["records", "migrate", "--db", url, "--to", "0042"]) == 2
    assert "no records schema revision '0042' (known: 0001, 0002, 0003)" in capsys.readouterr().err
    assert main(["records", "migrate", "--db", "nosuchdb://x"]) == 2
    assert "bad records database URL" in capsys.readouterr().err
    legacy = tmp_path / "future.sqlite3"
    with sqlite3.connect(legacy) as conn:  # a pre-Alembic version row from no ari-agent that ever was
        conn.executescript("CREATE TABLE ari_agent_schema (version INTEGER NOT NULL);"
                           "INSERT INTO ari_agent_schema VALUES (7);")
    with pytest.raises(AriAgentError, match="has schema 7, newer than this ari-agent knows"):
        CallRecordStore(f"sqlite:///{legacy}")
    with sqlite3.connect(legacy) as conn:  # refused without touching it
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is None
