"""Following a Redis pub/sub channel for as long as an agent runs: the one loop every follower shares.

The kill switch (:mod:`ari_agent.governance.killswitch`), takeover requests and the supervisor view
(through :func:`ari_agent.call.live_calls.follow_channel`) all subscribe to a channel, handle each
message, and subscribe again after Redis went away. What an outage looks like in the log is the same
for all of them: one warning when Redis goes, an info line when it is back, and debug lines for the
retries in between, not a warning per retry for as long as Redis is away.

It lives here, in the governance layer, because the kill switch (governance) cannot import the call
layer, while the call layer may import governance; it imports nothing of the agent's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

_log = logging.getLogger(__name__)

IDLE_READ_S = 1.0  # how long one read waits for a message when there is nothing to poll


async def follow(url: str, channel: str, on_message: Callable[[bytes | str], Awaitable[None]], *, what: str,
                 on_subscribed: Callable[[], Awaitable[None]] | None = None,
                 on_lost: Callable[[], None] | None = None,
                 poll: Callable[[aioredis.Redis], Awaitable[None]] | None = None, poll_s: float = 1.0,
                 while_down: Callable[[], None] | None = None,
                 retry_s: float = 2.0, retry_max_s: float | None = None,
                 connect_timeout_s: float = 2.0, socket_timeout_s: float | None = None,
                 detail: Callable[[], str] | None = None,
                 logger: logging.Logger | None = None) -> None:
    """Handle every message on Redis pub/sub ``channel`` until cancelled.

    After each subscription: ``poll(client)`` (when given: read what the channel announces, as a
    backstop for a message lost while away; again every ``poll_s`` while subscribed), then
    ``on_subscribed()``. After each loss (and when cancelled): ``on_lost()``. While Redis is away the
    loop waits ``retry_s`` before subscribing again, doubled after each failure up to ``retry_max_s``
    (default: ``retry_s``, a fixed retry), calling ``while_down()`` every ``poll_s`` meanwhile.
    ``detail()`` is added to the outage warning (what the follower does meanwhile); log lines go to
    ``logger`` (default: this module's), named by ``what``.
    """
    log = logger or _log
    cap = retry_s if retry_max_s is None else max(retry_s, retry_max_s)
    delay = retry_s
    down = False
    while True:
        client: aioredis.Redis | None = None
        try:
            # socket_timeout: a read on a silently dead connection fails (and we subscribe again) instead of hanging.
            client = aioredis.Redis.from_url(url, socket_connect_timeout=connect_timeout_s,
                                             socket_timeout=socket_timeout_s)
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(channel)
                if poll is not None:
                    await poll(client)
                if down:
                    log.info("%s: subscribed to Redis again", what)
                down, delay = False, retry_s
                if on_subscribed is not None:
                    await on_subscribed()
                next_poll = time.monotonic() + poll_s
                while True:
                    wait = IDLE_READ_S if poll is None else max(0.0, next_poll - time.monotonic())
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                    if message is not None and message.get("type") == "message":
                        await on_message(message.get("data", b""))
                    if poll is not None and time.monotonic() >= next_poll:
                        await poll(client)
                        next_poll = time.monotonic() + poll_s
        except (RedisError, OSError) as exc:
            level = logging.DEBUG if down else logging.WARNING
            note = f"; {detail()}" if detail is not None else ""
            log.log(level, "%s: Redis unreachable (%s)%s; subscribing again in %gs", what, type(exc).__name__,
                    note, delay)
            down = True
        finally:
            if on_lost is not None:
                on_lost()
            if client is not None:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await asyncio.wait_for(client.aclose(), 1.0)
        await _wait(delay, while_down, poll_s)
        delay = min(delay * 2, cap)


async def _wait(delay: float, while_down: Callable[[], None] | None, every_s: float) -> None:
    if while_down is None:
        await asyncio.sleep(delay)
        return
    deadline = time.monotonic() + delay
    while True:
        while_down()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(every_s, left))
