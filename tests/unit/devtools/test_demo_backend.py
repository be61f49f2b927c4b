"""The demo backend on a real loopback port, alone and behind the ToolRunner."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from ari_agent.devtools.demo_backend import DemoStore, Faults, create_app, next_weekday
from ari_agent.integrations.idempotency import idempotency_key
from ari_agent.integrations.runner import ToolRunner
from ari_agent.integrations.tools_config import ToolsConfig, demo_tools_config
from ari_agent.seam import CallTool

TODAY = dt.date(2026, 11, 24)  # a Tuesday


class Backend:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession, store: DemoStore) -> None:
        self.server = server
        self.session = session
        self.store = store
        self.url = str(server.make_url("")).rstrip("/")

    async def req(self, method: str, path: str, *, json: Any = None, key: str | None = None,
                  params: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        headers = {"Idempotency-Key": key} if key else {}
        async with self.session.request(method, self.url + path, json=json, headers=headers, params=params) as r:
            return r.status, await r.json(), dict(r.headers)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    store = DemoStore(tmp_path / "demo.db", today=TODAY)
    server = TestServer(create_app(store, close_store=True), host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    try:
        yield Backend(server, session, store)
    finally:
        await session.close()
        await server.close()


def test_next_weekday_is_strictly_after_today() -> None:
    assert next_weekday(TODAY, 3) == dt.date(2026, 11, 26)
    assert next_weekday(dt.date(2026, 11, 26), 3) == dt.date(2026, 12, 3)


async def test_orders(backend: Backend) -> None:
    status, body, _ = await backend.req("GET", "/orders/4567")
    assert status == 200
    assert body == {"order_number": "4567", "status": "shipped", "eta": "2026-11-26", "carrier": "UPS",
                    "items": [{"name": "Wireless headphones", "quantity": 1}]}
    assert dt.date.fromisoformat(body["eta"]).strftime("%A") == "Thursday"
    assert (await backend.req("GET", "/orders/1234"))[1]["status"] == "processing"
    status, body, _ = await backend.req("GET", "/orders/0000")
    assert status == 404 and body["error"] == "not_found"


async def test_appointments_and_their_writes(backend: Backend) -> None:
    status, body, _ = await backend.req("GET", "/appointments", params={"phone": "+1 555 123 0001"})
    assert status == 200 and body["appointment_id"] == "A-100" and body["status"] == "booked"
    assert (await backend.req("GET", "/appointments", params={"customer_id": "C-1003"}))[1]["appointment_id"] == "A-101"
    assert (await backend.req("GET", "/appointments", params={"customer_id": "C-9999"}))[0] == 404
    assert (await backend.req("GET", "/appointments"))[0] == 400

    status, body, _ = await backend.req("POST", "/appointments/A-100/confirm", json={}, key="k-confirm")
    assert status == 200 and body["status"] == "confirmed"
    assert (await backend.req("POST", "/appointments/A-999/confirm", json={}, key="k-x"))[0] == 404

    move = {"new_date": "2026-12-01", "new_time": "11:15:00"}
    status, body, _ = await backend.req("POST", "/appointments/A-100/reschedule", json=move, key="k-move")
    assert status == 200 and (body["date"], body["time"], body["status"]) == ("2026-12-01", "11:15", "booked")
    taken = {"new_date": (TODAY + dt.timedelta(days=7)).isoformat(), "new_time": "14:00"}  # A-101's slot
    status, body, _ = await backend.req("POST", "/appointments/A-100/reschedule", json=taken, key="k-taken")
    assert status == 409 and body["error"] == "slot_taken"
    past = {"new_date": "2026-11-01", "new_time": "10:00"}
    assert (await backend.req("POST", "/appointments/A-100/reschedule", json=past, key="k-past"))[0] == 422
    late = {"new_date": "2026-12-01", "new_time": "19:00"}
    assert (await backend.req("POST", "/appointments/A-100/reschedule", json=late, key="k-late"))[0] == 422
    assert (await backend.req("POST", "/appointments/A-100/reschedule", json={}, key="k-bad"))[0] == 400


async def test_identity_verification_levels(backend: Backend) -> None:
    async def verify(**body: str) -> Any:
        return (await backend.req("POST", "/identity/verify", json=body))[1]

    assert await verify(customer_id="C-1001", postcode="sw1a 1aa") == {
        "verified": True, "level": "basic", "customer_id": "C-1001"}
    assert (await verify(phone="+15551230001", postcode="SW1A1AA", date_of_birth="1985-04-12"))["level"] == "full"
    assert (await verify(customer_id="C-1001", postcode="SW1A1AA", date_of_birth="1999-01-01"))["verified"] is False
    assert await verify(customer_id="C-0000", postcode="SW1A1AA") == {
        "verified": False, "level": "none", "customer_id": None}
    assert (await backend.req("POST", "/identity/verify", json={"customer_id": "C-1001"}))[0] == 400


async def test_the_codes_on_a_customers_record(backend: Backend) -> None:
    from ari_agent.integrations.contracts import IdentityRecordResponse

    status, body, _ = await backend.req("POST", "/identity/record", json={"customer_id": "C-1001"})
    assert status == 200 and body == {"postcode": "SW1A1AA"}
    IdentityRecordResponse.model_validate(body)  # what the tool's contract expects
    assert (await backend.req("POST", "/identity/record", json={"customer_id": "C-0000"}))[0] == 404
    assert (await backend.req("POST", "/identity/record", json={}))[0] == 404


async def test_unlock_and_faq(backend: Backend) -> None:
    status, body, _ = await backend.req("POST", "/accounts/C-1002/unlock", json={}, key="k-unlock")
    assert status == 200 and body == {"customer_id": "C-1002", "locked": False, "was_locked": True}
    status, body, _ = await backend.req("POST", "/accounts/C-1002/unlock", json={}, key="k-unlock-2")
    assert body["was_locked"] is False
    assert (await backend.req("POST", "/accounts/C-0000/unlock", json={}, key="k-u3"))[0] == 404
    status, body, _ = await backend.req("GET", "/faq/hours")
    assert status == 200 and "Monday to Friday" in body["answer"]
    assert "Harbour Street" in (await backend.req("GET", "/faq/address"))[1]["answer"]
    assert (await backend.req("GET", "/faq/parking"))[0] == 404


async def test_writes_are_performed_once_per_idempotency_key(backend: Backend) -> None:
    body = {"reference": "r-1", "payload": {"amount": 5}}
    first = await backend.req("POST", "/writes", json=body, key="key-1")
    again = await backend.req("POST", "/writes", json=body, key="key-1")
    assert first[0] == again[0] == 200
    assert first[1] == again[1] == {"reference": "r-1", "idempotency_key": "key-1", "write_id": 1}
    assert "Idempotent-Replayed" not in first[2] and again[2]["Idempotent-Replayed"] == "true"
    other = await backend.req("POST", "/writes", json={"reference": "r-2"}, key="key-1")
    assert other[0] == 422 and other[1]["error"] == "idempotency_key_reused"
    assert (await backend.req("POST", "/writes", json=body))[0] == 400  # the key is required here
    assert (await backend.req("POST", "/writes", json=body, key="bad key!"))[0] == 400
    # concurrent duplicates: still one write
    results = await asyncio.gather(*[backend.req("POST", "/writes", json={"reference": "r-3"}, key="key-3")
                                     for _ in range(10)])
    assert {r[1]["write_id"] for r in results} == {2}
    # the same confirm, twice: performed once, answered twice the same
    c1 = await backend.req("POST", "/appointments/A-101/confirm", json={}, key="key-c")
    c2 = await backend.req("POST", "/appointments/A-101/confirm", json={}, key="key-c")
    assert c1[1] == c2[1]
    status, listing, _ = await backend.req("GET", "/writes")
    assert status == 200 and listing["count"] == 3
    assert [w["idempotency_key"] for w in listing["writes"]] == ["key-1", "key-3", "key-c"]
    assert listing["replays"] == 1 + 9 + 1


async def test_confirmation_texts_are_sent_once_per_key(backend: Backend) -> None:
    body = {"customer_id": "C-1001", "appointment_id": "A-100", "channel": "sms"}
    status, sent, _ = await backend.req("POST", "/messages", json=body, key="text-1")
    assert status == 200 and sent["message_id"] == 1 and sent["to"] == "+1******0001"
    assert sent["text"] == ("Acme Home Services: your boiler service (A-100) is booked for Fri 27 Nov 2026 at "
                            "10:30. Reply STOP to opt out.")
    status, again, headers = await backend.req("POST", "/messages", json=body, key="text-1")
    assert status == 200 and again == sent and headers.get("Idempotent-Replayed") == "true"
    assert (await backend.req("POST", "/messages", json=body))[0] == 400  # no Idempotency-Key
    other = {"customer_id": "C-1003", "appointment_id": "A-100"}  # not this customer's appointment
    assert (await backend.req("POST", "/messages", json=other, key="text-2"))[0] == 404
    status, listed, _ = await backend.req("GET", "/messages")
    assert status == 200 and listed["count"] == 1 and listed["messages"][0]["to"] == "+15551230001"
    writes = (await backend.req("GET", "/writes"))[1]
    assert [w["op"] for w in writes["writes"]] == ["send_confirmation"]


async def test_fault_injection(backend: Backend) -> None:
    started = time.perf_counter()
    assert (await backend.req("GET", "/orders/4567", params={"delay_ms": "150"}))[0] == 200
    assert time.perf_counter() - started >= 0.15
    status, body, _ = await backend.req("GET", "/orders/4567", params={"fail": "503"})
    assert status == 503 and body["error"] == "injected_failure"

    status, faults, _ = await backend.req("PUT", "/_faults", json={"fail_status": 500, "fail_count": 2,
                                                                   "path_prefix": "/orders"})
    assert status == 200 and faults["fail_count"] == 2
    statuses = [(await backend.req("GET", "/orders/4567"))[0] for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await backend.req("GET", "/faq/hours"))[0] == 200
    assert (await backend.req("PUT", "/_faults", json={"nonsense": 1}))[0] == 400
    await backend.req("DELETE", "/_faults")
    assert (await backend.req("GET", "/_faults"))[1]["fail_status"] == 0

    started = time.perf_counter()
    status, body, _ = await backend.req("POST", "/writes", json={"reference": "slow"}, key="k-slow",
                                        params={"delay_after_ms": "120"})
    assert status == 200 and time.perf_counter() - started >= 0.12
    assert (await backend.req("GET", "/writes"))[1]["count"] == 1  # committed before the delay


async def test_the_database_is_seeded_once(tmp_path: Path) -> None:
    path = tmp_path / "seed.db"
    store = DemoStore(path, today=TODAY)
    store.call_sync(lambda c: c.execute("UPDATE customers SET name = 'Changed' WHERE id = 'C-1001'"))
    store.close()
    again = DemoStore(path, today=TODAY)
    name = again.call_sync(lambda c: c.execute("SELECT name FROM customers WHERE id = 'C-1001'").fetchone()[0])
    count = again.call_sync(lambda c: c.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    again.close()
    assert (name, count) == ("Changed", 4)


async def test_every_demo_tool_through_the_runner(backend: Backend) -> None:
    cfg = demo_tools_config()
    cfg = cfg.model_copy(update={"definitions": {n: s for n, s in cfg.definitions.items() if not s.async_write}})

    def call(name: str, args: dict[str, Any]) -> CallTool:
        return CallTool(name, args, idempotency_key("demo-call", name, args), f"{name}-1")

    async with ToolRunner(cfg, base_url=backend.url) as runner:
        order = await runner.run(call("lookup_order", {"order_number": 4567}))
        appt = await runner.run(call("get_appointment", {"phone": "+15551230001"}))
        confirm = await runner.run(call("confirm_appointment", {"appointment_id": "A-100"}))
        move = await runner.run(call("reschedule_appointment", {"appointment_id": "A-100", "new_date": "2026-12-02",
                                                                "new_time": "09:30"}))
        clash = await runner.run(call("reschedule_appointment", {"appointment_id": "A-101", "new_date": "2026-12-02",
                                                                 "new_time": "09:30"}))
        ident = await runner.run(call("verify_identity", {"customer_id": "C-1002", "date_of_birth": "1990-09-30"}))
        unlock = await runner.run(call("unlock_account", {"customer_id": "C-1002"}))
        unlock_again = await runner.run(call("unlock_account", {"customer_id": "C-1002"}))  # same key
        faq = await runner.run(call("faq", {"topic": "address"}))
        missing = await runner.run(call("lookup_order", {"order_number": "9999"}))
    assert order.ok and order.data["carrier"] == "UPS"
    assert appt.ok and appt.data["appointment_id"] == "A-100"
    assert confirm.ok and confirm.data["status"] == "confirmed"
    assert move.ok and (move.data["date"], move.data["time"]) == ("2026-12-02", "09:30:00")
    assert not clash.ok and clash.error == "rejected" and clash.data["detail"]
    assert ident.ok and ident.data == {"verified": True, "level": "basic", "customer_id": "C-1002"}
    assert unlock.ok and unlock.data["was_locked"] is True
    assert unlock_again.data == unlock.data  # replayed, not performed again
    assert faq.ok and "Harbour Street" in faq.data["answer"]
    assert missing.error == "not_found"
    writes = (await backend.req("GET", "/writes"))[1]
    assert [w["op"] for w in writes["writes"]] == ["confirm_appointment", "reschedule_appointment",
                                                   "unlock_account"]


async def test_a_slow_backend_and_a_dead_one_for_the_speech_loop(tmp_path: Path) -> None:
    store = DemoStore(tmp_path / "slow.db", today=TODAY)
    faults = Faults(delay_ms=150, path_prefix="/faq")
    server = TestServer(create_app(store, faults, close_store=True), host="127.0.0.1")
    await server.start_server()
    cfg = ToolsConfig.model_validate({"definitions": {"faq": {"url": "{base_url}/faq/{topic}", "timeout_ms": 400,
                                                              "retries": 0}}})
    try:
        async with ToolRunner(cfg, base_url=str(server.make_url(""))) as runner:
            started = time.perf_counter()
            slow = await runner.run(CallTool("faq", {"topic": "hours"}, "k", "c1", budget_ms=100))
            assert slow.ok and time.perf_counter() - started >= 0.15  # past budget_ms: time for an ack
            faults.delay_ms = 1000  # slower than the tool's timeout: the engine hands off
            dead = await runner.run(CallTool("faq", {"topic": "hours"}, "k", "c2"))
            assert dead.error == "timeout"
    finally:
        await server.close()
