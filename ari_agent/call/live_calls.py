"""The calls an agent process is serving right now, published in Redis for supervisors.

Each live call has a card (who is calling, since when, the intent and phase so far, verification,
slots and the redacted transcript) under ``ari-agent:live:<call id>`` with a short expiry, refreshed
while the call lasts; every change is also published on ``ari-agent:live`` (``{"op": "put", "card":
...}`` / ``{"op": "remove", "call_id": ...}``) so the supervisor page updates at once. An agent that
dies leaves nothing behind for long: its cards expire.

Redis is an aid: a failed write is logged (once per outage) and the call goes on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ari_agent.call.forced_handoff import engine_of
from ari_agent.call.handoff_context import transcript_from_log
from ari_agent.governance.redis_follow import follow
from ari_agent.redaction import redact
from ari_agent.telephony.events import Channel

log = logging.getLogger(__name__)

LIVE_PREFIX = "ari-agent:live:"
LIVE_CHANNEL = "ari-agent:live"
MAX_TRANSCRIPT = 40  # lines on a card (the latest)


class LiveCall(Protocol):
    """What a card is made from (``CallSession``)."""

    @property
    def call_id(self) -> str: ...
    @property
    def caller(self) -> Channel: ...
    @property
    def started_at(self) -> float: ...  # time.monotonic()
    @property
    def conversation(self) -> object: ...


def live_card(call: LiveCall, *, extra_patterns: Sequence[tuple[str, str]] = (), agent: str = "",
              now_mono: float | None = None, now_wall: float | None = None) -> dict[str, Any]:
    """The supervisor's card of a call the agent is serving (redacted)."""
    mono = time.monotonic() if now_mono is None else now_mono
    wall = time.time() if now_wall is None else now_wall
    engine = engine_of(call.conversation)
    card: dict[str, Any] = {
        "state": "with_agent", "call_id": call.call_id, "queue": "", "agent": agent,
        "caller_id": call.caller.caller_number, "caller_name": call.caller.caller_name,
        "started_at": round(wall - (mono - call.started_at), 3), "intent": "", "phase": "starting",
        "verification": "not verified", "summary": "", "reason": "", "slots": {}, "transcript": [],
    }
    if engine is not None:
        state = engine.state
        intent = state.intent or (engine.last_intent.name if engine.last_intent is not None else "")
        card.update(intent=intent, phase=state.phase, turns=state.turns,
                    verification="not verified" if state.verified == "none" else state.verified,
                    summary=redact("; ".join(list(engine.notes)[-5:]), extra_patterns=extra_patterns),
                    slots={k: redact(v, extra_patterns=extra_patterns) for k, v in state.slots.items()})
    events = getattr(call.conversation, "events", ())
    card["transcript"] = transcript_from_log(events, extra_patterns)[-MAX_TRANSCRIPT:]
    return card


def agent_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LiveCallBoard:
    def __init__(self, url: str, *, ttl_s: int = 30, timeout_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        self.redis: aioredis.Redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                                             socket_connect_timeout=timeout_s)
        self._down = False

    async def put(self, card: dict[str, Any]) -> bool:
        body = json.dumps(card, ensure_ascii=False)
        return await self._do(self._put(card["call_id"], body))

    async def _put(self, call_id: str, body: str) -> None:
        await self.redis.set(LIVE_PREFIX + call_id, body, ex=self.ttl_s)
        await self.redis.publish(LIVE_CHANNEL, json.dumps({"op": "put", "card": json.loads(body)}))

    async def remove(self, call_id: str) -> bool:
        return await self._do(self._remove(call_id))

    async def _remove(self, call_id: str) -> None:
        await self.redis.delete(LIVE_PREFIX + call_id)
        await self.redis.publish(LIVE_CHANNEL, json.dumps({"op": "remove", "call_id": call_id}))

    async def cards(self) -> list[dict[str, Any]]:
        """Every live card of every agent process (oldest call first); [] when Redis does not answer."""
        out: list[dict[str, Any]] = []
        try:
            keys = [k async for k in self.redis.scan_iter(match=LIVE_PREFIX + "*", count=200)]
            values = await self.redis.mget(keys) if keys else []
        except (RedisError, OSError) as exc:
            log.warning("live calls not read from Redis: %s", type(exc).__name__)
            return out
        for raw in values:
            card = parse_card(raw)
            if card is not None:
                out.append(card)
        return sorted(out, key=lambda c: float(c.get("started_at") or 0))

    async def _do(self, op: Any) -> bool:
        try:
            await op
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning("live calls not published to Redis: %s", type(exc).__name__)
            self._down = True
            return False
        if self._down:
            log.info("live calls published to Redis again")
        self._down = False
        return True

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        except (RedisError, OSError):
            pass


def parse_card(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        card = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return card if isinstance(card, dict) and isinstance(card.get("call_id"), str) else None


async def follow_channel(url: str, channel: str, on_message: Callable[[object], Awaitable[None]], *,
                         what: str, on_subscribed: Callable[[], Awaitable[None]] | None = None,
                         on_lost: Callable[[], None] | None = None, retry_s: float = 2.0) -> None:
    """Handle every message on Redis pub/sub ``channel`` until cancelled, subscribing again after a
    failure (``on_subscribed`` after each subscription, ``on_lost`` after each loss). The first failure
    is a warning and the recovery is logged; the retries in between are debug lines, not a warning
    every ``retry_s`` for as long as Redis is away. The loop is the kill switch's too
    (:func:`ari_agent.governance.redis_follow.follow`); its lines are logged here."""
    await follow(url, channel, on_message, what=what, on_subscribed=on_subscribed, on_lost=on_lost,
                 retry_s=retry_s, logger=log)
