"""whisper.cpp's C API through ctypes, for the one thing pywhispercpp does not expose: a logits filter.

pywhispercpp 1.5.1 returns no logits and takes no ``logits_filter_callback``; whisper.cpp (1.8.5, vendored
in the pywhispercpp wheel) calls that callback at every decoding step of every beam with the step's logits,
which may be changed before the next token is chosen. A filter that sets every token it does not allow to
-inf *constrains* the decode: whisper then writes only what a grammar allows (its own GBNF grammar is a
penalty, not a constraint: measured in docs/speech-bench.md).

The library is the one pywhispercpp loaded (found in ``/proc/self/maps`` after importing it; else the
wheel's ``pywhispercpp.libs/libwhisper*.so*``). The structs are whisper.h's of 1.8.x; a layout check reads
the library's own defaults back through them (:func:`check_layout`) and refuses to decode when any differs,
so a different whisper.cpp build gives a clear error instead of a segfault. Used only inside the whisper
worker processes (``whisper_stt.whisper_worker_main``), like pywhispercpp itself.
"""

from __future__ import annotations

import ctypes as C
import glob
import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ari_agent.speech.recognizer import SttError


class ContextParams(C.Structure):
    _fields_ = [("use_gpu", C.c_bool), ("flash_attn", C.c_bool), ("gpu_device", C.c_int),
                ("dtw_token_timestamps", C.c_bool), ("dtw_aheads_preset", C.c_int), ("dtw_n_top", C.c_int),
                ("dtw_n_heads", C.c_size_t), ("dtw_heads", C.c_void_p), ("dtw_mem_size", C.c_size_t)]


class TokenData(C.Structure):
    _fields_ = [("id", C.c_int32), ("tid", C.c_int32), ("p", C.c_float), ("plog", C.c_float), ("pt", C.c_float),
                ("ptsum", C.c_float), ("t0", C.c_int64), ("t1", C.c_int64), ("t_dtw", C.c_int64),
                ("vlen", C.c_float)]


LogitsFilter = C.CFUNCTYPE(None, C.c_void_p, C.c_void_p, C.POINTER(TokenData), C.c_int, C.POINTER(C.c_float),
                           C.c_void_p)
_LogCallback = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)


class VadParams(C.Structure):
    _fields_ = [("threshold", C.c_float), ("min_speech_duration_ms", C.c_int), ("min_silence_duration_ms", C.c_int),
                ("max_speech_duration_s", C.c_float), ("speech_pad_ms", C.c_int), ("samples_overlap", C.c_float)]


class FullParams(C.Structure):
    _fields_ = [
        ("strategy", C.c_int), ("n_threads", C.c_int), ("n_max_text_ctx", C.c_int), ("offset_ms", C.c_int),
        ("duration_ms", C.c_int), ("translate", C.c_bool), ("no_context", C.c_bool), ("no_timestamps", C.c_bool),
        ("single_segment", C.c_bool), ("print_special", C.c_bool), ("print_progress", C.c_bool),
        ("print_realtime", C.c_bool), ("print_timestamps", C.c_bool), ("token_timestamps", C.c_bool),
        ("thold_pt", C.c_float), ("thold_ptsum", C.c_float), ("max_len", C.c_int), ("split_on_word", C.c_bool),
        ("max_tokens", C.c_int), ("debug_mode", C.c_bool), ("audio_ctx", C.c_int), ("tdrz_enable", C.c_bool),
        ("suppress_regex", C.c_char_p), ("initial_prompt", C.c_char_p), ("carry_initial_prompt", C.c_bool),
        ("prompt_tokens", C.c_void_p), ("prompt_n_tokens", C.c_int), ("language", C.c_char_p),
        ("detect_language", C.c_bool), ("suppress_blank", C.c_bool), ("suppress_nst", C.c_bool),
        ("temperature", C.c_float), ("max_initial_ts", C.c_float), ("length_penalty", C.c_float),
        ("temperature_inc", C.c_float), ("entropy_thold", C.c_float), ("logprob_thold", C.c_float),
        ("no_speech_thold", C.c_float), ("best_of", C.c_int), ("beam_size", C.c_int), ("patience", C.c_float),
        ("new_segment_callback", C.c_void_p), ("new_segment_callback_user_data", C.c_void_p),
        ("progress_callback", C.c_void_p), ("progress_callback_user_data", C.c_void_p),
        ("encoder_begin_callback", C.c_void_p), ("encoder_begin_callback_user_data", C.c_void_p),
        ("abort_callback", C.c_void_p), ("abort_callback_user_data", C.c_void_p),
        ("logits_filter_callback", LogitsFilter), ("logits_filter_callback_user_data", C.c_void_p),
        ("grammar_rules", C.c_void_p), ("n_grammar_rules", C.c_size_t), ("i_start_rule", C.c_size_t),
        ("grammar_penalty", C.c_float), ("vad", C.c_bool), ("vad_model_path", C.c_char_p), ("vad_params", VadParams),
    ]


