"""The same store on a real PostgreSQL 15 server, started by the test (Debian's ``postgresql``
package; the server runs as the ``postgres`` user on a free loopback port, over a fresh cluster):
round trip, repeat links, and the Alembic migrations (a new database, schema-1 and schema-2 databases
made the old way, no drift from ``records/schema.py``)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ari_agent.records import migrate
from ari_agent.records.kpi import compute_kpis
from ari_agent.records.model import CallerHasher, CallRecord, ToolCallRecord
from ari_agent.records.schema import SCHEMA_VERSION
from ari_agent.records.store import CallRecordStore
from tests.unit.records.migration_checks import check_upgraded, make_legacy_database, revision_of, schema_drift

pytestmark = pytest.mark.integration

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/nonexistent"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    assert (PG_BIN / "initdb").exists(), "PostgreSQL is not installed (scripts/install.sh installs 'postgresql')"
    root = Path(tempfile.mkdtemp(prefix="ari-agent-pg-"))
    data = root / "data"
    shutil.chown(root, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-U", "ariagent", "--auth=trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    port = _free_port()
    server = subprocess.Popen([*as_pg, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port),
                               "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
                               "-c", "fsync=off"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True, check=False).returncode != 0:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else "postgres exited"
            assert time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.2)
        yield f"postgresql+psycopg://ariagent@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_the_store_round_trips_and_links_repeats_on_postgresql(postgres_url: str) -> None:
    store = CallRecordStore(postgres_url)
    try:
        h = CallerHasher("pg-test-salt").hash("+15551230001")
        t0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
        first = CallRecord("pg-1", t0, t0 + dt.timedelta(minutes=2), h, ["order_status"], "resolved",
                           stage_ms={"stt": [40.0]}, tool_calls=[ToolCallRecord("lookup_order", True, None, 12.0)],
                           policy_events=["x: y"], config_version="abc")
        store.add(first)
        again = store.add(CallRecord("pg-2", t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=1, minutes=3), h,
                                     ["order_status"], "transferred", transfer_queue="support",
                                     transfer_reason="tool_error"))
        assert again.repeat_of == "pg-1"
        assert store.get("pg-1") == first
        k = compute_kpis(store.kpi_window(t0, t0 + dt.timedelta(days=7)), t0, t0 + dt.timedelta(days=7))
        assert k.calls == 2 and k.fcr == 0.5 and k.repeat_call_rate == 0.5 and k.transfer_loops == 0
        # a second store on the same database finds the schema and keeps the rows
        second = CallRecordStore(postgres_url)
        assert second.count() == 2
        second.close()
    finally:
        store.close()


def _fresh_database(server_url: str, name: str) -> str:
    """A new, empty database on the test server (its URL)."""
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def test_a_new_database_on_postgresql_is_at_the_newest_revision_without_drift(postgres_url: str) -> None:
    url = _fresh_database(postgres_url, "fresh")
    CallRecordStore(url).close()
    st = revision_of(url)
    assert st.at_head and st.revision == migrate.head() and st.legacy_version == SCHEMA_VERSION
    assert schema_drift(url) == []


@pytest.mark.parametrize("legacy", [1, 2])
def test_a_postgresql_database_from_before_alembic_is_upgraded_with_its_rows(postgres_url: str, legacy: int) -> None:
    url = _fresh_database(postgres_url, f"legacy{legacy}")
    make_legacy_database(url, legacy)
    assert revision_of(url).revision is None and revision_of(url).legacy_version == legacy
    check_upgraded(url, legacy)
