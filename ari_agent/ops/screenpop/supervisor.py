"""The screen-pop's supervisor side: every live call, and taking one over from the voice agent.

- Role: ``screenpop.agents.<name>.role: supervisor``. Every supervisor route checks it on the server:
  no session → 401, a session of an agent → 403.
- Calls with the voice agent: the cards the agent processes publish in Redis (``call/live_calls.py``),
  read once at start and after each reconnect, then kept current from the ``ari-agent:live`` channel;
  a card whose agent stopped refreshing it is dropped. Calls in the queues: the AMI member cards of
  the screen-pop itself (``live.py``).
- Takeover: a form (CSRF token, a target chosen from the configured queues or the supervisor's own
  interface) → audited request (``takeover_request``) on Redis → the agent process serving the call
  hands it off (``call/supervision.py``) and answers; the supervisor sees the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from ari_agent.call.live_calls import LIVE_CHANNEL, LiveCallBoard, follow_channel, parse_card
from ari_agent.call.supervision import open_audit
from ari_agent.call.takeover import RESULT_CHANNEL, TAKEOVER_CHANNEL, TakeoverError, TakeoverRequest, TakeoverResult
from ari_agent.config import Config
from ari_agent.ops.screenpop.live import LiveCalls
from ari_agent.ops.screenpop.supervisor_page import supervisor_page
from ari_agent.ops.web_sign_in import SignIn

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
RECONNECT_S = 2.0
QUEUE_STATES = ("ringing", "connected")


class SupervisorDesk:
    def __init__(self, cfg: Config, sign_in: SignIn, live: LiveCalls,
                 html: Callable[[str, int], web.Response]) -> None:
        self.cfg = cfg
        self.sign_in = sign_in
        self.live = live
        self.html = html
        self.board = LiveCallBoard(cfg.redis.url)
        self.stale_s = max(10.0, cfg.supervision.refresh_s * 5)
        self.agent_calls: dict[str, tuple[dict[str, Any], float]] = {}
        self.subscribers: set[asyncio.Queue[None]] = set()
        self.notices: dict[str, str] = {}
        self.audit = open_audit(cfg)
        self.watching = asyncio.Event()  # subscribed to the live channel (tests wait on it)
        self._task: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/supervisor", self.page)
        app.router.add_get("/supervisor/events", self.events)
        app.router.add_get("/api/calls", self.api_calls)
        app.router.add_post("/supervisor/takeover", self.takeover)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="supervisor-live-calls")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 3.0)
        await self.board.close()
        if self.audit is not None:
            self.audit.close()

    def is_supervisor(self, name: str) -> bool:
        agent = self.cfg.screenpop.agents.get(name)
        return agent is not None and agent.role == "supervisor"

    def _supervisor(self, request: web.Request) -> str:
        name = self.sign_in.user(request)
        if name is None:
            raise web.HTTPUnauthorized(text="sign in first")
        if not self.is_supervisor(name):
            log.warning("screen-pop: %s (not a supervisor) asked for %s", name, request.path)
            raise web.HTTPForbidden(text="supervisors only")
        return name

    # ------------------------------------------------------------------ what supervisors see
    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        now = time.monotonic()
        for cid in [c for c, (_card, seen) in self.agent_calls.items() if now - seen > self.stale_s]:
            del self.agent_calls[cid]
        with_agent = sorted((card for card, _ in self.agent_calls.values()),
                            key=lambda c: float(c.get("started_at") or 0))
        in_queues = [{**card, "member": member} for member, card in self.live.cards.items()
                     if card.get("state") in QUEUE_STATES]
        return {"with_agent": with_agent, "in_queues": in_queues}

    def targets(self, name: str) -> list[tuple[str, str]]:
        """Where this supervisor may send a call: the configured queues, or their own phone."""
        out = [(f"queue:{q}", f"Queue {q}") for q in self.cfg.handoff.queues]
        agent = self.cfg.screenpop.agents.get(name)
        if agent is not None and agent.interface:
            out.append((f"interface:{agent.interface}", f"My phone ({agent.interface})"))
        return out

    def changed(self) -> None:
        for q in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)

    async def _watch(self) -> None:
        """Follow the agents' live cards: a full read after each (re)subscription, then the changes."""
        await follow_channel(self.cfg.redis.url, LIVE_CHANNEL, self._on_live, what="supervisor view",
                             on_subscribed=self._read_all, on_lost=self.watching.clear, retry_s=RECONNECT_S)

    async def _read_all(self) -> None:
        now = time.monotonic()
        self.agent_calls = {c["call_id"]: (c, now) for c in await self.board.cards()}
        self.watching.set()
        self.changed()

    async def _on_live(self, raw: object) -> None:
        msg = _message(raw)
        if msg is None:
            return
        if msg.get("op") == "put":
            card = parse_card(json.dumps(msg.get("card")))
            if card is not None:
                self.agent_calls[card["call_id"]] = (card, time.monotonic())
        elif msg.get("op") == "remove" and isinstance(msg.get("call_id"), str):
            self.agent_calls.pop(msg["call_id"], None)
        self.changed()

    # ------------------------------------------------------------------ pages
    async def page(self, request: web.Request) -> web.Response:
        if self.sign_in.user(request) is None:
            raise web.HTTPSeeOther("/login")
        name = self._supervisor(request)
        agent = self.cfg.screenpop.agents[name]
        return self.html(supervisor_page(name, agent.name, self.sign_in.csrf_token(request), self.targets(name),
                                         self.snapshot(), self.notices.pop(name, "")), 200)

    async def api_calls(self, request: web.Request) -> web.Response:
        self._supervisor(request)
        return web.json_response(self.snapshot(), headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        self._supervisor(request)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        q: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self.subscribers.add(q)
        try:
            await resp.write(_sse(self.snapshot()))
            while True:
                try:
                    await asyncio.wait_for(q.get(), HEARTBEAT_S)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                await resp.write(_sse(self.snapshot()))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.subscribers.discard(q)
        return resp

    # ------------------------------------------------------------------ takeover
    async def takeover(self, request: web.Request) -> web.Response:
        name = self._supervisor(request)
        form = await request.post()
        if not self.sign_in.csrf_ok(request, str(form.get("csrf", ""))):
            raise web.HTTPForbidden(text="the form is out of date: reload the page")
        call_id, target = str(form.get("call_id", ""))[:100], str(form.get("target", ""))[:200]
        result = await self.take_over(name, call_id, target)
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response({"ok": result.ok, "detail": result.detail}, status=200 if result.ok else 409)
        self.notices[name] = ("Done: " if result.ok else "Not done: ") + result.detail
        raise web.HTTPSeeOther("/supervisor")

    async def take_over(self, name: str, call_id: str, target: str) -> TakeoverResult:
        if target not in dict(self.targets(name)):
            return TakeoverResult("", call_id, False, "that destination is not on the list")
        if call_id not in self.agent_calls:
            return TakeoverResult("", call_id, False, "that call is no longer with the voice agent")
        kind, _, where = target.partition(":")
        try:
            req = TakeoverRequest.new(call_id, name, queue=where if kind == "queue" else "",
                                      interface=where if kind == "interface" else "")
        except TakeoverError as exc:
            return TakeoverResult("", call_id, False, str(exc))
        result = await self._ask(req)
        log.warning("screen-pop: supervisor %s took over call %s to %s: %s", name, call_id, where, result.detail)
        if self.audit is not None:
            self.audit.submit("takeover_request", {"call_id": call_id, "by": name, "target": target,
                                                   "request_id": req.request_id, "ok": result.ok,
                                                   "detail": result.detail})
        return result

    async def _ask(self, req: TakeoverRequest) -> TakeoverResult:
        """Publish ``req`` and wait for the answer of the agent process that serves the call."""
        timeout = self.cfg.supervision.takeover_timeout_s
        client: aioredis.Redis = aioredis.Redis.from_url(self.cfg.redis.url, socket_connect_timeout=2.0)
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(RESULT_CHANNEL)
                if not await client.publish(TAKEOVER_CHANNEL, req.to_json()):
                    return TakeoverResult(req.request_id, req.call_id, False, "no agent process is listening")
                deadline = asyncio.get_running_loop().time() + timeout
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    message = await pubsub.get_message(timeout=left)
                    if message is None or message.get("type") != "message":
                        continue
                    result = TakeoverResult.from_json(message.get("data", b""))
                    if result is not None and result.request_id == req.request_id:
                        return result
        except (RedisError, OSError) as exc:
            return TakeoverResult(req.request_id, req.call_id, False, f"Redis: {type(exc).__name__}")
        finally:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
        return TakeoverResult(req.request_id, req.call_id, False, f"no answer from the agent within {timeout:g}s")


def _message(raw: object) -> dict[str, Any] | None:
    try:
        msg = json.loads(raw) if isinstance(raw, (str, bytes)) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


def _sse(snapshot: dict[str, Any]) -> bytes:
    return ("event: calls\ndata: " + json.dumps({**snapshot, "now": time.time()}, ensure_ascii=False) +
            "\n\n").encode()
