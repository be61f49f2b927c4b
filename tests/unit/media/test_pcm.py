"""Signed-linear conversions, codecs, resampling and energy measures."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.pcm import (
    SILENCE_DB,
    Codec,
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
    trim_leading_silence,
)

Int16 = npt.NDArray[np.int16]


def speech_like(seed: int, seconds: float = 3.0, rate: int = 8000) -> Int16:
    """Voiced 'syllables' (harmonics of a wandering pitch) of random length and loudness, with pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    env = np.zeros(n)
    pos = int(rng.integers(0, rate // 10))
    while pos < n:
        length = int(rng.integers(rate // 12, rate // 3))
        seg = np.hanning(length) * rng.uniform(0.2, 1.0)
        env[pos : pos + length] = seg[: max(0, min(length, n - pos))]
        pos += length + int(rng.integers(rate // 25, rate // 4))
    t = np.arange(n) / rate
    pitch = 120 + 30 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    noise = rng.normal(0.0, 0.05, n)
    return float_to_pcm16(0.3 * env * (voice + noise))


# --- slin ---------------------------------------------------------------------------------------


def test_slin_be_round_trip_and_byte_order() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 0x1234], dtype=np.int16)
    data = array_to_slin_be(pcm)
    assert data[:6] == b"\x00\x00\x00\x01\xff\xff"
    assert data[-2:] == b"\x12\x34"
    back = slin_be_to_array(data)
    assert back.dtype == np.int16 and back.tolist() == pcm.tolist()
    back[0] = 5  # writable copy
    assert array_to_slin_le(pcm)[-2:] == b"\x34\x12"
    assert slin_le_to_array(array_to_slin_le(pcm)).tolist() == pcm.tolist()
    assert slin_be_to_array(b"").size == 0


def test_slin_rejects_odd_length_and_bad_arrays() -> None:
    with pytest.raises(MediaError, match="odd length"):
        slin_be_to_array(b"\x00\x01\x02")
    with pytest.raises(MediaError, match="odd length"):
        slin_le_to_array(b"\x00")
    with pytest.raises(MediaError, match="float"):
        array_to_slin_be(np.zeros(3, dtype=np.float64))
    with pytest.raises(MediaError, match="dimensions"):
        array_to_slin_be(np.zeros((2, 3), dtype=np.int16))


def test_as_pcm16_and_float_conversions() -> None:
    x = np.array([1, 2], dtype=np.int16)
    assert as_pcm16(x) is x
    assert as_pcm16(np.array([40000, -40000, 7], dtype=np.int32)).tolist() == [32767, -32768, 7]
    assert as_pcm16([]).dtype == np.int16
    assert float_to_pcm16(np.array([0.0, 0.5, 1.5, -2.0])).tolist() == [0, 16384, 32767, -32768]
    assert pcm16_to_float(np.array([16384], dtype=np.int16)).tolist() == [0.5]
    with pytest.raises(MediaError, match="NaN"):
        float_to_pcm16(np.array([np.nan]))


# --- codecs -------------------------------------------------------------------------------------


def test_codec_properties() -> None:
    assert [c.payload_type for c in Codec] == [0, 8, 10]
    assert [c.bytes_per_20ms for c in Codec] == [160, 160, 320]
    assert all(c.samples_per_20ms == 160 and c.sample_rate == 8000 for c in Codec)
    assert Codec("ulaw") is Codec.ULAW and Codec.from_name("SLIN") is Codec.SLIN
    assert Codec.from_payload_type(8) is Codec.ALAW and Codec.from_payload_type(11) is Codec.SLIN
    with pytest.raises(MediaError, match="unknown codec"):
        Codec.from_name("g729")
    with pytest.raises(MediaError, match="payload type 18"):
        Codec.from_payload_type(18)


@pytest.mark.parametrize("codec", list(Codec))
def test_codec_encode_decode(codec: Codec) -> None:
    pcm = speech_like(1, seconds=0.02)
    payload = codec.encode(pcm)
    assert len(payload) == codec.bytes_per_20ms
    out = codec.decode(payload)
    assert out.dtype == np.int16 and out.size == 160
    if codec is Codec.SLIN:
        assert out.tolist() == pcm.tolist()
    else:
        assert np.max(np.abs(out.astype(int) - pcm)) <= max(16, int(0.07 * np.max(np.abs(pcm))))
        assert codec.encode(out) == payload  # decoded levels re-encode to themselves


def test_codec_slin_decode_rejects_odd_payload() -> None:
    with pytest.raises(MediaError):
        Codec.SLIN.decode(b"\x00" * 319)


# --- resampling ---------------------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> Int16:
    t = np.arange(int(rate * seconds)) / rate
    return float_to_pcm16(amp * np.sin(2 * np.pi * freq * t))


def dominant_freq(x: Int16, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (16000, 8000), (22050, 8000), (8000, 8000)])
def test_one_shot_resample(in_rate: int, out_rate: int) -> None:
    x = tone(440.0, in_rate, 0.5)
    y = resample(x, in_rate, out_rate)
    assert y.dtype == np.int16
    assert abs(y.size - x.size * out_rate / in_rate) <= 1
    assert abs(dominant_freq(y, out_rate) - 440.0) < 5.0
    assert abs(frame_energy_db(y[200:-200]) - frame_energy_db(x[200:-200])) < 0.5


def test_resample_rejects_bad_rates() -> None:
    with pytest.raises(MediaError, match="in_rate"):
        resample(np.zeros(10, dtype=np.int16), 0, 8000)
    with pytest.raises(MediaError, match="out_rate"):
        Resampler(8000, -1)
    with pytest.raises(MediaError, match="quality"):
        Resampler(8000, 16000, "XQ")  # type: ignore[arg-type]


@pytest.mark.parametrize("quality", ["QQ", "LQ", "HQ"])
def test_streaming_resampler_matches_one_shot(quality: str) -> None:
    x = tone(300.0, 8000, 1.0)
    rs = Resampler(8000, 16000, quality)  # type: ignore[arg-type]
    parts = [rs.process(x[i : i + 160]) for i in range(0, x.size, 160)]
    parts.append(rs.flush())
    y = np.concatenate(parts)
    assert y.dtype == np.int16
    assert abs(y.size - 16000) <= 2
    ref = resample(x, 8000, 16000, quality)  # type: ignore[arg-type]
    n = min(y.size, ref.size)
    assert np.max(np.abs(y[100 : n - 100].astype(int) - ref[100 : n - 100])) <= 2
    # after flush the resampler serves a new stream from scratch
    again = np.concatenate([rs.process(x[:800]), rs.flush()])
    assert abs(again.size - 1600) <= 2


def test_passthrough_resampler() -> None:
    rs = Resampler(8000, 8000)
    x = tone(300.0, 8000, 0.1)
    assert rs.passthrough
    assert rs.process(x).tolist() == x.tolist()
    assert rs.flush().size == 0


# --- energy -------------------------------------------------------------------------------------


def test_frame_energy_db() -> None:
    assert frame_energy_db(np.zeros(160, dtype=np.int16)) == SILENCE_DB
    assert frame_energy_db(np.zeros(0, dtype=np.int16)) == SILENCE_DB
    square = np.where(np.arange(160) % 2 == 0, -32768, 32767).astype(np.int16)
    assert frame_energy_db(square) == pytest.approx(0.0, abs=0.01)
    assert frame_energy_db(tone(1000.0, 8000, 0.02, amp=1.0)) == pytest.approx(-3.01, abs=0.05)
    assert frame_energy_db(tone(1000.0, 8000, 0.02, amp=0.1)) == pytest.approx(-23.01, abs=0.05)


def test_energy_envelope() -> None:
    x = np.concatenate([np.zeros(160), np.full(160, 1000), np.full(100, 5)]).astype(np.int16)
    env = energy_envelope(x, 8000, win_ms=20)
    assert env.tolist() == [0.0, 1000.0]  # partial window dropped
    assert energy_envelope(x, 16000, win_ms=10).size == 2
    assert energy_envelope(np.zeros(10, dtype=np.int16), 8000).size == 0
    with pytest.raises(MediaError):
        energy_envelope(x, 8000, win_ms=0)


def test_envelope_correlation_same_audio_through_g711_is_high() -> None:
    played = speech_like(seed=7)
    for codec in (Codec.ULAW, Codec.ALAW):
        # what a recording would hold: 230 ms of silence first, 6 dB quieter, through G.711
        heard = codec.decode(codec.encode(np.concatenate([np.zeros(1840, dtype=np.int16), played // 2])))
        r = envelope_correlation(energy_envelope(played, 8000), energy_envelope(heard, 8000), 25)
        assert r >= 0.9, r
    # also survives a round trip through 16 kHz
    wide = resample(resample(played, 8000, 16000), 16000, 8000)
    r = envelope_correlation(energy_envelope(played, 8000), energy_envelope(wide, 8000), 5)
    assert r >= 0.95


def test_envelope_correlation_lag_direction() -> None:
    a = energy_envelope(speech_like(seed=3), 8000)
    b = np.concatenate([np.zeros(10), a])  # b starts 10 windows later
    assert envelope_correlation(a, b, 12) == pytest.approx(1.0)
    assert envelope_correlation(a, b, 5) < 0.9  # the right lag is out of range


def test_envelope_correlation_unrelated_audio_is_low() -> None:
    played = energy_envelope(speech_like(seed=7), 8000)
    for seed in (8, 9, 10, 11):
        other = Codec.ULAW.decode(Codec.ULAW.encode(speech_like(seed=seed)))
        r = envelope_correlation(played, energy_envelope(other, 8000), 25)
        assert r < 0.5, (seed, r)
    silence = energy_envelope(np.zeros(24000, dtype=np.int16), 8000)
    assert envelope_correlation(played, silence, 25) == 0.0


def test_envelope_correlation_rejects_too_short() -> None:
    with pytest.raises(MediaError, match="too short"):
        envelope_correlation(np.ones(1), np.ones(10), 3)
    with pytest.raises(MediaError):
        envelope_correlation(np.ones(10), np.ones(10), -1)


@pytest.mark.parametrize("quality", ["LQ", "HQ"])
def test_resampling_the_same_audio_gives_the_same_samples(quality: str) -> None:
    """soxr's own int16 output is dithered with random noise: the same audio resampled again differed by 1 LSB
    (4-8 distinct streams in 12 runs), which flipped borderline pocketsphinx decodes from run to run."""
    x = (np.sin(np.arange(8000) / 5.0) * 10000 + np.random.default_rng(0).normal(0, 300, 8000)).astype(np.int16)
    one_shot, streamed = set(), set()
    for offset in range(8):  # each run's buffers at another address
        buf = np.zeros(x.size + offset, dtype=np.int16)[offset:]
        buf[:] = x
        one_shot.add(resample(buf, 8000, 16000, quality=quality).tobytes())  # type: ignore[arg-type]
        r = Resampler(8000, 16000, quality=quality)  # type: ignore[arg-type]
        streamed.add(np.concatenate([*(r.process(buf[i:i + 160]) for i in range(0, buf.size, 160)),
                                     r.flush()]).tobytes())
    assert len(one_shot) == 1 and len(streamed) == 1


def test_a_synthesisers_inaudible_lead_in_is_cut_to_10_ms() -> None:
    rng = np.random.default_rng(3)
    lead = (rng.standard_normal(480) * 8).astype(np.int16)  # 60 ms of hiss near -72 dBFS
    t = np.arange(8000) / 8000
    tone = (8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    clip = np.concatenate([lead, tone])
    out = trim_leading_silence(clip)
    assert out.size == clip.size - 400  # 50 ms gone, 10 ms of the lead kept before the first sound
    assert np.array_equal(out[80:], tone)  # the sound itself untouched
    assert np.array_equal(trim_leading_silence(out), out)  # a trimmed clip stays as it is
    assert np.array_equal(trim_leading_silence(tone), tone)  # a clip that starts with sound is not cut
    quiet = lead.copy()
    assert np.array_equal(trim_leading_silence(quiet), quiet)  # nothing audible: a pause, kept whole
    assert trim_leading_silence(np.zeros(0, dtype=np.int16)).size == 0
