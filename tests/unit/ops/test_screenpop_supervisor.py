"""The supervisor side of the screen-pop without a PBX: roles enforced on the server (an agent's session
gets 403 on every supervisor route), the live-calls view, the takeover form's checks (CSRF token,
destination from the list, the call still with the agent) and the page's escaping. Redis is not
reachable here: a takeover that passes every check ends in a clear "Redis" answer, never a crash."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ari_agent.config import load_config
from ari_agent.ops.screenpop.passwords import hash_password
from ari_agent.ops.screenpop.server import ScreenPop
from ari_agent.ops.screenpop.supervisor_page import supervisor_page

DESK = "Local/support-desk@agent-desk/n"
BOSS_PHONE = "Local/supervisor-desk@agent-desk/n"
SUPERVISOR_ROUTES = (("GET", "/supervisor"), ("GET", "/api/calls"), ("GET", "/supervisor/events"),
                     ("POST", "/supervisor/takeover"))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    cfg = load_config(None, env={
        "ARI_AGENT__SCREENPOP__AGENTS__ALICE__PASSWORD_HASH": hash_password("pw-alice", n=2**10),
        "ARI_AGENT__SCREENPOP__AGENTS__ALICE__INTERFACE": DESK,
        "ARI_AGENT__SCREENPOP__AGENTS__BOSS__PASSWORD_HASH": hash_password("pw-boss", n=2**10),
        "ARI_AGENT__SCREENPOP__AGENTS__BOSS__INTERFACE": BOSS_PHONE,
        "ARI_AGENT__SCREENPOP__AGENTS__BOSS__ROLE": "supervisor",
        "ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
        "ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(tmp_path / "audit.jsonl"),
    })
    pop = ScreenPop(cfg)
    async with TestClient(TestServer(pop.app())) as c:
        c.pop = pop  # type: ignore[attr-defined]
        yield c
    await pop.store.close()
    await pop.supervisors.board.close()


async def sign_in(client: TestClient, name: str) -> None:  # type: ignore[type-arg]
    r = await client.post("/login", data={"username": name, "password": f"pw-{name}"}, allow_redirects=False)
    assert r.status == 303


def live_call(pop: ScreenPop, call_id: str = "call-abc", **extra: object) -> None:
    card = {"call_id": call_id, "state": "with_agent", "caller_id": "+15551230001", "intent": "order_status",
            "phase": "slot", "verification": "not verified", "started_at": time.time() - 65,
            "transcript": [{"who": "caller", "text": "where is my order"}], **extra}
    pop.supervisors.agent_calls[call_id] = (card, time.monotonic())


async def test_an_agent_session_gets_403_on_every_supervisor_route(client: TestClient) -> None:  # type: ignore[type-arg]
    await sign_in(client, "alice")
    assert (await client.get("/")).status == 200  # the agent's own page still works
    for method, path in SUPERVISOR_ROUTES:
        r = await client.request(method, path, data={"call_id": "call-abc", "target": "queue:support"},
                                 allow_redirects=False)
        assert r.status == 403, (method, path, r.status)
    assert "Supervisor view" not in await (await client.get("/")).text()


async def test_no_session_is_401_or_the_sign_in_page(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/supervisor", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login"
    for method, path in SUPERVISOR_ROUTES[1:]:
        assert (await client.request(method, path, allow_redirects=False)).status == 401, path


async def test_a_supervisor_sees_calls_with_the_agent_and_in_the_queues(client: TestClient) -> None:  # type: ignore[type-arg]
    pop: ScreenPop = client.pop  # type: ignore[attr-defined]
    live_call(pop)
    pop.live.cards["local/billing-desk@agent-desk/n"] = {"state": "connected", "queue": "billing",
                                                         "caller_id": "+15559990000", "intent": "bill_payment",
                                                         "reason": "caller_request"}
    pop.live.cards["local/old@agent-desk/n"] = {"state": "completed", "queue": "support"}
    await sign_in(client, "boss")
    calls = await (await client.get("/api/calls")).json()
    assert [c["call_id"] for c in calls["with_agent"]] == ["call-abc"]
    assert [c["member"] for c in calls["in_queues"]] == ["local/billing-desk@agent-desk/n"]
    page = await client.get("/supervisor")
    html = await page.text()
    assert page.status == 200 and "+15551230001" in html and "order_status" in html and "bill_payment" in html
    assert "1:0" in html  # on the line for a minute
    assert 'value="queue:billing"' in html and f'value="interface:{BOSS_PHONE}"' in html
    assert 'aria-labelledby="agent-calls-title"' in html and "/static/supervisor.js" in html
    assert "Supervisor view" in await (await client.get("/")).text()


async def test_a_stale_card_is_dropped(client: TestClient) -> None:  # type: ignore[type-arg]
    pop: ScreenPop = client.pop  # type: ignore[attr-defined]
    live_call(pop)
    card, _ = pop.supervisors.agent_calls["call-abc"]
    pop.supervisors.agent_calls["call-abc"] = (card, time.monotonic() - pop.supervisors.stale_s - 1)
    assert pop.supervisors.snapshot()["with_agent"] == []


async def _csrf(client: TestClient) -> str:  # type: ignore[type-arg]
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', await (await client.get("/supervisor")).text())
    assert match is not None
    return match.group(1)


async def test_takeover_needs_the_csrf_token_and_a_listed_destination(client: TestClient) -> None:  # type: ignore[type-arg]
    pop: ScreenPop = client.pop  # type: ignore[attr-defined]
    live_call(pop)
    await sign_in(client, "boss")
    csrf = await _csrf(client)
    forged = await client.post("/supervisor/takeover", data={"call_id": "call-abc", "target": "queue:support",
                                                              "csrf": "0" * 64}, allow_redirects=False)
    assert forged.status == 403
    odd = await client.post("/supervisor/takeover", data={"call_id": "call-abc", "csrf": csrf,
                                                          "target": "interface:PJSIP/999,,Dial(evil)"},
                            headers={"Accept": "application/json"})
    assert odd.status == 409 and "not on the list" in (await odd.json())["detail"]
    gone = await client.post("/supervisor/takeover", data={"call_id": "call-nope", "csrf": csrf,
                                                           "target": "queue:support"},
                             headers={"Accept": "application/json"})
    assert gone.status == 409 and "no longer with the voice agent" in (await gone.json())["detail"]


async def test_a_takeover_without_redis_is_answered_not_crashed(client: TestClient) -> None:  # type: ignore[type-arg]
    pop: ScreenPop = client.pop  # type: ignore[attr-defined]
    live_call(pop)
    await sign_in(client, "boss")
    csrf = await _csrf(client)
    r = await client.post("/supervisor/takeover", data={"call_id": "call-abc", "csrf": csrf,
                                                        "target": f"interface:{BOSS_PHONE}"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/supervisor"
    page = await (await client.get("/supervisor")).text()
    assert "Not done: Redis" in page
    audit = pop.supervisors.audit
    assert audit is not None
    audit.flush()
    records = [json.loads(line) for line in audit.path.read_text().splitlines()]
    assert [(r["kind"], r["data"]["by"], r["data"]["ok"]) for r in records] == [("takeover_request", "boss", False)]


def test_the_supervisor_page_escapes_everything() -> None:
    evil = "<script>alert(1)</script>"
    html = supervisor_page(evil, evil, evil, [(evil, evil)],
                           {"with_agent": [{"call_id": evil, "caller_id": evil, "intent": evil,
                                            "transcript": [{"who": "caller", "text": evil}]}],
                            "in_queues": [{"queue": evil, "member": evil, "state": evil}]}, notice=evil)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


async def test_the_supervisor_script_is_served_and_sets_text_only(client: TestClient) -> None:  # type: ignore[type-arg]
    js = await client.get("/static/supervisor.js")
    body = await js.text()
    assert js.status == 200 and "EventSource" in body and "innerHTML" not in body
