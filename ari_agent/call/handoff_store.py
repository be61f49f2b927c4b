"""The full handoff context in Redis, under the call id (the screen-pop reads it back).

Redis is an aid, not a dependency of the handoff itself: a failed write is logged and the caller is
transferred anyway (the channel variables still carry the short context).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ari_agent.call.handoff_context import context_key

log = logging.getLogger(__name__)


class HandoffStore:
    def __init__(self, url: str, *, ttl_s: int = 86400, timeout_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        self._redis: aioredis.Redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s,
                                                              socket_connect_timeout=timeout_s)

    async def put(self, call_id: str, record: Mapping[str, Any]) -> bool:
        try:
            await self._redis.set(context_key(call_id), json.dumps(record, ensure_ascii=False), ex=self.ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("call %s: handoff context not stored in Redis: %s", call_id, type(exc).__name__)
            return False
        return True

    async def get(self, call_id: str) -> dict[str, Any] | None:
        """The stored record, or None (absent, unreadable, or Redis down)."""
        try:
            raw = await self._redis.get(context_key(call_id))
        except (RedisError, OSError) as exc:
            log.warning("call %s: handoff context not read from Redis: %s", call_id, type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass
