"""The demo backend: a small aiohttp app over SQLite that answers every demo tool.

Endpoints (JSON in, JSON out; errors are ``{"error": code, "detail": text}``):

===========================================  =============================================
``GET  /health``                             ``{"ok": true}``
``GET  /orders/{order_number}``              LookupOrderResponse, 404
``GET  /appointments?customer_id=|phone=``   the next appointment (GetAppointmentResponse), 404
``POST /appointments/{id}/confirm``          write; ConfirmAppointmentResponse, 404
``POST /appointments/{id}/reschedule``       write; body ``{new_date, new_time}``; 404, 409 slot taken,
                                             422 past date / outside 08:00-18:00
``POST /identity/verify``                    body ``{customer_id|phone, postcode|date_of_birth}``
``POST /identity/record``                    body ``{customer_id}``: ``{postcode}`` on record (404: none)
``POST /accounts/{customer_id}/unlock``      write; UnlockAccountResponse, 404
``GET  /faq/{topic}``                        ``hours``, ``address``, ``returns``; 404
``POST /messages``                           write (needs Idempotency-Key): an SMS confirming an appointment,
                                             body ``{customer_id, appointment_id, channel}``; 404
``GET  /messages``                           every message sent, with ``count``
``POST /writes``                             generic write (needs Idempotency-Key): ``{reference, payload}``
``GET  /writes``                             every performed write, with ``count`` and ``replays``
``GET  /writes/counts[?key=K]``              performed writes per idempotency key (drills count these)
``GET|PUT|DELETE /_faults``                  fault injection (below)
===========================================  =============================================

Writes honour ``Idempotency-Key``: the first request with a key is performed and its response stored
in the same SQLite transaction; a later request with that key gets the stored response (with
``Idempotent-Replayed: true``) and performs nothing. The same key with a different request is a 422.
Every performed write is a row of ``writes``, so tests can count them.

Fault injection, for the speech loop (acknowledgements, handoff) and the tests: per request
``?delay_ms=N`` (before handling), ``?fail=STATUS``, and for writes ``?delay_after_ms=N`` (after the
write is committed, before answering: a crash in that window is what Idempotency-Key is for);
or for every request, ``ari-agent backend --delay-ms N --fail-status S`` or ``PUT /_faults``
``{"delay_ms": N, "fail_status": S, "fail_count": K, "path_prefix": "/orders", "write_delay_after_ms": N}``.

Demo data (dates relative to the day the database is created):
customers C-1001 Alex Morgan (phone +15551230001, postcode SW1A 1AA, born 1985-04-12),
C-1002 Jordan Lee (+15551230002, M1 1AE, 1990-09-30, **account locked**), C-1003 Sam Patel
(+15551230003, EH1 1YZ, 1978-01-05); orders 4567 (shipped with UPS, arriving next Thursday),
1234 (processing), 7890 (delivered), 2468 (cancelled); appointments A-100 (C-1001, boiler service,
in 3 days 10:30), A-101 (C-1003, technician visit, in 7 days 14:00), A-102 (C-1002, broadband
installation, in 2 days 09:00, confirmed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

log = logging.getLogger("ari_agent.devtools.demo_backend")

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL UNIQUE, postcode TEXT NOT NULL,
    dob TEXT NOT NULL, locked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS orders (
    number TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), status TEXT NOT NULL,
    eta TEXT, carrier TEXT, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), date TEXT NOT NULL,
    time TEXT NOT NULL, status TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faq (topic TEXT PRIMARY KEY, answer TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS writes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT, op TEXT NOT NULL, target TEXT NOT NULL,
    payload TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL, customer_id TEXT NOT NULL,
    appointment_id TEXT NOT NULL, channel TEXT NOT NULL, to_phone TEXT NOT NULL, text TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    replays INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL);
"""

FAQ = {
    "hours": "We are open Monday to Friday from 8 am to 6 pm, and on Saturday from 9 am to 1 pm. "
             "We are closed on Sundays and public holidays.",
    "address": "You will find us at 42 Harbour Street, Riverside, RS1 4AB, next to the central library.",
    "returns": "You can return any item within 30 days of delivery. Returns are free with the label "
               "in your parcel.",
}

OPEN_FROM = dt.time(8, 0)
OPEN_UNTIL = dt.time(18, 0)


def next_weekday(today: dt.date, weekday: int) -> dt.date:
    """The first ``weekday`` (Monday=0) strictly after ``today``."""
    days = (weekday - today.weekday()) % 7 or 7
    return today + dt.timedelta(days=days)


def _norm_postcode(v: str) -> str:
    return re.sub(r"\s+", "", v).upper()


def _norm_phone(v: str) -> str:
    return re.sub(r"[\s().-]", "", v)


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str = "") -> None:
        super().__init__(detail or error)
        self.status = status
        self.error = error
        self.detail = detail


@dataclass
class Faults:
    """Fault injection applied to every request whose path starts with ``path_prefix``."""

    delay_ms: int = 0
    fail_status: int = 0  # 0: no injected failure
    fail_count: int = -1  # how many requests to fail; -1: all
    path_prefix: str = "/"
    write_delay_after_ms: int = 0

    def update(self, data: dict[str, Any]) -> None:
        known = {f.name: f.type for f in fields(self)}
        for key, value in data.items():
            if key not in known:
                raise ApiError(400, "bad_request", f"unknown fault {key!r}")
            if key == "path_prefix":
                if not isinstance(value, str) or not value.startswith("/"):
                    raise ApiError(400, "bad_request", "path_prefix must start with /")
                self.path_prefix = value
            else:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ApiError(400, "bad_request", f"{key} must be an integer")
                setattr(self, key, value)


