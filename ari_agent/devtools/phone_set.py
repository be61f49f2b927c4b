"""The labelled phone-audio test set of ``ari-agent bench stt``: caller lines rendered as they reach the agent.

Why generated. A recogniser is judged on phrasings and voices the project never tuned on, through the
phone line, and the set must be rebuilt byte for byte on any machine with the project's packages
(no recordings to download). The text lives in ``data/phone_set.yaml`` (labels included, written for
this set, not the intent map's examples); this module turns each line into audio:

1. a caller voice (flite rms/slt/awb/kal16, espeak-ng, or the Piper voice as a caller); each line is
   spoken by ``renders_per_line`` different voices, chosen deterministically;
2. levelled to about -20 dBFS RMS (synthesisers differ by 10 dB; a line is levelled by the network);
3. quiet lead (300 ms) and trail (500 ms), as the endpointer hands a turn over;
4. a line condition, by position in the plan: ``clean`` (-60 dBFS hiss), ``noise`` (-40 dBFS white
   line noise), ``noise+loss`` (the same plus 1, 2 or 3 % of 20 ms packets lost, zero-filled as a
   jitter buffer without concealment plays them); the noise and the lost packets come from a seed
   derived from the utterance, so a rerun gives the same samples;
5. G.711 µ-law encode and decode (the packets are dropped between the two).

Rendered audio is cached by content hash (text, voice, condition, seed, generator version) as 8 kHz
WAV files in ``cache_dir`` (default ``$TMPDIR/ari-agent-phone-set``): a rerun synthesises nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import yaml

from ari_agent.devtools.voices import VoiceError, synthesize_caller
from ari_agent.media.g711 import ulaw_decode, ulaw_encode
from ari_agent.media.pcm import SAMPLES_PER_FRAME, Pcm, wav_to_line_rate

DATA_FILE: Final = Path(__file__).resolve().parent / "data" / "phone_set.yaml"
DEFAULT_CACHE: Final = Path(tempfile.gettempdir()) / "ari-agent-phone-set"
GENERATOR_VERSION: Final = 1  # bump when the rendering below changes: old cache entries are then unused
LEAD_MS: Final = 300
TRAIL_MS: Final = 500
TARGET_RMS_DBFS: Final = -20.0
CLEAN_NOISE_DBFS: Final = -60.0
LINE_NOISE_DBFS: Final = -40.0

Kind = Literal["open", "out_of_scope", "digits", "postcode", "yes_no", "date", "time"]
KINDS: Final[tuple[Kind, ...]] = ("open", "out_of_scope", "digits", "postcode", "yes_no", "date", "time")
Condition = Literal["clean", "noise", "noise+loss"]


class PhoneSetError(VoiceError):
    """The data file is malformed or a voice cannot be rendered here."""


@dataclass(frozen=True)
class PhoneItem:
    """One labelled caller line. ``label``: intent name, None (out of scope), digit string, postcode,
    yes/no/unclear, ISO date or HH:MM. ``slot``: the demo map slot it answers (dates: ``new_date`` or
    ``date_of_birth``)."""

    kind: Kind
    text: str
    label: str | None
    slot: str | None = None


@dataclass(frozen=True)
class PhoneUtterance:
    item: PhoneItem
    voice: str
    condition: Condition
    loss_rate: float  # fraction of 20 ms packets lost (0 unless condition has loss)
    seed: int

    @property
    def key(self) -> str:
        """Content hash: what the audio depends on."""
        raw = f"{GENERATOR_VERSION}\n{self.voice}\n{self.item.text}\n{self.condition}\n{self.loss_rate}\n{self.seed}"
        return hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class PhoneSet:
    today: date
    voices: tuple[str, ...]
    renders_per_line: int
    items: tuple[PhoneItem, ...]

    def utterances(self, voices: Sequence[str] | None = None, kinds: Iterable[str] | None = None,
                   limit: int | None = None) -> list[PhoneUtterance]:
        """The rendering plan: each line in ``renders_per_line`` distinct voices; ``limit`` utterances
        per kind at most (taken spread over the kind's lines, not its first few)."""
        return plan(self, voices or self.voices, kinds, limit)


def load_phone_set(path: Path = DATA_FILE) -> PhoneSet:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PhoneSetError(f"cannot read the phone test set {path}: {exc}") from None
    if not isinstance(data, dict):
        raise PhoneSetError(f"{path}: expected a mapping at the top")
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PhoneSetError(f"{path}: malformed ({type(exc).__name__}: {exc})") from None


def _parse(data: dict[str, Any]) -> PhoneSet:
    """Every kind is optional (an admin's own set may hold only yes/no answers); the header is not."""
    items: list[PhoneItem] = []
    for intent, lines in (data.get("open") or {}).items():
        items.extend(PhoneItem("open", str(t), str(intent)) for t in lines)
    items.extend(PhoneItem("out_of_scope", str(t), None) for t in data.get("out_of_scope") or ())
    items.extend(PhoneItem("digits", str(t), str(v), "customer_number") for t, v in data.get("digits") or ())
    items.extend(PhoneItem("postcode", str(t), str(v), "postcode") for t, v in data.get("postcode") or ())
    for verdict, lines in (data.get("yes_no") or {}).items():
        if verdict not in ("yes", "no", "unclear"):
            raise ValueError(f"yes_no label {verdict!r} (yes, no or unclear)")
        items.extend(PhoneItem("yes_no", str(t), str(verdict)) for t in lines)
    items.extend(PhoneItem("date", str(t), str(v), "new_date") for t, v in data.get("date") or ())
    items.extend(PhoneItem("date", str(t), str(v), "date_of_birth") for t, v in data.get("date_of_birth") or ())
    items.extend(PhoneItem("time", str(t), str(v), "new_time") for t, v in data.get("time") or ())
    if not items:
        raise ValueError("no utterances in it")
    return PhoneSet(today=date.fromisoformat(str(data["today"])), voices=tuple(data["voices"]),
                    renders_per_line=int(data.get("renders_per_line", 2)), items=tuple(items))


def _condition(j: int) -> tuple[Condition, float]:
    """By position: half clean, a quarter with line noise, a quarter with noise and 1-3 % loss."""
    slot = j % 4
    if slot in (0, 1):
        return "clean", 0.0
    if slot == 2:
        return "noise", 0.0
    return "noise+loss", (1, 2, 3)[(j // 4) % 3] / 100.0


def plan(phone_set: PhoneSet, voices: Sequence[str], kinds: Iterable[str] | None = None,
         limit: int | None = None) -> list[PhoneUtterance]:
    wanted = set(kinds) if kinds is not None else set(KINDS)
    v = len(voices)
    if v == 0:
        raise PhoneSetError("no caller voices")
    renders = min(phone_set.renders_per_line, v)
    out: list[PhoneUtterance] = []
    j = 0
    for i, item in enumerate(phone_set.items):
        step = 1 + i % (v - 1) if v > 1 else 1  # the second voice differs from the first
        for r in range(renders):
            condition, loss = _condition(j)
            seed = int(hashlib.sha256(f"{item.text}\n{r}".encode()).hexdigest()[:8], 16)
            if item.kind in wanted:
                out.append(PhoneUtterance(item, voices[(i + r * step) % v], condition, loss, seed))
            j += 1
    if limit is None:
        return out
    picked: list[PhoneUtterance] = []
    for kind in KINDS:
        of_kind = [u for u in out if u.item.kind == kind]
        if not of_kind:
            continue
        n = min(limit, len(of_kind))
        picked.extend(of_kind[(k * len(of_kind)) // n] for k in range(n))
    return picked


# ------------------------------------------------------------------ rendering


def level(pcm: Pcm, target_dbfs: float = TARGET_RMS_DBFS) -> Pcm:
    """Scale to ``target_dbfs`` RMS over the samples above -50 dBFS (the speech), clipped to int16."""
    x = pcm.astype(np.float64)
    active = x[np.abs(x) > 32768.0 * 10 ** (-50 / 20)]
    if active.size == 0:
        return pcm
    rms = float(np.sqrt(np.mean(active**2)))
    gain = 32768.0 * 10 ** (target_dbfs / 20) / rms
    out: Pcm = np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)
    return out


def line(speech: Pcm, condition: Condition, loss_rate: float, seed: int, snr_db: float | None = None) -> Pcm:
    """Speech at 8 kHz -> what the agent receives: lead/trail, line noise, G.711 with lost packets.
    ``snr_db``: white noise that far below the speech level (-20 dBFS RMS), instead of the condition's."""
    rng = np.random.default_rng(seed)
    audio = np.concatenate([np.zeros(LEAD_MS * 8), level(speech).astype(np.float64), np.zeros(TRAIL_MS * 8)])
    noise_db = CLEAN_NOISE_DBFS if condition == "clean" else LINE_NOISE_DBFS
    if snr_db is not None:
        noise_db = TARGET_RMS_DBFS - snr_db
    audio += rng.normal(0.0, 32768.0 * 10 ** (noise_db / 20.0), audio.size)
    encoded = bytearray(ulaw_encode(np.clip(np.rint(audio), -32768, 32767).astype(np.int16)))
    if loss_rate > 0:
        packets = len(encoded) // SAMPLES_PER_FRAME
        lost = rng.random(packets) < loss_rate
        for p in np.flatnonzero(lost):
            encoded[p * SAMPLES_PER_FRAME:(p + 1) * SAMPLES_PER_FRAME] = b"\xff" * SAMPLES_PER_FRAME  # µ-law 0
    decoded: Pcm = ulaw_decode(bytes(encoded))
    return decoded


def lost_packets(pcm: Pcm) -> int:
    """20 ms packets that are exact digital silence (what a lost, zero-filled packet decodes to)."""
    frames = pcm[: pcm.size - pcm.size % SAMPLES_PER_FRAME].reshape(-1, SAMPLES_PER_FRAME)
    return int(np.sum(np.all(frames == 0, axis=1)))


class Renderer:
    """Renders utterances to 8 kHz line audio, cached by content hash. The Piper caller voice is loaded
    on first use (``piper_model``: the prepared .onnx; ``piper:NAME`` voices need it)."""

    def __init__(self, cache_dir: Path = DEFAULT_CACHE, piper_model: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.piper_model = piper_model
        self._piper: Callable[[str], Pcm] | None = None
        self.rendered = 0  # synthesised in this process (cache misses)

    def path(self, utt: PhoneUtterance) -> Path:
        return self.cache_dir / f"{utt.key}.wav"

    def render(self, utt: PhoneUtterance) -> Pcm:
        out = self.path(utt)
        if out.exists():
            try:
                return wav_to_line_rate(out.read_bytes())
            except Exception:  # a torn cache file: render it again
                out.unlink(missing_ok=True)
        pcm = line(self.speech(utt.item.text, utt.voice), utt.condition, utt.loss_rate, utt.seed)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".{os.getpid()}.tmp")  # several benches may share the cache
        tmp.write_bytes(wav_bytes(pcm))
        tmp.replace(out)
        self.rendered += 1
        return pcm

    def speech(self, text: str, voice: str, rate: float | None = None) -> Pcm:
        engine = voice.partition(":")[0]
        if engine == "piper":
            if rate not in (None, 1.0):
                raise PhoneSetError(f"speaking rate {rate:g} is not supported for the piper caller voice "
                                    "(flite: and espeak: voices take it)")
            return self._piper_voice()(text)
        path = synthesize_caller(text, voice, self.cache_dir / "voices", rate)
        return wav_to_line_rate(path.read_bytes())

    def _piper_voice(self) -> Callable[[str], Pcm]:
        if self._piper is None:
            if self.piper_model is None or not self.piper_model.is_file():
                raise PhoneSetError(f"the piper caller voice needs the prepared Piper model ({self.piper_model} "
                                    "is missing: run `ari-agent models prepare`, or leave piper:joe out of --voices)")
            from ari_agent.speech.piper_tts import PiperTts

            self._piper = PiperTts(self.piper_model, threads=2).synthesize
        return self._piper


def wav_bytes(pcm: Pcm, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return buf.getvalue()
