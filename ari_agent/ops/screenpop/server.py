"""The screen-pop web app (aiohttp): sign-in, the agent's page, live updates over server-sent events.

- Sign-in with a name and password checked against ``screenpop.agents.<name>.password_hash`` (scrypt);
  a session cookie (random token, HttpOnly, SameSite=Strict) then identifies the agent and so the queue
  member interface whose calls the page shows. Repeated failures for a name are refused for a while.
- AMI queue events (``AgentCalled`` … ``QueueCallerAbandon``) go through one consumer task in order;
  for each, the handoff record is read from Redis by the event's ``ARI_AGENT_CALL_ID`` and the card is
  pushed to that member's open pages.
- Supervisors (``role: supervisor``) also get ``/supervisor``: every live call and takeover
  (``supervisor.py``); the role is enforced on the server (an agent's session gets 403 there).
- Assets are served from the package (no CDN); responses carry a strict Content-Security-Policy.
Binds 127.0.0.1 by default (``screenpop.bind``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from ari_agent.call.handoff_store import HandoffStore
from ari_agent.config import Config
from ari_agent.ops.screenpop.live import LiveCalls, interface_key
from ari_agent.ops.screenpop.page import agent_page, login_page
from ari_agent.ops.screenpop.supervisor import SupervisorDesk
from ari_agent.ops.web_sign_in import SignIn
from ari_agent.telephony.ami import AmiClient
from ari_agent.telephony.ami_events import QueueEvent

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {"screenpop.css": "text/css", "screenpop.js": "text/javascript", "supervisor.js": "text/javascript"}
COOKIE = "screenpop_session"
HEARTBEAT_S = 15.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class ScreenPop:
    def __init__(self, cfg: Config, *, ami: AmiClient | None = None, store: HandoffStore | None = None) -> None:
        self.cfg = cfg
        self.ami = ami or AmiClient(cfg.ami, events=True)
        self.store = store or HandoffStore(cfg.redis.url)
        self.live = LiveCalls()
        self.sign_in = SignIn(COOKIE, lambda: {n: a.password_hash.get_secret_value()
                                               for n, a in cfg.screenpop.agents.items()},
                              ttl_s=cfg.screenpop.session_ttl_s, secure_cookie=cfg.screenpop.secure_cookie)
        self.supervisors = SupervisorDesk(cfg, self.sign_in, self.live, lambda body, status: _html(body, status))
        self.subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.events_seen = 0
        self.cards_pushed = 0
        self._events: asyncio.Queue[QueueEvent] | None = None
        self._consumer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._events = asyncio.Queue(maxsize=10000)
        self._consumer = asyncio.get_running_loop().create_task(self._consume(), name="screenpop-events")
        self.ami.listeners.append(self._on_event)
        self.ami.start()
        self.supervisors.start()

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.ami.listeners.remove(self._on_event)
        await self.ami.close()
        await self.supervisors.close()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        await self.store.close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers], client_max_size=64 * 1024)
        app.router.add_get("/", self.index)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/events", self.events)
        app.router.add_get("/api/card", self.api_card)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/healthz", self.health)
        self.supervisors.routes(app)
        return app

    # ------------------------------------------------------------------ AMI → cards
    def _on_event(self, event: QueueEvent) -> None:
        if self._events is None:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("screen-pop: event backlog full, dropping %s", event.kind)

    async def _consume(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            self.events_seen += 1
            try:
                record = await self.store.get(event.call_id) if event.call_id else None
                pushed = self.live.apply(event, record)
                if pushed is not None:
                    self._push(*pushed)
                    self.supervisors.changed()
            except Exception:
                log.exception("screen-pop: event %s not handled", event.kind)

    def _push(self, key: str, card: dict[str, Any]) -> None:
        for q in list(self.subscribers.get(key, ())):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(card)
                self.cards_pushed += 1

    # ------------------------------------------------------------------ auth
    def _agent_of(self, request: web.Request) -> str | None:
        return self.sign_in.user(request)

    async def login_form(self, request: web.Request) -> web.Response:
        if self._agent_of(request):
            raise web.HTTPSeeOther("/")
        return _html(login_page())

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("username", "")).strip()[:100]
        verdict = await self.sign_in.check(name, str(form.get("password", ""))[:1000])
        if verdict == "locked":
            return _html(login_page("Too many failed sign-ins; try again in a minute.", name), status=429)
        if verdict == "wrong":
            log.info("screen-pop: failed sign-in for %r", name)
            return _html(login_page("Wrong agent name or password.", name), status=401)
        log.info("screen-pop: %s signed in (member %s)", name, self.cfg.screenpop.agents[name].interface)
        raise self.sign_in.start_session(name)

    async def logout(self, request: web.Request) -> web.Response:
        raise self.sign_in.end_session(request)

    # ------------------------------------------------------------------ pages
    async def index(self, request: web.Request) -> web.Response:
        name = self._agent_of(request)
        if name is None:
            raise web.HTTPSeeOther("/login")
        agent = self.cfg.screenpop.agents[name]
        return _html(agent_page(name, agent.name, agent.interface, self.live.card(agent.interface),
                                supervisor=agent.role == "supervisor"))

    async def api_card(self, request: web.Request) -> web.Response:
        name = self._agent_of(request)
        if name is None:
            raise web.HTTPUnauthorized(text="sign in first")
        return web.json_response({"card": self.live.card(self.cfg.screenpop.agents[name].interface)})

    async def events(self, request: web.Request) -> web.StreamResponse:
        name = self._agent_of(request)
        if name is None:
            raise web.HTTPUnauthorized(text="sign in first")
        key = interface_key(self.cfg.screenpop.agents[name].interface)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.subscribers.setdefault(key, set()).add(q)
        try:
            current = self.live.cards.get(key)
            if current is not None:
                await resp.write(_sse(current))
            while True:
                try:
                    card = await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                await resp.write(_sse(card))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.subscribers.get(key, set()).discard(q)
        return resp

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = STATIC_FILES.get(name)
        if kind is None:
            raise web.HTTPNotFound()
        body = await asyncio.to_thread((STATIC_DIR / name).read_bytes)
        return web.Response(body=body, content_type=kind, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "ami_connected": self.ami.connected})


# A valid hash of a random password: unknown names cost the same scrypt as known ones.


def _sse(card: dict[str, Any]) -> bytes:
    return ("event: card\ndata: " + json.dumps(card, ensure_ascii=False) + "\n\n").encode()


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status,
                        headers={"Cache-Control": "no-store"})


@web.middleware
async def _security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        resp = exc
        _harden(resp)
        raise
    _harden(resp)
    return resp


def _harden(resp: web.StreamResponse) -> None:
    if resp.prepared:
        return
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("X-Frame-Options", "DENY")


async def serve(cfg: Config, host: str, port: int) -> None:
    """Run the screen-pop until cancelled."""
    pop = ScreenPop(cfg)
    await pop.start()
    runner = web.AppRunner(pop.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        log.info("screen-pop on http://%s:%d (%d agents configured)", host, port, len(cfg.screenpop.agents))
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await pop.close()