class DemoStore:
    """The demo database. All SQLite work runs on one dedicated thread (the event loop never waits
    on disk), which also serialises writes, so an idempotency check and its write are atomic."""

    def __init__(self, path: str | Path, *, today: dt.date | None = None) -> None:
        self.path = str(path)
        self.today = today or dt.date.today()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-db")
        self._local = threading.local()
        self._executor.submit(self._init).result()

    # ------------------------------------------------------------ plumbing

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._conn()))

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._executor.submit(lambda: fn(self._conn())).result()

    def close(self) -> None:
        def _close() -> None:
            conn = getattr(self._local, "conn", None)
            if conn is not None:
                conn.close()
                self._local.conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)

    def _init(self) -> None:
        conn = self._conn()
        conn.executescript(SCHEMA)
        if conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0:
            self._seed(conn)

    def _seed(self, conn: sqlite3.Connection) -> None:
        t = self.today
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("C-1001", "Alex Morgan", "+15551230001", "SW1A1AA", "1985-04-12", 0),
                ("C-1002", "Jordan Lee", "+15551230002", "M11AE", "1990-09-30", 1),
                ("C-1003", "Sam Patel", "+15551230003", "EH11YZ", "1978-01-05", 0),
            ],
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("4567", "C-1001", "shipped", next_weekday(t, 3).isoformat(), "UPS",
                 json.dumps([{"name": "Wireless headphones", "quantity": 1}])),
                ("1234", "C-1003", "processing", (t + dt.timedelta(days=6)).isoformat(), None,
                 json.dumps([{"name": "Coffee grinder", "quantity": 1}, {"name": "Paper filters", "quantity": 2}])),
                ("7890", "C-1002", "delivered", (t - dt.timedelta(days=3)).isoformat(), "DHL",
                 json.dumps([{"name": "Desk lamp", "quantity": 1}])),
                ("2468", "C-1001", "cancelled", None, None, json.dumps([{"name": "Phone case", "quantity": 2}])),
            ],
        )
        conn.executemany(
            "INSERT INTO appointments VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("A-100", "C-1001", (t + dt.timedelta(days=3)).isoformat(), "10:30", "booked", "Boiler service"),
                ("A-101", "C-1003", (t + dt.timedelta(days=7)).isoformat(), "14:00", "booked", "Technician visit"),
                ("A-102", "C-1002", (t + dt.timedelta(days=2)).isoformat(), "09:00", "confirmed",
                 "Broadband installation"),
            ],
        )
        conn.executemany("INSERT INTO faq VALUES (?, ?)", list(FAQ.items()))
        conn.execute("COMMIT")

    # ------------------------------------------------------------ reads

    @staticmethod
    def _customer_id(conn: sqlite3.Connection, customer_id: str | None, phone: str | None) -> str | None:
        if customer_id:
            row = conn.execute("SELECT id FROM customers WHERE id = ?", (customer_id,)).fetchone()
        elif phone:
            row = conn.execute("SELECT id FROM customers WHERE phone = ?", (_norm_phone(phone),)).fetchone()
        else:
            return None
        return str(row["id"]) if row else None

    @staticmethod
    def _appointment(row: sqlite3.Row) -> dict[str, Any]:
        return {"appointment_id": row["id"], "customer_id": row["customer_id"], "date": row["date"],
                "time": row["time"], "status": row["status"], "description": row["description"]}

    def order(self, conn: sqlite3.Connection, number: str) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM orders WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise ApiError(404, "not_found", f"no order {number}")
        return {"order_number": row["number"], "status": row["status"], "eta": row["eta"],
                "carrier": row["carrier"], "items": json.loads(row["items"])}

    def next_appointment(self, conn: sqlite3.Connection, customer_id: str | None, phone: str | None) -> dict[str, Any]:
        if not customer_id and not phone:
            raise ApiError(400, "bad_request", "customer_id or phone is required")
        cid = self._customer_id(conn, customer_id, phone)
        if cid is None:
            raise ApiError(404, "not_found", "no such customer")
        row = conn.execute(
            "SELECT * FROM appointments WHERE customer_id = ? AND status != 'cancelled' AND date >= ? "
            "ORDER BY date, time LIMIT 1", (cid, self.today.isoformat())).fetchone()
        if row is None:
            raise ApiError(404, "not_found", "no upcoming appointment")
        return self._appointment(row)

    def verify(self, conn: sqlite3.Connection, body: dict[str, Any]) -> dict[str, Any]:
        postcode = body.get("postcode")
        dob = body.get("date_of_birth")
        if not (body.get("customer_id") or body.get("phone")) or not (postcode or dob):
            raise ApiError(400, "bad_request", "need customer_id or phone, and postcode or date_of_birth")
        no = {"verified": False, "level": "none", "customer_id": None}
        cid = self._customer_id(conn, body.get("customer_id"), body.get("phone"))
        if cid is None:
            return no  # do not tell the caller whether the customer exists
        row = conn.execute("SELECT postcode, dob FROM customers WHERE id = ?", (cid,)).fetchone()
        proofs = 0
        for given, stored, norm in ((postcode, row["postcode"], _norm_postcode), (dob, row["dob"], str)):
            if given:
                if norm(str(given)) != stored:
                    return no
                proofs += 1
        return {"verified": True, "level": "full" if proofs == 2 else "basic", "customer_id": cid}

    def identity_record(self, conn: sqlite3.Connection, body: dict[str, Any]) -> dict[str, Any]:
        """The codes on a customer's record (the agent checks the caller's audio against them)."""
        cid = self._customer_id(conn, body.get("customer_id"), None)
        if cid is None:
            raise ApiError(404, "not_found", "no such customer")
        row = conn.execute("SELECT postcode FROM customers WHERE id = ?", (cid,)).fetchone()
        return {"postcode": row["postcode"]}

    def faq(self, conn: sqlite3.Connection, topic: str) -> dict[str, Any]:
        row = conn.execute("SELECT answer FROM faq WHERE topic = ?", (topic,)).fetchone()
        if row is None:
            raise ApiError(404, "not_found", f"no FAQ topic {topic}")
        return {"topic": topic, "answer": row["answer"]}

    def writes(self, conn: sqlite3.Connection) -> dict[str, Any]:
        rows = conn.execute("SELECT * FROM writes ORDER BY id").fetchall()
        replays = conn.execute("SELECT COALESCE(SUM(replays), 0) FROM idempotency").fetchone()[0]
        return {
            "count": len(rows),
            "replays": int(replays),
            "writes": [{"id": r["id"], "idempotency_key": r["idempotency_key"], "op": r["op"], "target": r["target"],
                        "payload": json.loads(r["payload"]), "created_at": r["created_at"]} for r in rows],
        }

    def write_counts(self, conn: sqlite3.Connection, key: str | None = None) -> dict[str, Any]:
        """Performed writes per idempotency key (``count`` > 1 for a key would be a duplicate side effect)."""
        if key is None:
            rows = conn.execute("SELECT idempotency_key, COUNT(*) AS n FROM writes GROUP BY idempotency_key")
            replays = conn.execute("SELECT COALESCE(SUM(replays), 0) FROM idempotency").fetchone()[0]
        else:
            rows = conn.execute("SELECT idempotency_key, COUNT(*) AS n FROM writes WHERE idempotency_key = ? "
                                "GROUP BY idempotency_key", (key,))
            replays = conn.execute("SELECT COALESCE(SUM(replays), 0) FROM idempotency WHERE key = ?",
                                   (key,)).fetchone()[0]
        per_key = {str(r["idempotency_key"]): int(r["n"]) for r in rows}
        return {"count": sum(per_key.values()), "replays": int(replays), "per_key": per_key}

    # ------------------------------------------------------------ writes

    def write(self, conn: sqlite3.Connection, key: str | None, op: str, target: str, body: dict[str, Any],
              perform: Callable[[sqlite3.Connection], dict[str, Any]]) -> tuple[int, dict[str, Any], bool]:
        """Perform ``perform`` once per idempotency key: returns (status, body, replayed)."""
        fingerprint = hashlib.sha256(json.dumps([op, target, body], sort_keys=True).encode()).hexdigest()
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if key is not None:
                row = conn.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    if row["fingerprint"] != fingerprint:
                        conn.execute("ROLLBACK")
                        return 422, {"error": "idempotency_key_reused",
                                     "detail": "this Idempotency-Key was used for a different request"}, False
                    conn.execute("UPDATE idempotency SET replays = replays + 1 WHERE key = ?", (key,))
                    conn.execute("COMMIT")
                    return int(row["status"]), json.loads(row["body"]), True
            try:
                status, result = 200, perform(conn)
                conn.execute("INSERT INTO writes (idempotency_key, op, target, payload, created_at) "
                             "VALUES (?, ?, ?, ?, ?)", (key, op, target, json.dumps(body, sort_keys=True), now))
                if op == "record":
                    result["write_id"] = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
            except ApiError as exc:
                status, result = exc.status, {"error": exc.error, "detail": exc.detail}
            if key is not None:  # refusals are remembered too: the same request gets the same answer
                conn.execute("INSERT INTO idempotency (key, fingerprint, status, body, created_at) "
                             "VALUES (?, ?, ?, ?, ?)", (key, fingerprint, status, json.dumps(result), now))
            conn.execute("COMMIT")
            return status, result, False
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def confirm(self, conn: sqlite3.Connection, appointment_id: str) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM appointments WHERE id = ?", (appointment_id,)).fetchone()
        if row is None:
            raise ApiError(404, "not_found", f"no appointment {appointment_id}")
        if row["status"] == "cancelled":
            raise ApiError(409, "cancelled", "the appointment was cancelled")
        conn.execute("UPDATE appointments SET status = 'confirmed' WHERE id = ?", (appointment_id,))
        return self._appointment(conn.execute("SELECT * FROM appointments WHERE id = ?", (appointment_id,)).fetchone())

    def reschedule(self, conn: sqlite3.Connection, appointment_id: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            new_date = dt.date.fromisoformat(str(body["new_date"]))
            new_time = dt.time.fromisoformat(str(body["new_time"]))
        except (KeyError, ValueError):
            raise ApiError(400, "bad_request", "new_date (YYYY-MM-DD) and new_time (HH:MM) are required") from None
        row = conn.execute("SELECT * FROM appointments WHERE id = ?", (appointment_id,)).fetchone()
        if row is None:
            raise ApiError(404, "not_found", f"no appointment {appointment_id}")
        if new_date <= self.today:
            raise ApiError(422, "date_not_available", "appointments can be moved to a later day only")
        if not (OPEN_FROM <= new_time < OPEN_UNTIL) or new_time.minute % 15:
            raise ApiError(422, "time_not_available", "appointments start on the quarter hour, 08:00 to 17:45")
        slot = new_time.strftime("%H:%M")
        taken = conn.execute("SELECT id FROM appointments WHERE date = ? AND time = ? AND id != ? "
                             "AND status != 'cancelled'", (new_date.isoformat(), slot, appointment_id)).fetchone()
        if taken:
            raise ApiError(409, "slot_taken", "that slot is already booked")
        conn.execute("UPDATE appointments SET date = ?, time = ?, status = 'booked' WHERE id = ?",
                     (new_date.isoformat(), slot, appointment_id))
        return self._appointment(conn.execute("SELECT * FROM appointments WHERE id = ?", (appointment_id,)).fetchone())

    def unlock(self, conn: sqlite3.Connection, customer_id: str) -> dict[str, Any]:
        row = conn.execute("SELECT locked FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            raise ApiError(404, "not_found", f"no customer {customer_id}")
        conn.execute("UPDATE customers SET locked = 0 WHERE id = ?", (customer_id,))
        return {"customer_id": customer_id, "locked": False, "was_locked": bool(row["locked"])}

    def send_confirmation(self, conn: sqlite3.Connection, body: dict[str, Any], key: str) -> dict[str, Any]:
        """Word and "send" (record) an SMS confirming the customer's appointment as it now stands."""
        cid, aid, channel = body.get("customer_id"), body.get("appointment_id"), body.get("channel", "sms")
        if not isinstance(cid, str) or not isinstance(aid, str) or channel != "sms":
            raise ApiError(400, "bad_request", "customer_id and appointment_id (strings) are required; channel: sms")
        customer = conn.execute("SELECT phone FROM customers WHERE id = ?", (cid,)).fetchone()
        row = conn.execute("SELECT * FROM appointments WHERE id = ? AND customer_id = ?", (aid, cid)).fetchone()
        if customer is None or row is None:
            raise ApiError(404, "not_found", f"no appointment {aid} for customer {cid}")
        when = dt.datetime.combine(dt.date.fromisoformat(row["date"]), dt.time.fromisoformat(row["time"]))
        text = (f"Acme Home Services: your {row['description'].lower()} ({aid}) is {row['status']} for "
                f"{when:%a %d %b %Y} at {when:%H:%M}. Reply STOP to opt out.")
        phone = str(customer["phone"])
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        conn.execute("INSERT INTO messages (idempotency_key, customer_id, appointment_id, channel, to_phone, text, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (key, cid, aid, channel, phone, text, now))
        message_id = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        return {"message_id": message_id, "customer_id": cid, "appointment_id": aid, "channel": channel,
                "to": phone[:2] + "*" * (len(phone) - 6) + phone[-4:], "text": text}

    def messages(self, conn: sqlite3.Connection) -> dict[str, Any]:
        rows = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
        return {"count": len(rows), "messages": [
            {"id": r["id"], "idempotency_key": r["idempotency_key"], "customer_id": r["customer_id"],
             "appointment_id": r["appointment_id"], "channel": r["channel"], "to": r["to_phone"], "text": r["text"],
             "created_at": r["created_at"]} for r in rows]}

    def record(self, body: dict[str, Any], key: str) -> Callable[[sqlite3.Connection], dict[str, Any]]:
        reference = body.get("reference")
        if not isinstance(reference, str) or not reference:
            raise ApiError(400, "bad_request", "reference (a string) is required")
        return lambda conn: {"reference": reference, "idempotency_key": key}


# ---------------------------------------------------------------- HTTP

STORE_KEY: web.AppKey[DemoStore] = web.AppKey("store", DemoStore)
FAULTS_KEY: web.AppKey[Faults] = web.AppKey("faults", Faults)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, error: str, detail: str = "") -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


def _int_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name)
    if raw is None:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None


@web.middleware
async def _faults_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    faults = request.app[FAULTS_KEY]
    try:
        if not request.path.startswith("/_faults"):
            delay_ms = _int_param(request, "delay_ms")
            fail = _int_param(request, "fail")
            exempt = request.path == "/health" or (request.path.startswith(("/writes", "/messages"))
                                                     and request.method == "GET")
            if not exempt and request.path.startswith(faults.path_prefix):
                delay_ms = delay_ms or faults.delay_ms
                if not fail and faults.fail_status and faults.fail_count != 0:
                    fail = faults.fail_status
                    if faults.fail_count > 0:
                        faults.fail_count -= 1
            if delay_ms:
                await asyncio.sleep(delay_ms / 1000.0)
            if fail:
                return _error(fail, "injected_failure", f"fault injection: {fail}")
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.error, exc.detail)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_request", "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    return body


