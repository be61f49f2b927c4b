"""The call's media path: a mixing bridge holding the caller and an ARI externalMedia channel whose
media ends at the call's endpoint: RTP at an :class:`RtpEndpoint` (``media.transport: rtp``) or
chan_websocket at a :class:`WebSocketMediaEndpoint` (``websocket``, over wss:// when ARI is https://).
Opened once per call; closed in any case (idempotent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ari_agent.config import Config
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Codec
from ari_agent.metrics import RTP_PACKETS
from ari_agent.telephony.ari import AriClient
from ari_agent.telephony.events import StasisStart
from ari_agent.telephony.rtp_transport import PacingTicker, RtpEndpoint
from ari_agent.telephony.websocket_media import WebSocketMediaEndpoint

MediaEndpoint = RtpEndpoint | WebSocketMediaEndpoint


def media_endpoint(cfg: Config, codec: Codec, on_frame: Callable[[AudioFrame], None], *,
                   record_lateness: bool = False) -> MediaEndpoint:
    """The endpoint ``media.transport`` asks for."""
    if cfg.media.transport == "websocket":
        return WebSocketMediaEndpoint(on_frame)
    return RtpEndpoint(codec, on_frame, jitter_depth_frames=cfg.media.jitter_depth_frames,
                       record_lateness=record_lateness, send_silence=cfg.media.send_silence)

MEDIA_CHANNEL_START_S = 5.0


class MediaPath:
    def __init__(self, call_id: str, caller_channel: str, ari: AriClient, cfg: Config, ticker: PacingTicker,
                 endpoint: MediaEndpoint, expect_channel: Callable[[str], Awaitable[StasisStart]]) -> None:
        self.call_id = call_id
        self.caller_channel = caller_channel
        self.ari = ari
        self.cfg = cfg
        self.ticker = ticker
        self.endpoint = endpoint
        self._expect_channel = expect_channel
        self.media_channel_id = f"{call_id}-media"
        self.bridge_id = f"{call_id}-bridge"
        self._bridge_created = False
        self._media_created = False

    async def open(self) -> None:
        await self.ari.create_bridge("mixing", name=f"ari-agent {self.call_id}", bridge_id=self.bridge_id)
        self._bridge_created = True
        await self.ari.add_channel(self.bridge_id, self.caller_channel)
        if isinstance(self.endpoint, WebSocketMediaEndpoint):
            await self._open_websocket(self.endpoint)
            return
        port = await self.endpoint.open(self.cfg.media.bind_host)
        started = asyncio.ensure_future(self._expect_channel(self.media_channel_id))
        try:
            info = await self.ari.external_media(
                f"{self.cfg.media.bind_host}:{port}", self.cfg.media.format, channel_id=self.media_channel_id,
                variables={"ARI_AGENT_CALL_ID": self.call_id},
            )
            self._media_created = True
            self.endpoint.set_remote(info.local_address, info.local_port)
            # Known race: the HTTP reply can beat the media channel's StasisStart; addChannel before
            # it fails 422 "Channel not in Stasis application". Wait for it.
            await asyncio.wait_for(asyncio.shield(started), MEDIA_CHANNEL_START_S)
        finally:
            if not started.done():
                started.cancel()
        await self.ari.add_channel(self.bridge_id, self.media_channel_id)
        self.ticker.add(self.endpoint)

    async def _open_websocket(self, endpoint: WebSocketMediaEndpoint) -> None:
        started = asyncio.ensure_future(self._expect_channel(self.media_channel_id))
        try:
            info = await self.ari.external_media_websocket(
                "slin16", channel_id=self.media_channel_id, variables={"ARI_AGENT_CALL_ID": self.call_id})
            self._media_created = True
            # chan_websocket "server": the channel waits for this connection; MEDIA_START checked in connect().
            await endpoint.connect(self.ari.media_websocket_url(info.connection_id), self.ari.tls)
            await asyncio.wait_for(asyncio.shield(started), MEDIA_CHANNEL_START_S)
        finally:
            if not started.done():
                started.cancel()
        await self.ari.add_channel(self.bridge_id, self.media_channel_id)

    async def close(self) -> None:
        if isinstance(self.endpoint, WebSocketMediaEndpoint):
            await self.endpoint.aclose()
        else:
            self.ticker.remove(self.endpoint)
            self.endpoint.close()
            self.endpoint.flush_received()
        if self._media_created:
            self._media_created = False
            await self.ari.quietly(self.ari.hangup(self.media_channel_id))
        if self._bridge_created:
            self._bridge_created = False
            await self.ari.quietly(self.ari.destroy_bridge(self.bridge_id))

    def rtp_stats(self) -> dict[str, int]:
        """The call's media counters (RTP ones also added to the Prometheus counters, once)."""
        if isinstance(self.endpoint, WebSocketMediaEndpoint):
            return {"websocket": 1, **self.endpoint.stats.as_dict()}
        s = self.endpoint.stats
        j = self.endpoint.jitter.stats
        rtp = {
            "datagrams": s.datagrams, "accepted": s.accepted, "malformed": s.malformed,
            "wrong_payload_type": s.wrong_payload_type, "foreign_source": s.foreign_source,
            "foreign_ssrc": s.foreign_ssrc, "sent": s.sent, "lost": j.lost, "late": j.late,
            "duplicates": j.duplicates, "reordered": j.reordered,
        }
        for result in ("accepted", "malformed", "wrong_payload_type", "foreign_source", "foreign_ssrc"):
            RTP_PACKETS.labels("in", result).inc(rtp[result])
        RTP_PACKETS.labels("out", "sent").inc(s.sent)
        return rtp
