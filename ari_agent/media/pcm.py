"""PCM helpers: signed-linear byte order, the telephony codecs, resampling and energy measures.

All sample arrays here are 1-D ``numpy.int16`` (mono). Functions that take samples accept
int16 arrays (other integer dtypes are clipped into int16); float arrays are refused with
MediaError rather than guessed at — convert them with :func:`float_to_pcm16`.
"""

from __future__ import annotations

import enum
import io
import math
import wave
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import soxr

from ari_agent.errors import MediaError
from ari_agent.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

Pcm = npt.NDArray[np.int16]
"""The one PCM array type: 1-D signed 16-bit mono samples (8 kHz on the line unless a rate is given)."""
Float64Array = npt.NDArray[np.float64]
ResampleQuality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]

SAMPLE_RATE: Final = 8000
FRAME_MS: Final = 20
SAMPLES_PER_FRAME: Final = SAMPLE_RATE * FRAME_MS // 1000  # 160
SILENCE_DB: Final = -100.0
"""Floor of :func:`frame_energy_db`: what digital silence (or an empty frame) measures."""
_FULL_SCALE: Final = 32768.0


# --- sample arrays ------------------------------------------------------------------------------


def as_pcm16(samples: npt.ArrayLike, what: str = "PCM") -> Pcm:
    """Return ``samples`` as a 1-D int16 array (no copy when it already is one).

    Other integer dtypes are clipped to the int16 range; floats and other dimensions raise MediaError.
    """
    arr = np.asarray(samples)
    if arr.ndim != 1:
        raise MediaError(f"{what}: expected a 1-D array of samples, got {arr.ndim} dimensions")
    if arr.dtype == np.int16:
        same: Pcm = arr
        return same
    if arr.size == 0:
        return np.zeros(0, dtype=np.int16)
    if np.issubdtype(arr.dtype, np.integer):
        clipped: Pcm = np.clip(arr, -32768, 32767).astype(np.int16)
        return clipped
    raise MediaError(f"{what}: expected integer samples, got dtype {arr.dtype} (use float_to_pcm16)")


def wav_to_line_rate(data: bytes) -> Pcm:
    """A 16-bit PCM WAV file's bytes -> its first channel as int16 at the 8 kHz line rate (MediaError
    naming what is wrong otherwise). Parses bytes only; reading the file is the caller's business."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise MediaError(f"not a readable WAV file ({str(exc) or 'no RIFF header'})") from None
    if width != 2:
        raise MediaError(f"{8 * width}-bit WAV; 16-bit PCM expected")
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels)[:, 0].copy()
    return resample(pcm, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else pcm


def float_to_pcm16(samples: npt.ArrayLike) -> Pcm:
    """Float samples in [-1.0, 1.0] -> int16 (rounded, clipped)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 1:
        raise MediaError(f"float_to_pcm16: expected a 1-D array, got {arr.ndim} dimensions")
    if not np.all(np.isfinite(arr)):
        raise MediaError("float_to_pcm16: samples contain NaN or infinity")
    return np.clip(np.rint(arr * _FULL_SCALE), -32768, 32767).astype(np.int16)


