"""A Piper neural voice, run on onnxruntime directly.

Piper voices are VITS models exported to ONNX: phoneme ids in, 22.05 kHz float audio out. The
``piper-tts`` package that normally runs them is GPL-3.0, so it is not used: this module does its two
jobs itself, with the same conventions the voices were trained with.

1. Phonemes come from espeak-ng run as a subprocess (``espeak-ng -q --ipa -v en-us``; GPL-3 code stays
   out of our process, as for :class:`~ari_agent.speech.tts.EspeakNg`). espeak prints one line per
   clause and drops the punctuation; the clause punctuation (``, ; : . ! ?``) is put back from the
   text, as the voices saw it in training. The phoneme string is NFD-normalised and taken codepoint by
   codepoint.
2. Ids follow the voice's ``phoneme_id_map``: ``^`` (BOS), then every phoneme's id followed by the pad
   ``_``, then ``$`` (EOS). Symbols the voice does not know are dropped.

The ONNX session is created once per process per (model, threads) and shared (onnxruntime sessions are
safe to run from several threads); it is warmed up with one tiny inference so the first real sentence
does not pay for the allocator's first run. Output gets a fixed gain, is clipped, converted to int16
and resampled to the 8 kHz line rate with soxr.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
import shutil
import subprocess
import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ari_agent.media.pcm import Pcm, float_to_pcm16, resample
from ari_agent.speech.clauses import MIN_CLAUSE_WORDS, split_clauses
from ari_agent.speech.tts import LINE_RATE, CancelToken, TtsError, split_sentences

__all__ = ["MIN_CLAUSE_WORDS", "EspeakPhonemizer", "PiperTts", "PiperVoice", "clause_terminators", "join_clauses",
           "phonemes_to_ids", "split_clauses"]

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"
# Clause punctuation as the voices saw it in training (espeak clause terminators).
CLAUSE_PUNCTUATION = ",;:.!?"
_CLAUSE_END = re.compile(r"[,;:.!?]+(?=\s|$)")
_LANGUAGE_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")  # espeak's "(en)" language-switch marks
SENTENCE_GAP_S = 0.2  # silence between the sentences of one multi-sentence text
# Fixed make-up gain (+3 dB, then clipped): the joe voice comes out ~4 dB below espeak-ng (RMS -25 vs
# -21 dBFS, peaks about -4 dBFS). Fixed, not per-sentence normalisation, so sentences keep one loudness.
OUTPUT_GAIN = 1.4
FloatAudio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class PiperVoice:
    """What a voice's ``.onnx.json`` says about how to drive it."""

    sample_rate: int
    espeak_voice: str
    phoneme_id_map: Mapping[str, tuple[int, ...]]
    noise_scale: float
    length_scale: float
    noise_w: float

    @classmethod
    def load(cls, path: Path) -> PiperVoice:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TtsError(f"Piper voice config {path} not found (run `ari-agent models prepare`)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TtsError(f"Piper voice config {path} is unreadable: {exc}") from None
        try:
            if data.get("phoneme_type", "espeak") != "espeak":
                raise TtsError(f"Piper voice {path}: phoneme_type {data['phoneme_type']!r} is not supported "
                               "(only espeak voices are)")
            inference = data.get("inference", {})
            id_map = {str(k): tuple(int(i) for i in v) for k, v in data["phoneme_id_map"].items()}
            for sym in (BOS, EOS, PAD):
                if sym not in id_map:
                    raise TtsError(f"Piper voice {path}: phoneme_id_map lacks {sym!r}")
            return cls(
                sample_rate=int(data["audio"]["sample_rate"]),
                espeak_voice=str(data.get("espeak", {}).get("voice", "en-us")),
                phoneme_id_map=id_map,
                noise_scale=float(inference.get("noise_scale", 0.667)),
                length_scale=float(inference.get("length_scale", 1.0)),
                noise_w=float(inference.get("noise_w", 0.8)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TtsError(f"Piper voice config {path} is not a Piper voice config: {exc!r}") from None


def clause_terminators(text: str) -> list[str]:
    """The clause punctuation of ``text`` in order (one symbol per run: "?!" -> "?", "..." -> ".")."""
    return [m.group(0)[0] for m in _CLAUSE_END.finditer(text)]


def join_clauses(clauses: Sequence[str], terminators: Sequence[str]) -> str:
    """espeak's per-clause phonemes with the text's clause punctuation put back ("a, b." style).

    When espeak split the text differently from its punctuation (abbreviations, numbers), the clauses are
    joined by spaces and only the final punctuation is kept."""
    clauses = [c for c in (c.strip() for c in clauses) if c]
    if not clauses:
        return ""
    if len(terminators) in (len(clauses), len(clauses) - 1):
        parts = [c + (terminators[i] if i < len(terminators) else "") for i, c in enumerate(clauses)]
        return " ".join(parts)
    final = terminators[-1] if terminators else ""
    return " ".join(clauses) + final


def phonemes_to_ids(phonemes: str, id_map: Mapping[str, Sequence[int]]) -> list[int]:
    """``^ _ p1 _ p2 _ … pn _ $`` as the voice's ids (NFD codepoints; unknown symbols dropped)."""
    ids: list[int] = [*id_map[BOS], *id_map[PAD]]
    for ch in unicodedata.normalize("NFD", phonemes):
        mapped = id_map.get(ch)
        if mapped is None:
            continue
        ids.extend(mapped)
        ids.extend(id_map[PAD])
    ids.extend(id_map[EOS])
    return ids


class EspeakPhonemizer:
    """Text -> IPA phonemes with clause punctuation, through the espeak-ng command (a subprocess)."""

    def __init__(self, voice: str = "en-us", binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise TtsError(f"{binary} is not installed (apt-get install espeak-ng): the Piper voice needs its "
                           "phonemes")
        self.binary = path
        self.voice = voice

    def phonemize(self, text: str) -> str:
        try:
            res = subprocess.run([self.binary, "-q", "--ipa", "-v", self.voice], input=text.encode("utf-8"),
                                 capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TtsError(f"espeak-ng phonemizer failed: {exc}") from None
        if res.returncode != 0:
            raise TtsError(f"espeak-ng phonemizer failed (exit {res.returncode}): "
                           f"{res.stderr.decode(errors='replace')[:200]}")
        lines = _LANGUAGE_FLAG.sub("", res.stdout.decode("utf-8", errors="replace")).splitlines()
        return join_clauses(lines, clause_terminators(text))


_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _onnxruntime() -> Any:
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise TtsError("onnxruntime is not installed (pip install onnxruntime): the Piper voice needs it") from None


def inference_session(model_path: Path, threads: int) -> Any:
    """The process's one onnxruntime session for this model and thread count (created on first use)."""
    key = (str(model_path.resolve()), threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is not None:
            return session
        if not model_path.is_file():
            raise TtsError(f"Piper voice model {model_path} not found (run `ari-agent models prepare`)")
        ort = _onnxruntime()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (untyped) errors for a bad file
            raise TtsError(f"Piper voice model {model_path} could not be loaded (corrupt or not an ONNX model?): "
                           f"{str(exc)[:200]}") from None
        names = {i.name for i in session.get_inputs()}
        if not {"input", "input_lengths", "scales"} <= names:
            raise TtsError(f"Piper voice model {model_path} has inputs {sorted(names)}; a Piper VITS voice takes "
                           "input, input_lengths and scales")
        _SESSIONS[key] = session
        return session


class PiperTts:
    """:class:`~ari_agent.speech.tts.TextToSpeech` with a Piper voice (int16 at the 8 kHz line rate).

    ``streams_clauses``: a sentence takes a few hundred milliseconds to render here, so calls play a text
    clause by clause (:meth:`~ari_agent.speech.tts.PromptCache.stream`) and the first audio goes out after
    the first clause only."""

    streams_clauses = True

    def __init__(self, model_path: Path, config_path: Path | None = None, *, threads: int = 2,
                 length_scale: float | None = None, noise_scale: float | None = None, noise_w: float | None = None,
                 espeak_binary: str = "espeak-ng", warm_up: bool = True) -> None:
        self.model_path = Path(model_path)
        self.config_path = Path(config_path) if config_path is not None else Path(f"{self.model_path}.json")
        if not self.model_path.is_file():
            raise TtsError(f"Piper voice model {self.model_path} not found (run `ari-agent models prepare`)")
        self.voice = PiperVoice.load(self.config_path)
        self.phonemizer = EspeakPhonemizer(self.voice.espeak_voice, espeak_binary)
        self.scales = np.array([
            self.voice.noise_scale if noise_scale is None else noise_scale,
            self.voice.length_scale if length_scale is None else length_scale,
            self.voice.noise_w if noise_w is None else noise_w,
        ], dtype=np.float32)
        self.session = inference_session(self.model_path, threads)
        size = self.model_path.stat().st_size
        ns, ls, nw = (round(float(x), 3) for x in self.scales)
        self.cache_key = f"piper:{self.model_path.name}:{size}:{ns}:{ls}:{nw}:{LINE_RATE}"
        if warm_up:
            self.infer(self.ids("a."))

    def ids(self, sentence: str) -> list[int]:
        return phonemes_to_ids(self.phonemizer.phonemize(sentence), self.voice.phoneme_id_map)

    def infer(self, ids: Sequence[int], cancel: CancelToken | None = None) -> FloatAudio:
        """Phoneme ids -> float audio at the voice's rate (blocking; releases the GIL while it runs).
        ``cancel`` set while it runs stops it (onnxruntime's terminate flag) with a TtsError."""
        feeds = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": self.scales,
        }
        run_options = None
        if cancel is not None:
            run_options = _onnxruntime().RunOptions()
            cancel.on_cancel(functools.partial(setattr, run_options, "terminate", True))
        try:
            out = self.session.run(None, feeds, run_options)[0]
        except Exception as exc:  # onnxruntime's own error types
            if cancel is not None and cancel.cancelled:
                raise TtsError("Piper synthesis cancelled") from None
            raise TtsError(f"Piper inference failed: {str(exc)[:200]}") from None
        audio: FloatAudio = np.asarray(out, dtype=np.float32).reshape(-1)
        return audio

    def synthesize_native(self, text: str, cancel: CancelToken | None = None) -> FloatAudio:
        """``text`` at the voice's own rate, float in [-1, 1]: sentence by sentence, a short gap between."""
        gap = np.zeros(int(SENTENCE_GAP_S * self.voice.sample_rate), dtype=np.float32)
        parts: list[FloatAudio] = []
        for sentence in split_sentences(text):
            if cancel is not None and cancel.cancelled:
                raise TtsError("Piper synthesis cancelled")
            ids = self.ids(sentence)
            if len(ids) <= 3:  # nothing speakable (only BOS, pad, EOS)
                continue
            if parts:
                parts.append(gap)
            parts.append(self.infer(ids, cancel))
        if not parts:
            return np.zeros(0, dtype=np.float32)
        audio: FloatAudio = np.clip(np.concatenate(parts) * np.float32(OUTPUT_GAIN), -1.0, 1.0)
        return audio

    def synthesize_clauses(self, text: str) -> Iterator[Pcm]:
        """``text`` clause by clause at the line rate, for playing the first clause while the next renders.

        The call path streams through :meth:`~ari_agent.speech.tts.PromptCache.stream` (the same cuts, any
        engine); this is the blocking form. Cutting at commas costs a little prosody across the cut."""
        for clause in split_clauses(text):
            pcm = self.synthesize(clause)
            if pcm.size:
                yield pcm

    def synthesize(self, text: str) -> Pcm:
        return self._line_rate(self.synthesize_native(text))

    def synthesize_cancellable(self, text: str, cancel: CancelToken) -> Pcm:
        """:meth:`synthesize` that stops midway, raising TtsError, once ``cancel`` is set (a barge-in closed
        the stream it renders for: the core is free at once for what the caller is saying)."""
        return self._line_rate(self.synthesize_native(text, cancel))

    def _line_rate(self, audio: FloatAudio) -> Pcm:
        if audio.size == 0:
            return np.zeros(0, dtype=np.int16)
        return resample(float_to_pcm16(audio), self.voice.sample_rate, LINE_RATE)
