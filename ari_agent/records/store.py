"""Where call records live: SQLAlchemy 2 (Core) over SQLite by default, PostgreSQL by URL.

``CallRecordStore(url)`` brings the database to the newest schema on open (Alembic migrations,
``migrate.py``: an empty database gets the tables, an older one the revisions since, and one from a
newer ari-agent is refused rather than misread). ``add(record)`` links a repeat call before storing
it: the latest earlier call by the same hashed caller, about one of the same intents, that started
within 7 days before this one.

The API is synchronous (SQLAlchemy's); from the event loop, call it in a thread:
``await asyncio.to_thread(store.add, record)``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError as AlembicError
from sqlalchemy.engine import Connection, Engine

from ari_agent.errors import AriAgentError
from ari_agent.records import migrate
from ari_agent.records.model import REPEAT_WINDOW, CallRecord, ToolCallRecord
from ari_agent.records.schema import call_intents, call_records, tool_calls

DEFAULT_URL = "sqlite:///call-records.sqlite3"


class CallRecordStore:
    def __init__(self, url: str = DEFAULT_URL) -> None:
        _make_sqlite_folder(url)
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise AriAgentError(f"bad records database URL {_safe_url(url)}: {exc}") from None
        try:
            with self.engine.begin() as conn:
                migrate.upgrade(conn)
        except AriAgentError as exc:
            self.engine.dispose()
            raise AriAgentError(f"records database {_safe_url(url)}: {exc}") from None
        except (sa.exc.SQLAlchemyError, AlembicError) as exc:
            self.engine.dispose()
            raise AriAgentError(f"cannot open records database {_safe_url(url)}: {exc.__class__.__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ writing

    def add(self, record: CallRecord) -> CallRecord:
        """Store ``record`` (linking its repeat, when it is one); returns it with ``repeat_of`` set."""
        with self.engine.begin() as conn:
            if record.repeat_of is None:
                record.repeat_of = self._earlier_call(conn, record)
            conn.execute(call_records.insert().values(**_row(record)))
            if record.intents:
                conn.execute(call_intents.insert(), [{"call_id": record.call_id, "seq": i, "intent": name}
                                                     for i, name in enumerate(record.intents)])
            if record.tool_calls:
                conn.execute(tool_calls.insert(), [
                    {"call_id": record.call_id, "seq": i, "name": t.name, "ok": t.ok, "error": t.error, "ms": t.ms}
                    for i, t in enumerate(record.tool_calls)])
        return record

    def label_transfer(self, call_id: str, correct: bool) -> bool:
        """Record whether a transferred call went to the right place (evaluation, QA review); False when
        there is no such call."""
        with self.engine.begin() as conn:
            done = conn.execute(call_records.update().where(call_records.c.call_id == call_id)
                                .values(transfer_correct=correct))
            return bool(done.rowcount)

    def report_human_leg(self, call_id: str, *, answered: bool, wait_s: float | None,
                         handle_s: float | None = None) -> bool:
        """What the ACD reported about a transferred call's time with people: whether a person answered,
        after how long in the queue, and (when known) how long they handled it. False when there is no
        such call. ``records.acd`` turns AMI queue events into these reports."""
        values: dict[str, Any] = {"human_answered": answered, "human_wait_s": wait_s}
        if handle_s is not None:
            values["human_handle_s"] = handle_s
        with self.engine.begin() as conn:
            done = conn.execute(call_records.update().where(call_records.c.call_id == call_id).values(**values))
            return bool(done.rowcount)

    def _earlier_call(self, conn: Connection, record: CallRecord) -> str | None:
        if record.caller_hash is None or not record.intents:
            return None
        since = _utc(record.started_at - REPEAT_WINDOW)
        q = (sa.select(call_records.c.call_id)
             .join(call_intents, call_intents.c.call_id == call_records.c.call_id)
             .where(call_records.c.caller_hash == record.caller_hash,
                    call_intents.c.intent.in_(record.intents),
                    call_records.c.started_at >= since,
                    call_records.c.started_at <= _utc(record.started_at),
                    call_records.c.call_id != record.call_id)
             .order_by(call_records.c.started_at.desc())
             .limit(1))
        row = conn.execute(q).first()
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ reading

    def get(self, call_id: str) -> CallRecord | None:
        found = self._load(call_records.c.call_id == call_id)
        return found[0] if found else None

    def between(self, start: dt.datetime, end: dt.datetime) -> list[CallRecord]:
        """The calls that started in [start, end), oldest first."""
        return self._load(sa.and_(call_records.c.started_at >= _utc(start), call_records.c.started_at < _utc(end)))

    def kpi_window(self, start: dt.datetime, end: dt.datetime) -> list[CallRecord]:
        """The calls of [start, end) and of the 7 days either side (repeats, FCR: ``records.kpi``)."""
        return self.between(start - REPEAT_WINDOW, end + REPEAT_WINDOW)

    def by_caller(self, caller_hash: str) -> list[CallRecord]:
        """The calls of one hashed caller id, oldest first (the audio evaluation finds its calls so)."""
        return self._load(call_records.c.caller_hash == caller_hash)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(call_records)).scalar_one())

    def _load(self, where: Any) -> list[CallRecord]:
        with self.engine.connect() as conn:
            query = sa.select(call_records).where(where).order_by(call_records.c.started_at)
            rows = conn.execute(query).mappings().all()
            ids = [r["call_id"] for r in rows]
            intents = _grouped(conn.execute(sa.select(call_intents).where(call_intents.c.call_id.in_(ids))
                                            .order_by(call_intents.c.seq)).mappings().all()) if ids else {}
            tools = _grouped(conn.execute(sa.select(tool_calls).where(tool_calls.c.call_id.in_(ids))
                                          .order_by(tool_calls.c.seq)).mappings().all()) if ids else {}
        return [_record(r, [i["intent"] for i in intents.get(r["call_id"], [])],
                        [ToolCallRecord(t["name"], bool(t["ok"]), t["error"], t["ms"])
                         for t in tools.get(r["call_id"], [])]) for r in rows]


def _row(r: CallRecord) -> dict[str, Any]:
    return {
        "call_id": r.call_id, "started_at": _utc(r.started_at), "ended_at": _utc(r.ended_at) if r.ended_at else None,
        "caller_hash": r.caller_hash, "outcome": r.outcome, "transfer_queue": r.transfer_queue,
        "transfer_reason": r.transfer_reason, "transfer_correct": r.transfer_correct, "turns": r.turns,
        "stage_ms": r.stage_ms, "policy_events": r.policy_events, "config_version": r.config_version,
        "source": r.source, "human_handle_s": r.human_handle_s, "repeat_of": r.repeat_of,
        "heard": r.heard, "no_match_turns": r.no_match_turns, "answer_s": r.answer_s,
        "human_answered": r.human_answered, "human_wait_s": r.human_wait_s,
    }


def _record(row: Any, intents: list[str], tools: list[ToolCallRecord]) -> CallRecord:
    return CallRecord(
        call_id=row["call_id"], started_at=_aware(row["started_at"]),
        ended_at=_aware(row["ended_at"]) if row["ended_at"] is not None else None,
        caller_hash=row["caller_hash"], intents=intents, outcome=row["outcome"],
        transfer_queue=row["transfer_queue"], transfer_reason=row["transfer_reason"],
        transfer_correct=row["transfer_correct"], turns=row["turns"], stage_ms=dict(row["stage_ms"] or {}),
        tool_calls=tools, policy_events=list(row["policy_events"] or []), config_version=row["config_version"],
        source=row["source"], human_handle_s=row["human_handle_s"], repeat_of=row["repeat_of"],
        heard=list(row["heard"] or []), no_match_turns=int(row["no_match_turns"] or 0),
        answer_s=row["answer_s"], human_answered=row["human_answered"], human_wait_s=row["human_wait_s"],
    )


def _grouped(rows: Sequence[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r["call_id"], []).append(r)
    return out


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC)


def _aware(t: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _make_sqlite_folder(url: str) -> None:
    """A SQLite file's folder is created (as ``--report-dir`` is); other databases exist already."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return  # create_engine says what is wrong
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        with contextlib.suppress(OSError):  # unwritable: the open below fails with a clear line
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)


def _safe_url(url: str) -> str:
    """The URL without its password (never logged or printed)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def add_all(store: CallRecordStore, records: Iterable[CallRecord]) -> int:
    n = 0
    for r in records:
        store.add(r)
        n += 1
    return n
