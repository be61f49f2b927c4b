"""ARI (Asterisk REST Interface) client on aiohttp.

ari-py, the historical Python client, is Python-2-only; this module talks ARI directly: typed methods
for what the agent uses, ARI errors mapped to exceptions that carry ARI's own message, a timeout on
every request, and an explicit Authorization header (aiohttp's BasicAuth is deprecated).

Over ``https://`` the server certificate is always verified (``ari_agent.telephony.tls``): against
``ari.ca_file`` or the system trust store. A certificate that does not verify is an :class:`AriTlsError`
naming the reason; the client never falls back to plain HTTP.

The events WebSocket lives in ``telephony/event_stream.py``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from ari_agent.errors import TelephonyError
from ari_agent.telephony.tls import TlsContext, tls_context, tls_failure

if TYPE_CHECKING:
    from ari_agent.config import AriConfig

log = logging.getLogger(__name__)

Params = Mapping[str, str | int | float | bool]


class AriError(TelephonyError):
    """ARI answered with an error status; ``message`` is ARI's own explanation."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.message = message
        super().__init__(f"ARI {method} {path} -> {status}: {message}")


class AriNotFound(AriError):
    """404: the channel, bridge or playback no longer exists (often: the caller hung up)."""


class AriConflict(AriError):
    """409: e.g. the channel is not in a state that allows this."""


class AriUnprocessable(AriError):
    """422: e.g. 'Channel not in Stasis application'."""


class AriUnreachable(TelephonyError):
    """Asterisk's HTTP server could not be reached or did not answer in time."""


class AriTlsError(AriUnreachable):
    """The TLS handshake with Asterisk failed: its certificate did not verify against the configured CA
    (wrong CA, wrong host name, expired), or the server does not speak TLS on that port."""


class AriAuthError(AriError):
    """401/403: wrong ARI username or password."""


_STATUS_CLASSES: dict[int, type[AriError]] = {
    401: AriAuthError, 403: AriAuthError, 404: AriNotFound, 409: AriConflict, 422: AriUnprocessable,
}


@dataclass(frozen=True)
class WebSocketMediaInfo:
    channel_id: str
    connection_id: str  # the agent connects to <ari base>/media/<connection_id> (chan_websocket "server")
    raw: dict[str, Any]


@dataclass(frozen=True)
class ExternalMediaInfo:
    channel_id: str
    local_address: str  # where Asterisk receives our RTP and sends its own from
    local_port: int
    raw: dict[str, Any]


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


# Shorter than Asterisk's http.conf session_keep_alive (15 s): the client drops an idle connection first.
KEEPALIVE_S = 5.0


class AriClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        timeout_s: float = 5.0,
        session: aiohttp.ClientSession | None = None,
        ca_file: Path | None = None,
        max_connections: int = 32,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self.app = app
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        # Built once (a bad CA file is refused here, before any connection): shared by the events
        # WebSocket and WebSocket media, so every connection to this Asterisk checks the same CA.
        self.tls: TlsContext | None = tls_context(self.base_url, ca_file)
        self._auth = basic_auth_header(username, password)
        self._session = session
        self._own_session = session is None

    @classmethod
    def from_config(cls, cfg: AriConfig, app: str | None = None) -> AriClient:
        return cls(cfg.url, cfg.username, cfg.password.get_secret_value(), app or cfg.app,
                   timeout_s=cfg.request_timeout_s, ca_file=cfg.ca_file, max_connections=cfg.max_connections)

    @property
    def auth_header(self) -> str:
        return self._auth

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # A bounded pool: Asterisk's HTTP server serves at most ``sessionlimit`` connections
            # (asterisk-config/http.conf) and refuses the rest, which under a burst of calls showed as
            # "Server disconnected". Idle connections are let go before Asterisk's session_keep_alive
            # (15 s) closes them, so a request never goes out on a socket the PBX has just shut.
            connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(headers={"Authorization": self._auth}, connector=connector)
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    # ------------------------------------------------------------------ core
    async def request(
        self, method: str, path: str, params: Params | None = None, json: Any = None,
        timeout_s: float | None = None,
    ) -> Any:
        url = f"{self.base_url}/ari{path}"
        q = {k: _param(v) for k, v in (params or {}).items()}
        timeout = aiohttp.ClientTimeout(total=timeout_s) if timeout_s is not None else self.timeout
        try:
            async with self.session().request(
                method, url, params=q, json=json, timeout=timeout, headers={"Authorization": self._auth},
                ssl=self.tls.ssl if self.tls is not None else True,
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    raise _STATUS_CLASSES.get(resp.status, AriError)(method, path, resp.status, _message(body))
                if not body:
                    return None
                try:
                    return await resp.json(content_type=None)
                except ValueError:
                    return body.decode("utf-8", "replace")
        except TimeoutError:
            raise AriUnreachable(f"ARI {method} {path}: no answer within {timeout.total}s") from None
        except aiohttp.ClientSSLError as exc:
            raise AriTlsError(f"ARI {method} {path}: {tls_failure(exc, self.base_url, self.tls)}") from None
        except aiohttp.ClientError as exc:
            raise AriUnreachable(f"ARI {method} {path}: {exc.__class__.__name__}: {exc}") from None

    # ------------------------------------------------------------------ asterisk
    async def asterisk_info(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/asterisk/info"))

    async def module(self, name: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/asterisk/modules/{quote(name)}"))

    async def applications(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/applications"))

    async def application(self, name: str) -> dict[str, Any]:
        """One application: what it is subscribed to (``channel_ids``, ``bridge_ids``, ...)."""
        return dict(await self.request("GET", f"/applications/{quote(name)}"))

    async def get_global(self, name: str) -> str:
        """A dialplan global variable (e.g. ``ARI_AGENT_APPS``)."""
        data = await self.request("GET", "/asterisk/variable", {"variable": name})
        return str((data or {}).get("value", ""))

    async def set_global(self, name: str, value: str) -> None:
        await self.request("POST", "/asterisk/variable", {"variable": name, "value": value})

    # ------------------------------------------------------------------ channels
    async def list_channels(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/channels"))

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/channels/{quote(channel_id)}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{quote(channel_id)}", {"reason": reason})

    async def originate(
        self,
        endpoint: str,
        *,
        extension: str | None = None,
        context: str | None = None,
        priority: int = 1,
        app: str | None = None,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout_s: int = 30,
        channel_id: str | None = None,
        formats: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str | int | float | bool] = {"endpoint": endpoint, "timeout": timeout_s}
        if extension is not None:
            params.update(extension=extension, context=context or "default", priority=priority)
        if app is not None:
            params["app"] = app
            if app_args:
                params["appArgs"] = app_args
        if caller_id:
            params["callerId"] = caller_id
        if channel_id:
            params["channelId"] = channel_id
        if formats:
            params["formats"] = formats
        body = {"variables": dict(variables)} if variables else None
        return dict(await self.request("POST", "/channels", params, json=body))

    async def external_media(
        self,
        external_host: str,
        fmt: str,
        *,
        channel_id: str | None = None,
        encapsulation: str = "rtp",
        transport: str = "udp",
        connection_type: str = "client",
        direction: str = "both",
        variables: Mapping[str, str] | None = None,
    ) -> ExternalMediaInfo:
        params: dict[str, str | int | float | bool] = {
            "app": self.app, "external_host": external_host, "format": fmt, "encapsulation": encapsulation,
            "transport": transport, "connection_type": connection_type, "direction": direction,
        }
        if channel_id:
            params["channelId"] = channel_id
        body = {"variables": dict(variables)} if variables else None
        data = dict(await self.request("POST", "/channels/externalMedia", params, json=body))
        cvars = data.get("channelvars") or {}
        try:
            addr = str(cvars["UNICASTRTP_LOCAL_ADDRESS"])
            port = int(cvars["UNICASTRTP_LOCAL_PORT"])
        except (KeyError, TypeError, ValueError):
            raise TelephonyError(f"externalMedia reply lacks UNICASTRTP_LOCAL_ADDRESS/PORT: {cvars!r}") from None
        return ExternalMediaInfo(str(data.get("id", channel_id or "")), addr, port, data)

    async def external_media_websocket(
        self,
        fmt: str = "slin16",
        *,
        channel_id: str | None = None,
        direction: str = "both",
        variables: Mapping[str, str] | None = None,
    ) -> WebSocketMediaInfo:
        """An externalMedia channel on chan_websocket in "server" mode: Asterisk waits for the agent to
        connect to ``/media/<connection id>`` on its HTTP server (so over TLS when ARI is)."""
        params: dict[str, str | int | float | bool] = {
            "app": self.app, "format": fmt, "encapsulation": "none", "transport": "websocket",
            "connection_type": "server", "direction": direction,
        }
        if channel_id:
            params["channelId"] = channel_id
        body = {"variables": dict(variables)} if variables else None
        data = dict(await self.request("POST", "/channels/externalMedia", params, json=body))
        cvars = data.get("channelvars") or {}
        connection_id = str(cvars.get("MEDIA_WEBSOCKET_CONNECTION_ID") or "")
        if not connection_id:
            raise TelephonyError(f"externalMedia (websocket) reply lacks MEDIA_WEBSOCKET_CONNECTION_ID: {cvars!r}")
        return WebSocketMediaInfo(str(data.get("id", channel_id or "")), connection_id, data)

    def media_websocket_url(self, connection_id: str) -> str:
        """Where chan_websocket takes the agent's media connection: ws(s)://<ARI host:port>/media/<id>."""
        ws = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{ws}/media/{quote(connection_id)}"

    async def get_variable(self, channel_id: str, name: str) -> str:
        data = await self.request("GET", f"/channels/{quote(channel_id)}/variable", {"variable": name})
        return str((data or {}).get("value", ""))

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{quote(channel_id)}/variable", {"variable": name, "value": value})

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1, label: str | None = None,
    ) -> None:
        """Leave Stasis and continue at ``context,extension,priority`` (or the priority ``label``)."""
        params: dict[str, str | int | float | bool] = {"context": context, "extension": extension,
                                                       "priority": priority}
        if label:
            params["label"] = label
        await self.request("POST", f"/channels/{quote(channel_id)}/continue", params)

    async def play(self, channel_id: str, media: str, playback_id: str | None = None) -> dict[str, Any]:
        params: dict[str, str | int | float | bool] = {"media": media}
        path = f"/channels/{quote(channel_id)}/play"
        if playback_id:
            path += f"/{quote(playback_id)}"
        return dict(await self.request("POST", path, params))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{quote(playback_id)}")

    # ------------------------------------------------------------------ bridges
    async def list_bridges(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/bridges"))

    async def create_bridge(self, bridge_type: str = "mixing", name: str = "", bridge_id: str | None = None) \
            -> dict[str, Any]:
        params: dict[str, str | int | float | bool] = {"type": bridge_type}
        if name:
            params["name"] = name
        if bridge_id:
            params["bridgeId"] = bridge_id
        return dict(await self.request("POST", "/bridges", params))

    async def add_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{quote(bridge_id)}/addChannel", {"channel": channel_id})

    async def remove_channel(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{quote(bridge_id)}/removeChannel", {"channel": channel_id})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{quote(bridge_id)}")

    # ------------------------------------------------------------------ helpers
    async def quietly(self, coro: Any) -> None:
        """Await a teardown call, ignoring 'already gone' and logging anything else."""
        try:
            await coro
        except AriNotFound:
            pass
        except (AriError, AriUnreachable) as exc:
            log.warning("teardown step failed: %s", exc)
        except asyncio.CancelledError:
            raise


def _param(v: str | int | float | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _message(body: bytes) -> str:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300] or "(no message)"
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return str(data)[:300]
