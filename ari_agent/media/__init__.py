"""Pure media layer: RTP packets, G.711, PCM helpers, jitter buffer and outbound pacing (no I/O)."""

from ari_agent.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from ari_agent.media.jitter import AudioFrame, JitterBuffer, JitterStats
from ari_agent.media.pacer import OutboundStream, PacingClock
from ari_agent.media.pcm import (
    SAMPLES_PER_FRAME,
    Codec,
    Pcm,
    Resampler,
    array_to_slin_be,
    array_to_slin_le,
    as_pcm16,
    energy_envelope,
    envelope_correlation,
    float_to_pcm16,
    frame_energy_db,
    pcm16_to_float,
    resample,
    slin_be_to_array,
    slin_le_to_array,
)
from ari_agent.media.rtp import RtpPacket, seq_add, seq_diff, seq_lt, ts_add, ts_diff, ts_lt

__all__ = [
    "SAMPLES_PER_FRAME",
    "AudioFrame",
    "Codec",
    "JitterBuffer",
    "JitterStats",
    "OutboundStream",
    "PacingClock",
    "Pcm",
    "Resampler",
    "RtpPacket",
    "alaw_decode",
    "alaw_encode",
    "array_to_slin_be",
    "array_to_slin_le",
    "as_pcm16",
    "energy_envelope",
    "envelope_correlation",
    "float_to_pcm16",
    "frame_energy_db",
    "pcm16_to_float",
    "resample",
    "seq_add",
    "seq_diff",
    "seq_lt",
    "slin_be_to_array",
    "slin_le_to_array",
    "ts_add",
    "ts_diff",
    "ts_lt",
    "ulaw_decode",
    "ulaw_encode",
]