def pcm16_to_float(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """int16 samples -> float32 in [-1.0, 1.0)."""
    return as_pcm16(samples).astype(np.float32) / np.float32(_FULL_SCALE)


def slin_be_to_array(data: bytes | bytearray | memoryview) -> Pcm:
    """Big-endian signed 16-bit PCM (Asterisk ``slin`` over RTP) -> new native int16 array."""
    if len(data) % 2:
        raise MediaError(f"slin payload has an odd length ({len(data)} bytes)")
    return np.frombuffer(data, dtype=">i2").astype(np.int16)


def array_to_slin_be(arr: npt.ArrayLike) -> bytes:
    """int16 samples -> big-endian signed 16-bit PCM bytes."""
    return as_pcm16(arr, "slin").astype(">i2").tobytes()


def slin_le_to_array(data: bytes | bytearray | memoryview) -> Pcm:
    """Little-endian signed 16-bit PCM (WAV, Asterisk WebSocket media) -> new native int16 array."""
    if len(data) % 2:
        raise MediaError(f"little-endian PCM has an odd length ({len(data)} bytes)")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def array_to_slin_le(arr: npt.ArrayLike) -> bytes:
    """int16 samples -> little-endian signed 16-bit PCM bytes."""
    return as_pcm16(arr, "slin").astype("<i2").tobytes()


# --- codecs -------------------------------------------------------------------------------------


class Codec(enum.Enum):
    """The 8 kHz formats Asterisk's externalMedia speaks over RTP.

    ``Codec("ulaw")`` and :meth:`from_name` take the format name (``.value`` gives it back);
    :meth:`from_payload_type` takes the RTP payload type. Not a ``str`` subclass on purpose:
    ``str.encode`` would clash with :meth:`encode`.
    """

    ULAW = "ulaw"
    ALAW = "alaw"
    SLIN = "slin"

    @property
    def payload_type(self) -> int:
        """Static RTP payload type: PCMU 0, PCMA 8; Asterisk sends slin 8 kHz as 10."""
        return _PAYLOAD_TYPES[self]

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self is Codec.SLIN else 1

    @property
    def samples_per_20ms(self) -> int:
        return SAMPLES_PER_FRAME

    @property
    def bytes_per_20ms(self) -> int:
        return SAMPLES_PER_FRAME * self.bytes_per_sample

    def accepts_payload_type(self, pt: int) -> bool:
        """True for this codec's payload type (slin also accepts 11, which Asterisk takes too)."""
        return pt == self.payload_type or (self is Codec.SLIN and pt == 11)

    def decode(self, payload: bytes | bytearray | memoryview) -> Pcm:
        """RTP payload -> int16 samples."""
        if self is Codec.ULAW:
            return ulaw_decode(payload)
        if self is Codec.ALAW:
            return alaw_decode(payload)
        return slin_be_to_array(payload)

    def encode(self, pcm: npt.ArrayLike) -> bytes:
        """int16 samples -> RTP payload."""
        samples = as_pcm16(pcm, f"{self.value} encoder")
        if self is Codec.ULAW:
            return ulaw_encode(samples)
        if self is Codec.ALAW:
            return alaw_encode(samples)
        return array_to_slin_be(samples)

    @classmethod
    def from_name(cls, name: str) -> Codec:
        """``"ulaw"``/``"alaw"``/``"slin"`` (case-insensitive) -> Codec; MediaError otherwise."""
        try:
            return cls(name.lower())
        except ValueError:
            raise MediaError(f"unknown codec {name!r}: expected one of ulaw, alaw, slin") from None

    @classmethod
    def from_payload_type(cls, pt: int) -> Codec:
        for codec in cls:
            if codec.accepts_payload_type(pt):
                return codec
        raise MediaError(f"RTP payload type {pt} is not ulaw (0), alaw (8) or slin (10/11)")


_PAYLOAD_TYPES: Final = {Codec.ULAW: 0, Codec.ALAW: 8, Codec.SLIN: 10}


# --- resampling ---------------------------------------------------------------------------------


def _check_rate(rate: int, what: str) -> None:
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise MediaError(f"{what} must be a positive integer sample rate, got {rate!r}")


def resample(arr: npt.ArrayLike, in_rate: int, out_rate: int, quality: ResampleQuality = "HQ") -> Pcm:
    """One-shot resampling of a whole int16 signal (no delay: output is aligned with input)."""
    _check_rate(in_rate, "in_rate")
    _check_rate(out_rate, "out_rate")
    samples = as_pcm16(arr, "resample")
    if in_rate == out_rate:
        return samples.copy()
    if samples.size == 0:
        return np.zeros(0, dtype=np.int16)
    return _quantise(soxr.resample(samples.astype(np.float32), in_rate, out_rate, quality=quality))


def _quantise(wide: npt.NDArray[np.float32]) -> Pcm:
    """soxr's output back to int16, rounded to nearest. Not soxr's own int16 output: that is dithered with
    random noise, so the same audio resampled twice differed by 1 LSB here and there (4-8 distinct outputs
    of one stream over a dozen runs), enough to flip a borderline pocketsphinx decode and to make a prompt
    cache's copy differ from the audio it was made from."""
    out: Pcm = np.clip(np.rint(wide), -32768, 32767).astype(np.int16)
    return out


class Resampler:
    """Streaming int16 resampler (wraps ``soxr.ResampleStream``) for chunks of one continuous stream.

    soxr holds audio back while streaming (8k→16k ≈ 33 ms at "LQ", ≈ 62 ms at "HQ"; "QQ" ≈ 0):
    pick the quality per direction with latency in mind. :meth:`flush` returns the held-back tail
    and makes the resampler ready for a new, unrelated stream.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: ResampleQuality = "HQ") -> None:
        _check_rate(in_rate, "in_rate")
        _check_rate(out_rate, "out_rate")
        if quality not in ("QQ", "LQ", "MQ", "HQ", "VHQ"):
            raise MediaError(f"unknown resampler quality {quality!r}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality: ResampleQuality = quality
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)

    @property
    def passthrough(self) -> bool:
        return self._stream is None

    def process(self, chunk: npt.ArrayLike) -> Pcm:
        """Resample the next chunk; may return fewer samples than the rate ratio implies (delay)."""
        samples = as_pcm16(chunk, "Resampler.process")
        if self._stream is None:
            return samples.copy()
        return _quantise(self._stream.resample_chunk(samples.astype(np.float32)))

    def flush(self) -> Pcm:
        """Return the remaining held-back samples and reset for a new stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        out = _quantise(self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._stream.clear()
        return out

    def reset(self) -> None:
        """Drop whatever is held back and start a new stream."""
        if self._stream is not None:
            self._stream.clear()


# --- energy -------------------------------------------------------------------------------------


def frame_energy_db(arr: npt.ArrayLike) -> float:
    """RMS level of int16 samples in dBFS (full-scale square wave = 0 dB, sine ≈ -3 dB).

    Silence and empty input give :data:`SILENCE_DB` (-100 dB) rather than -inf.
    """
    samples = as_pcm16(arr, "frame_energy_db")
    if samples.size == 0:
        return SILENCE_DB
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    if rms <= 0.0:
        return SILENCE_DB
    return max(SILENCE_DB, 20.0 * math.log10(rms / _FULL_SCALE))


def energy_envelope(pcm: npt.ArrayLike, rate: int, win_ms: int = 20) -> Float64Array:
    """RMS of each consecutive, non-overlapping ``win_ms`` window (a trailing partial window is dropped)."""
    _check_rate(rate, "rate")
    if win_ms <= 0:
        raise MediaError(f"win_ms must be positive, got {win_ms}")
    win = rate * win_ms // 1000
    if win < 1:
        raise MediaError(f"window of {win_ms} ms at {rate} Hz holds no sample")
    samples = as_pcm16(pcm, "energy_envelope").astype(np.float64)
    n = samples.size // win
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    frames = samples[: n * win].reshape(n, win)
    env: Float64Array = np.sqrt(np.mean(np.square(frames), axis=1))
    return env


def envelope_correlation(
    a: npt.ArrayLike, b: npt.ArrayLike, max_lag_windows: int, min_overlap_windows: int | None = None
) -> float:
    """Best Pearson correlation of two energy envelopes over lags ``-max_lag..+max_lag`` windows.

    A positive lag means ``b`` starts later than ``a`` (``a[i]`` is compared with ``b[i + lag]``).
    Only lags whose overlap holds at least ``min_overlap_windows`` windows count (default: half the
    shorter envelope, at least 2), so a few lucky windows at the edges cannot score. Lags where either
    side is constant score 0. Returns a value in [-1, 1].
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise MediaError("envelope_correlation wants two 1-D envelopes")
    if max_lag_windows < 0:
        raise MediaError(f"max_lag_windows must be >= 0, got {max_lag_windows}")
    shorter = min(x.size, y.size)
    if shorter < 2:
        raise MediaError(f"envelopes too short to correlate ({x.size} and {y.size} windows)")
    min_overlap = max(2, shorter // 2) if min_overlap_windows is None else max(2, min_overlap_windows)
    best = -1.0
    scored = False
    for lag in range(-max_lag_windows, max_lag_windows + 1):
        if lag >= 0:
            xs, ys = x[: y.size - lag], y[lag:]
        else:
            xs, ys = x[-lag:], y[: x.size + lag]
        n = min(xs.size, ys.size)
        if n < min_overlap:
            continue
        xs, ys = xs[:n] - xs[:n].mean(), ys[:n] - ys[:n].mean()
        denom = math.sqrt(float(np.dot(xs, xs)) * float(np.dot(ys, ys)))
        r = float(np.dot(xs, ys)) / denom if denom > 0.0 else 0.0
        scored = True
        best = max(best, r)
    return best if scored else 0.0


def trim_leading_silence(pcm: npt.ArrayLike, rate: int = SAMPLE_RATE, *, floor_dbfs: float = -55.0,
                         keep_ms: int = 10, win_ms: int = 5) -> Pcm:
    """``pcm`` without the inaudible lead-in a synthesiser puts before the first sound (Piper: 40-60 ms
    below -55 dBFS before most sentences), keeping ``keep_ms`` of it: a reply then reaches the caller's
    ear that much sooner. Cut at whole ``win_ms`` windows; a clip with nothing above ``floor_dbfs`` (a
    deliberate pause) comes back whole."""
    samples = as_pcm16(pcm, "trim_leading_silence")
    env = energy_envelope(samples, rate, win_ms)
    loud = np.flatnonzero(env >= _FULL_SCALE * 10.0 ** (floor_dbfs / 20.0))
    if loud.size == 0:
        return samples
    cut = max(0, int(loud[0]) * (rate * win_ms // 1000) - rate * keep_ms // 1000)
    return samples[cut:] if cut else samples
