"""The end-of-call record writer: stores to a real SQLite file; a bad or slow database is logged, never raised."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest

from ari_agent.config import load_config
from ari_agent.records.call_facts import CallFacts
from ari_agent.records.store import CallRecordStore
from ari_agent.records.writer import CallRecordWriter, load_salt

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def facts(call_id: str = "call-1") -> CallFacts:
    return CallFacts(call_id, T0, T0 + dt.timedelta(seconds=5), "+15551230001", "handoff", "support",
                     "caller_request", notes=["request: human"])


def writer(tmp_path: Path, url: str, **env: str) -> CallRecordWriter:
    cfg = load_config(None, env={"ARI_AGENT__RECORDS__URL": url,
                                 "ARI_AGENT__RECORDS__SALT_FILE": str(tmp_path / "salt"),
                                 **{f"ARI_AGENT__RECORDS__{k.upper()}": v for k, v in env.items()}})
    return CallRecordWriter.from_config(cfg, tmp_path / "no-map.yaml")


async def test_records_are_written_and_the_salt_is_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    w = writer(tmp_path, url)
    first = await w.write(facts("call-1"))
    await w.aclose()
    w2 = writer(tmp_path, url)
    second = await w2.write(facts("call-2"))
    await w2.aclose()
    assert first is not None and second is not None and w.written == w2.written == 1
    assert first.caller_hash == second.caller_hash  # the same salt after a restart
    assert second.repeat_of == "call-1"  # same caller, same intent: a repeat
    assert (tmp_path / "salt").stat().st_mode & 0o777 == 0o600
    store = CallRecordStore(url)
    try:
        got = store.get("call-1")
        assert got is not None and got.transfer_queue == "support" and got.intents == ["human"]
    finally:
        store.close()


async def test_a_broken_database_is_logged_and_the_call_goes_on(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    w = writer(tmp_path, "postgresql+psycopg://u:hunter2secret@127.0.0.1:1/nodb")
    with caplog.at_level(logging.ERROR):
        assert await w.write(facts()) is None
    assert w.failed == 1 and "call record not written" in caplog.text
    assert "hunter2secret" not in caplog.text and "5551230001" not in caplog.text


async def test_a_hung_database_write_is_abandoned_in_time(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    w = writer(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", write_timeout_s="0.2")
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hang(f: CallFacts) -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(timeout=5)

    monkeypatch.setattr(w, "_add", hang)
    with caplog.at_level(logging.ERROR):
        assert await w.write(facts()) is None
    release.set()
    assert "took over 0.2s" in caplog.text


def test_a_configured_salt_wins(tmp_path: Path) -> None:
    cfg = load_config(None, env={"ARI_AGENT__RECORDS__SALT": "a-long-enough-salt",
                                 "ARI_AGENT__RECORDS__SALT_FILE": str(tmp_path / "salt")})
    assert load_salt(cfg.records) == "a-long-enough-salt" and not (tmp_path / "salt").exists()