GREEDY: Final = 0
# whisper_full_default_params(GREEDY) of whisper.cpp 1.8.x, read back through FullParams: a build whose
# struct differs shifts some of these.
EXPECTED_DEFAULTS: Final = {"n_max_text_ctx": 16384, "language": b"en", "best_of": 5, "beam_size": -1,
                            "max_initial_ts": 1.0, "length_penalty": -1.0, "entropy_thold": 2.4,
                            "logprob_thold": -1.0, "no_speech_thold": 0.6, "grammar_penalty": 100.0}
EXPECTED_VAD_DEFAULTS: Final = {"threshold": 0.5, "min_speech_duration_ms": 250, "speech_pad_ms": 30}
Mask = npt.NDArray[np.bool_]
# The filter: the tokens decoded so far (ids, the prompt not included) -> the tokens allowed next.
Allowed = Callable[[list[int]], Mask]


def library_path() -> Path:
    """The libwhisper pywhispercpp uses (SttError when pywhispercpp is not installed)."""
    try:
        importlib.import_module("_pywhispercpp")  # loads its libwhisper into this process
    except ImportError as exc:
        raise SttError(f"pywhispercpp is not installed ({exc}): install the whisper extra") from exc
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split()[-1] if line.split() else ""
            if "libwhisper" in Path(path).name and Path(path).is_file():
                return Path(path)
    except OSError:  # no procfs: look in the wheel
        pass
    spec = importlib.util.find_spec("pywhispercpp")
    if spec is not None and spec.origin:
        site = Path(spec.origin).resolve().parent.parent
        found = sorted(glob.glob(str(site / "pywhispercpp.libs" / "libwhisper*.so*")))
        if found:
            return Path(found[0])
    raise SttError("pywhispercpp's libwhisper was not found")


def _bind(lib: C.CDLL) -> None:
    lib.whisper_context_default_params_by_ref.restype = C.POINTER(ContextParams)
    lib.whisper_init_from_file_with_params.restype = C.c_void_p
    lib.whisper_init_from_file_with_params.argtypes = [C.c_char_p, ContextParams]
    lib.whisper_free.argtypes = [C.c_void_p]
    lib.whisper_full_default_params_by_ref.restype = C.POINTER(FullParams)
    lib.whisper_full_default_params_by_ref.argtypes = [C.c_int]
    lib.whisper_free_params.argtypes = [C.POINTER(FullParams)]
    lib.whisper_full.argtypes = [C.c_void_p, FullParams, C.POINTER(C.c_float), C.c_int]
    lib.whisper_full_n_segments.argtypes = [C.c_void_p]
    lib.whisper_full_n_tokens.argtypes = [C.c_void_p, C.c_int]
    lib.whisper_full_get_token_data.argtypes = [C.c_void_p, C.c_int, C.c_int]
    lib.whisper_full_get_token_data.restype = TokenData
    lib.whisper_token_to_str.argtypes = [C.c_void_p, C.c_int]
    lib.whisper_token_to_str.restype = C.c_char_p
    for name in ("whisper_n_vocab", "whisper_token_eot"):
        getattr(lib, name).argtypes = [C.c_void_p]
    lib.whisper_log_set.argtypes = [C.c_void_p, C.c_void_p]