def _idempotency_key(request: web.Request, required: bool = False) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        if required:
            raise ApiError(400, "bad_request", "Idempotency-Key header is required")
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", key):
        raise ApiError(400, "bad_request", "Idempotency-Key must match [A-Za-z0-9_-]{1,128}")
    return key


async def _write(request: web.Request, op: str, target: str, body: dict[str, Any],
                 perform: Callable[[sqlite3.Connection], dict[str, Any]], *,
                 key_required: bool = False) -> web.Response:
    store = request.app[STORE_KEY]
    key = _idempotency_key(request, key_required)
    status, result, replayed = await store.call(lambda c: store.write(c, key, op, target, body, perform))
    after_ms = _int_param(request, "delay_after_ms") or request.app[FAULTS_KEY].write_delay_after_ms
    if after_ms:
        await asyncio.sleep(after_ms / 1000.0)
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return web.json_response(result, status=status, headers=headers)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def get_order(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    number = request.match_info["number"]
    return web.json_response(await store.call(lambda c: store.order(c, number)))


async def get_appointment(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    cid, phone = request.query.get("customer_id"), request.query.get("phone")
    return web.json_response(await store.call(lambda c: store.next_appointment(c, cid, phone)))


async def confirm_appointment(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    aid = request.match_info["id"]
    body = await _json_body(request)
    return await _write(request, "confirm_appointment", aid, body, lambda c: store.confirm(c, aid))


async def reschedule_appointment(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    aid = request.match_info["id"]
    body = await _json_body(request)
    return await _write(request, "reschedule_appointment", aid, body, lambda c: store.reschedule(c, aid, body))


async def verify_identity(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    body = await _json_body(request)
    return web.json_response(await store.call(lambda c: store.verify(c, body)))


async def identity_record(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    body = await _json_body(request)
    return web.json_response(await store.call(lambda c: store.identity_record(c, body)))


async def unlock_account(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    cid = request.match_info["customer_id"]
    body = await _json_body(request)
    return await _write(request, "unlock_account", cid, body, lambda c: store.unlock(c, cid))


async def get_faq(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    topic = request.match_info["topic"].lower()
    return web.json_response(await store.call(lambda c: store.faq(c, topic)))


async def post_write(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    key = _idempotency_key(request, required=True)
    assert key is not None
    body = await _json_body(request)
    perform = store.record(body, key)
    return await _write(request, "record", str(body.get("reference")), body, perform, key_required=True)


async def post_message(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    key = _idempotency_key(request, required=True)
    assert key is not None
    body = await _json_body(request)
    return await _write(request, "send_confirmation", str(body.get("appointment_id")), body,
                        lambda c: store.send_confirmation(c, body, key), key_required=True)


async def list_messages(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return web.json_response(await store.call(store.messages))


async def list_writes(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return web.json_response(await store.call(store.writes))


async def write_counts(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    key = request.query.get("key")
    return web.json_response(await store.call(lambda c: store.write_counts(c, key)))


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[FAULTS_KEY]))


async def put_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].update(await _json_body(request))
    return web.json_response(asdict(request.app[FAULTS_KEY]))


async def delete_faults(request: web.Request) -> web.Response:
    faults = request.app[FAULTS_KEY]
    for f in fields(faults):
        setattr(faults, f.name, f.default)
    return web.json_response(asdict(request.app[FAULTS_KEY]))


def create_app(store: DemoStore, faults: Faults | None = None, *, close_store: bool = False) -> web.Application:
    app = web.Application(middlewares=[_faults_and_errors])
    app[STORE_KEY] = store
    app[FAULTS_KEY] = faults or Faults()
    app.router.add_get("/health", health)
    app.router.add_get("/orders/{number}", get_order)
    app.router.add_get("/appointments", get_appointment)
    app.router.add_post("/appointments/{id}/confirm", confirm_appointment)
    app.router.add_post("/appointments/{id}/reschedule", reschedule_appointment)
    app.router.add_post("/identity/verify", verify_identity)
    app.router.add_post("/identity/record", identity_record)
    app.router.add_post("/accounts/{customer_id}/unlock", unlock_account)
    app.router.add_get("/faq/{topic}", get_faq)
    app.router.add_post("/messages", post_message)
    app.router.add_get("/messages", list_messages)
    app.router.add_post("/writes", post_write)
    app.router.add_get("/writes", list_writes)
    app.router.add_get("/writes/counts", write_counts)
    app.router.add_get("/_faults", get_faults)
    app.router.add_put("/_faults", put_faults)
    app.router.add_delete("/_faults", delete_faults)
    if close_store:
        async def _close(app: web.Application) -> None:
            await asyncio.to_thread(app[STORE_KEY].close)

        app.on_cleanup.append(_close)
    return app


def serve(db: str | Path, *, host: str = "127.0.0.1", port: int = 8700, faults: Faults | None = None,
          today: dt.date | None = None) -> None:
    """Run the demo backend until SIGINT/SIGTERM (blocking)."""
    store = DemoStore(db, today=today)
    app = create_app(store, faults, close_store=True)
    web.run_app(app, host=host, port=port, print=lambda msg: log.info("%s", msg), access_log=None,
                handle_signals=True)


@contextlib.asynccontextmanager
async def running_demo_backend(today: dt.date | None = None) -> AsyncIterator[str]:
    """The demo backend in this event loop, on a free loopback port over a temporary database;
    yields its base URL (``ari-agent chat``, the audio tests and the latency benchmark use it)."""
    with tempfile.TemporaryDirectory(prefix="ari-agent-demo-") as tmp:
        store = DemoStore(Path(tmp) / "demo.sqlite3", today=today)
        # A short shutdown: a request held by an injected delay fault (30 s in the timeout tests) is not
        # waited for when the caller is already gone (aiohttp's default would wait up to 60 s).
        runner = web.AppRunner(create_app(store, close_store=True), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()
