"""The call's media path: a mixing bridge holding the caller and an ARI externalMedia channel whose
RTP ends at the call's :class:`RtpEndpoint`. Opened once per call; closed in any case (idempotent)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ari_agent.config import Config
from ari_agent.metrics import RTP_PACKETS
from ari_agent.telephony.ari import AriClient
from ari_agent.telephony.events import StasisStart
from ari_agent.telephony.rtp_transport import PacingTicker, RtpEndpoint

MEDIA_CHANNEL_START_S = 5.0


class MediaPath:
    def __init__(self, call_id: str, caller_channel: str, ari: AriClient, cfg: Config, ticker: PacingTicker,
                 endpoint: RtpEndpoint, expect_channel: Callable[[str], Awaitable[StasisStart]]) -> None:
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

    async def close(self) -> None:
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
        """The call's RTP counters (also added to the Prometheus counters, once)."""
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
