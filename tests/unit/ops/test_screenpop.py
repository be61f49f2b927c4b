"""The screen-pop's logic without a PBX: password hashes, the live card state, escaping, and the web
app's sign-in, session and access rules (served by aiohttp's test server; AMI is not started here —
the end-to-end test in tests/integration/test_handoff_screenpop.py runs it against Asterisk)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ari_agent.config import load_config
from ari_agent.ops.screenpop.live import LiveCalls
from ari_agent.ops.screenpop.page import agent_page, card_html
from ari_agent.ops.screenpop.passwords import hash_password, verify_password
from ari_agent.ops.screenpop.server import COOKIE, ScreenPop
from ari_agent.telephony.ami_events import QueueEvent

IFACE = "Local/support-desk@agent-desk/n"


def test_password_hash_round_trip_and_refusals() -> None:
    h = hash_password("s3cret!", n=2**10)
    assert h.startswith("scrypt$1024$8$1$") and "s3cret" not in h
    assert verify_password("s3cret!", h)
    assert not verify_password("s3cret", h)
    assert h != hash_password("s3cret!", n=2**10)  # salted
    for bad in ("", "plain", "scrypt$1000$8$1$AA==$AA==", "scrypt$1024$8$1$!!$AA==", "md5$1$1$1$AA==$AA==",
                "scrypt$" + str(2**30) + "$8$1$AA==$AA=="):
        assert not verify_password("s3cret!", bad)
    with pytest.raises(ValueError):
        hash_password("")


def event(kind: str, interface: str = IFACE, uid: str = "u1", call_id: str | None = "call-1") -> QueueEvent:
    return QueueEvent(kind=kind, queue="support", call_id=call_id, caller_uniqueid=uid,  # type: ignore[arg-type]
                      caller_number="5551234", interface=interface)


def test_live_cards_follow_the_member() -> None:
    live = LiveCalls()
    record = {"intent": "order_status", "summary": "s", "slots": {"order_number": "4567"},
              "transcript": [{"who": "caller", "text": "hi"}, "junk"], "caller_id": "5551234"}
    assert live.apply(event("caller_join", interface=""), record) is None
    key, card = live.apply(event("agent_called"), record) or ("", {})
    assert key == IFACE.lower() and card["state"] == "ringing" and card["intent"] == "order_status"
    assert card["transcript"] == [{"who": "caller", "text": "hi"}]
    assert live.apply(event("agent_connect"), record) is not None and live.card(IFACE)["state"] == "connected"
    # another caller's end does not wipe this member's card
    assert live.apply(event("agent_complete", uid="u2"), None) is None
    assert live.apply(event("caller_abandon", interface="", uid="u1"), record) is not None
    assert live.card(IFACE)["state"] == "abandoned"
    _, plain = live.apply(event("agent_called", uid="u3", call_id=None), None) or ("", {})
    assert plain["has_context"] is False and plain["caller_id"] == "5551234"


def test_markup_escapes_everything() -> None:
    evil = "<script>alert(1)</script>"
    card = {"state": "connected", "caller_id": evil, "intent": evil, "slots": {evil: evil},
            "transcript": [{"who": "caller", "text": evil}], "has_context": True}
    html = card_html(card) + agent_page(evil, evil, evil, None)
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert 'aria-live="polite"' in html and '<html lang="en">' in html


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    cfg = load_config(None, env={
        "ARI_AGENT__SCREENPOP__AGENTS__ALICE__PASSWORD_HASH": hash_password("pw-alice", n=2**10),
        "ARI_AGENT__SCREENPOP__AGENTS__ALICE__INTERFACE": IFACE,
        "ARI_AGENT__REDIS__URL": "redis://127.0.0.1:1/0",
    })
    pop = ScreenPop(cfg)
    async with TestClient(TestServer(pop.app())) as c:
        c.pop = pop  # type: ignore[attr-defined]
        yield c
    await pop.store.close()


async def test_pages_need_a_session(client: TestClient) -> None:  # type: ignore[type-arg]
    r = await client.get("/", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/login"
    assert (await client.get("/events")).status == 401
    assert (await client.get("/api/card")).status == 401
    login = await client.get("/login")
    assert login.status == 200 and "default-src 'none'" in login.headers["Content-Security-Policy"]
    assert "cdn" not in (await login.text()).lower()


async def test_sign_in_sets_a_strict_http_only_cookie(client: TestClient) -> None:  # type: ignore[type-arg]
    bad = await client.post("/login", data={"username": "alice", "password": "nope"}, allow_redirects=False)
    assert bad.status == 401 and "Wrong agent name or password." in await bad.text()
    unknown = await client.post("/login", data={"username": "mallory", "password": "x"}, allow_redirects=False)
    assert unknown.status == 401
    ok = await client.post("/login", data={"username": "alice", "password": "pw-alice"}, allow_redirects=False)
    assert ok.status == 303
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = await client.get("/")
    assert page.status == 200 and IFACE in await page.text()
    assert (await (await client.get("/api/card")).json()) == {"card": None}
    out = await client.post("/logout", allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.clear()
    assert (await client.get("/api/card")).status == 401


async def test_repeated_failures_lock_the_name_out(client: TestClient) -> None:  # type: ignore[type-arg]
    for _ in range(5):
        await client.post("/login", data={"username": "alice", "password": "wrong"})
    r = await client.post("/login", data={"username": "alice", "password": "pw-alice"}, allow_redirects=False)
    assert r.status == 429


async def test_static_assets_are_local_and_listed(client: TestClient) -> None:  # type: ignore[type-arg]
    js = await client.get("/static/screenpop.js")
    assert js.status == 200 and "EventSource" in await js.text() and "innerHTML" not in await js.text()
    assert (await client.get("/static/screenpop.css")).status == 200
    assert (await client.get("/static/..%2fserver.py")).status == 404
    assert (await client.get("/static/server.py")).status == 404


def test_binds_loopback_by_default() -> None:
    assert load_config(None, env={}).screenpop.bind.startswith("127.0.0.1:")