def check_layout(lib: C.CDLL) -> None:
    """SttError unless the library's own defaults read back through :class:`FullParams` as expected."""
    ptr = lib.whisper_full_default_params_by_ref(GREEDY)
    try:
        p = ptr.contents
        wrong = [f"{k}={getattr(p, k)!r}" for k, v in EXPECTED_DEFAULTS.items()
                 if not _same(getattr(p, k), v)]
        wrong += [f"vad_params.{k}={getattr(p.vad_params, k)!r}" for k, v in EXPECTED_VAD_DEFAULTS.items()
                  if not _same(getattr(p.vad_params, k), v)]
    finally:
        lib.whisper_free_params(ptr)
    if wrong:
        raise SttError(f"libwhisper's whisper_full_params is not the layout this module knows ({', '.join(wrong)}): "
                       "constrained decoding is off")


def _same(got: object, want: object) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-6)
    return got == want


@dataclass(frozen=True)
class Decoded:
    text: str
    tokens: list[int]  # the text tokens written (no special tokens)
    logprob: float  # their mean log-probability (0.0 when none)
    # The model's own log-probability of what was written, the end of text included, from the logits as they
    # reached the filter (before it masked them: ``logprob`` is renormalised over the allowed tokens only).
    # Comparable between decodes of the same audio under different filters.
    score: float = 0.0
    # The smallest lead, over the steps that wrote a token among ``rivals``, of the token written over the
    # best other rival the model preferred there (log-probability; negative: the model preferred a rival
    # the filter did not allow). 0.0 when no step had a rival.
    weakest: float = 0.0


@dataclass(frozen=True)
class _Step:
    """One decoding step's logits as the filter received them, normalised, and its rivals' mask."""

    logprobs: npt.NDArray[np.float32]
    rivals: Mask | None


def _step(row: npt.NDArray[np.float32], rivals: Mask | None) -> _Step:
    finite = row[np.isfinite(row)]
    if finite.size == 0:
        return _Step(np.full_like(row, -np.inf), rivals)
    top = float(finite.max())
    return _Step(row - (top + math.log(float(np.exp(finite - top).sum()))), rivals)


def _scores(steps: dict[int, _Step], written: list[int]) -> tuple[float, float]:
    """(the log-probability of ``written`` over the steps, the weakest lead over a rival: Decoded's fields)."""
    score, weakest = 0.0, math.inf
    for k, token in enumerate(written):
        step = steps.get(k)
        if step is None:  # the token cap ended the decode before the end of text was chosen
            break
        score += float(step.logprobs[token])
        if step.rivals is not None and step.rivals[token]:
            others = step.rivals.copy()
            others[token] = False
            if others.any():
                weakest = min(weakest, float(step.logprobs[token] - step.logprobs[others].max()))
    return score, (0.0 if weakest == math.inf else weakest)


