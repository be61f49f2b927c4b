"""The ARI events WebSocket: connects, reconnects with backoff, and yields typed events.

Asterisk only routes a ``Stasis(app)`` call to us while this socket is connected, so it must come
back by itself after Asterisk restarts or the network blips, and soon: while it is away, callers of a
single-agent site go to the queue and a scaled-out site has one agent fewer. The backoff therefore
starts at ``ari.reconnect_initial_s`` and is capped at ``ari.reconnect_max_s`` (default 1 s): a refused
connect costs Asterisk nothing, and the agent is back at most about one cap after Asterisk is. Each
reconnect logs how long the stream was down (``down_s``, also in ``last_down_s``). Malformed events are logged and
skipped; they never end the stream. Over ``wss://`` the certificate is checked with the ARI client's
context (``AriClient.tls``); a certificate that does not verify is logged as an error naming the reason
(``last_error``) and retried like any failed connect, never downgraded to plain ``ws://``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp

from ari_agent.telephony.events import AriEvent, AriEventError, parse_event
from ari_agent.telephony.tls import TlsContext, tls_failure

log = logging.getLogger(__name__)


class AriEventStream:
    def __init__(
        self,
        base_url: str,
        app: str,
        auth_header: str,
        *,
        initial_backoff_s: float = 0.25,
        max_backoff_s: float = 1.0,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        tls: TlsContext | None = None,
    ) -> None:
        ws = base_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self.url = f"{ws}/ari/events"
        self.app = app
        self._auth = auth_header
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.connected = asyncio.Event()
        self.connects = 0
        self.malformed = 0
        self.tls = tls
        self.last_error: str | None = None  # why the last connect failed (None once connected)
        self.last_down_s: float | None = None  # how long the stream was down before the last reconnect
        self._down_since: float | None = None
        self._closed = False

    def close(self) -> None:
        self._closed = True

    async def events(self) -> AsyncIterator[AriEvent]:
        backoff = self.initial_backoff_s
        async with aiohttp.ClientSession(headers={"Authorization": self._auth}) as session:
            while not self._closed:
                try:
                    async with session.ws_connect(
                        self.url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=10.0,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                        ssl=self.tls.ssl if self.tls is not None else True,
                    ) as ws:
                        self.connects += 1
                        self.last_error = None
                        backoff = self.initial_backoff_s
                        self.connected.set()
                        if self._down_since is None:
                            log.info("ARI events connected (%s, app=%s)", self.url, self.app)
                        else:
                            self.last_down_s = time.monotonic() - self._down_since
                            self._down_since = None
                            log.warning("ARI events reconnected (%s, app=%s) after %.2fs down", self.url, self.app,
                                        self.last_down_s)
                        if self.on_connect:
                            self.on_connect()
                        async for msg in ws:
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                event = self._parse(msg.data)
                                if event is not None:
                                    yield event
                            elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                                break
                except aiohttp.ClientSSLError as exc:
                    self.last_error = tls_failure(exc, self.url, self.tls)
                    log.error("ARI events: %s; retrying in %.2fs", self.last_error, backoff)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.last_error = exc.__class__.__name__ + ": " + str(exc)
                    log.warning("ARI events: %s; retrying in %.2fs", exc.__class__.__name__ + ": " + str(exc),
                                backoff)
                finally:
                    if self.connected.is_set():
                        self.connected.clear()
                        self._down_since = time.monotonic()
                        log.warning("ARI events disconnected")
                        if self.on_disconnect:
                            self.on_disconnect()
                if self._closed:
                    break
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _parse(self, text: str) -> AriEvent | None:
        try:
            return parse_event(json.loads(text))
        except (ValueError, AriEventError) as exc:
            self.malformed += 1
            log.warning("skipping malformed ARI event: %s", exc)
            return None
