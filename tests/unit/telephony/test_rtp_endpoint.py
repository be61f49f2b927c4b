"""The RTP receive policy of one call's endpoint, fed datagrams directly (no socket needed)."""

from __future__ import annotations

import asyncio

import numpy as np

from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Codec
from ari_agent.media.rtp import RtpPacket
from ari_agent.telephony.rtp_transport import SSRC_SWITCH_PACKETS, RtpEndpoint

ASTERISK = ("127.0.0.1", 12000)


def pkt(seq: int, ssrc: int = 0xAAAA, pt: int = 0, size: int = 160) -> bytes:
    return RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 160, ssrc=ssrc,
                     payload=b"\x55" * size).serialize()


def endpoint() -> tuple[RtpEndpoint, list[AudioFrame]]:
    frames: list[AudioFrame] = []
    ep = RtpEndpoint(Codec.ULAW, frames.append)
    ep.set_remote(*ASTERISK)
    return ep, frames


def test_good_stream_yields_frames() -> None:
    ep, frames = endpoint()
    for s in range(10):
        ep.datagram_received(pkt(s), ASTERISK)
    assert ep.stats.accepted == 10 and len(frames) == 10
    assert all(f.pcm.dtype == np.int16 and f.pcm.size == 160 for f in frames)


def test_bad_datagrams_are_counted_and_dropped() -> None:
    ep, _ = endpoint()
    ep.datagram_received(pkt(1), ASTERISK)
    for junk in (b"", b"\x80", b"\x00" * 12, b"\xff" * 40, pkt(2)[:11]):
        ep.datagram_received(junk, ASTERISK)
    ep.datagram_received(pkt(3, size=200), ASTERISK)   # more than 20 ms of u-law
    ep.datagram_received(pkt(8, size=100), ASTERISK)   # a short last frame: padded with silence, kept
    ep.datagram_received(pkt(4, pt=8), ASTERISK)       # A-law on a u-law stream
    ep.datagram_received(pkt(5, pt=101), ASTERISK)     # RFC 4733 DTMF: ignored quietly (ARI reports DTMF)
    ep.datagram_received(pkt(6), ("127.0.0.1", 9999))  # right packet, wrong source
    ep.datagram_received(pkt(7), ("10.0.0.1", 12000))
    st = ep.stats
    assert st.malformed == 6
    assert st.wrong_payload_type == 1
    assert st.foreign_source == 2
    assert st.accepted == 2 and st.short_frames == 1


def test_foreign_ssrc_dropped_but_a_real_source_change_is_followed() -> None:
    ep, _ = endpoint()
    for s in range(5):
        ep.datagram_received(pkt(s), ASTERISK)
    ep.datagram_received(pkt(100, ssrc=0xBAD), ASTERISK)  # stray foreign SSRC interleaved
    ep.datagram_received(pkt(5), ASTERISK)
    assert ep.stats.foreign_ssrc == 1
    # Asterisk switches source (new SSRC, new sequence space): followed after a few packets in a row.
    for s in range(SSRC_SWITCH_PACKETS + 3):
        ep.datagram_received(pkt(5000 + s, ssrc=0xBBBB), ASTERISK)
    assert ep.stats.ssrc_changes == 1
    assert ep.stats.accepted == 6 + 4


async def test_outbound_flush_stops_at_once() -> None:
    ep, _ = endpoint()
    started = ep.play(np.zeros(8000, dtype=np.int16))
    assert ep.outbound.queued_ms >= 990 and ep.playing
    assert ep.stop_playback() >= 49
    assert ep.outbound.is_idle and not ep.playing
    assert started.cancelled()  # flushed before its first packet went out
    await asyncio.wait_for(ep.drained(), 0.1)


async def test_playout_is_awaited_not_polled() -> None:
    ep, _ = endpoint()
    await asyncio.wait_for(ep.drained(), 0.1)  # nothing queued: drained at once
    first = ep.play(np.zeros(3 * 160, dtype=np.int16))
    second = ep.play(np.zeros(100, dtype=np.int16))  # a short tail: padded to one frame
    drained = asyncio.ensure_future(ep.drained())
    ep.tick(0.0)
    await asyncio.sleep(0)
    assert first.done() and not second.done() and not drained.done()
    ep.tick(0.0)
    ep.tick(0.0)
    await asyncio.sleep(0)
    assert not second.done() and not drained.done()
    ep.tick(0.0)  # the fourth frame: the second play's first packet, and the last one
    await asyncio.sleep(0)
    assert second.done() and second.result() >= first.result() and drained.done()
    ep.tick(0.0)  # silence fill from now on: nothing more resolves, still drained
    assert not ep.playing