class WhisperLib:
    """One whisper.cpp context of its own (the model loaded again, next to pywhispercpp's), decoding with a
    logits filter. Not thread-safe: one per worker process."""

    def __init__(self, model_path: Path, *, threads: int = 2, lib_path: Path | None = None) -> None:
        self.lib = C.CDLL(str(lib_path or library_path()))
        _bind(self.lib)
        check_layout(self.lib)
        self._quiet = _LogCallback(lambda _level, _text, _data: None)
        self.lib.whisper_log_set(C.cast(self._quiet, C.c_void_p), None)
        cparams = self.lib.whisper_context_default_params_by_ref().contents
        cparams.use_gpu = False
        self.ctx = self.lib.whisper_init_from_file_with_params(str(model_path).encode(), cparams)
        if not self.ctx:
            raise SttError(f"whisper.cpp could not load {model_path}")
        self.threads = threads
        self.n_vocab: int = self.lib.whisper_n_vocab(self.ctx)
        self.eot: int = self.lib.whisper_token_eot(self.ctx)

    def token_texts(self) -> list[str | None]:
        """Every token's text (None where its bytes are not whole UTF-8: part of a multi-byte character)."""
        out: list[str | None] = []
        for t in range(self.n_vocab):
            raw = self.lib.whisper_token_to_str(self.ctx, t) or b""
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(None)
        return out

    def decode(self, audio16k: npt.NDArray[np.float32], allowed: Allowed, *, audio_ctx: int = 0,
               max_tokens: int = 24, prompt: str | None = None, rivals: Allowed | None = None) -> Decoded:
        """One greedy decode of ``audio16k`` in which each step may only write a token ``allowed`` returns.
        ``rivals``: the tokens each step's written token is compared with for :attr:`Decoded.weakest`."""
        n_vocab, eot = self.n_vocab, self.eot
        failure: list[BaseException] = []
        steps: dict[int, _Step] = {}

        def on_logits(_ctx: int, _state: int, tokens: C._Pointer[TokenData], n: int,
                      logits: C._Pointer[C.c_float], _data: int) -> None:
            try:
                ids = [tokens[i].id for i in range(n) if tokens[i].id < eot]
                mask = allowed(ids)
                row = np.ctypeslib.as_array(logits, shape=(n_vocab,))
                steps[len(ids)] = _step(row, rivals(ids) if rivals is not None else None)
                row[~mask] = -np.inf
            except BaseException as exc:  # never raise into C: note it, end the decode
                failure.append(exc)
                np.ctypeslib.as_array(logits, shape=(n_vocab,))[:eot] = -np.inf

        callback = LogitsFilter(on_logits)
        ptr = self.lib.whisper_full_default_params_by_ref(GREEDY)
        try:
            p = ptr.contents
            p.n_threads = self.threads
            p.no_context = p.single_segment = p.no_timestamps = p.suppress_blank = True
            p.print_progress = p.print_realtime = p.print_timestamps = False
            p.temperature_inc = 0.0
            p.audio_ctx = audio_ctx
            p.max_tokens = max_tokens
            p.language = b"en"
            encoded_prompt = prompt.encode() if prompt else None
            p.initial_prompt = encoded_prompt
            p.logits_filter_callback = callback
            samples = np.ascontiguousarray(audio16k, dtype=np.float32)
            rc = self.lib.whisper_full(self.ctx, p, samples.ctypes.data_as(C.POINTER(C.c_float)), len(samples))
        finally:
            self.lib.whisper_free_params(ptr)
        if failure:
            raise SttError(f"constrained decode: the logits filter failed: {failure[0]!r}")
        if rc != 0:
            raise SttError(f"whisper_full returned {rc}")
        got = self._result()
        score, weakest = _scores(steps, [*got.tokens, eot])
        return Decoded(got.text, got.tokens, got.logprob, score, weakest)

    def _result(self) -> Decoded:
        tokens: list[int] = []
        logprobs: list[float] = []
        for i in range(self.lib.whisper_full_n_segments(self.ctx)):
            for j in range(self.lib.whisper_full_n_tokens(self.ctx, i)):
                data = self.lib.whisper_full_get_token_data(self.ctx, i, j)
                if data.id < self.eot:
                    tokens.append(data.id)
                    logprobs.append(data.plog)
        text = b"".join(self.lib.whisper_token_to_str(self.ctx, t) or b"" for t in tokens)
        return Decoded(text.decode("utf-8", errors="replace").strip(), tokens,
                       float(np.mean(logprobs)) if logprobs else 0.0)

    def close(self) -> None:
        if self.ctx:
            self.lib.whisper_free(self.ctx)
            self.ctx = None
