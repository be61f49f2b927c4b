"""Production recogniser: whisper.cpp (pywhispercpp) in a pool of worker processes.

Why processes. A missing, corrupt or truncated model raises nothing when pywhispercpp loads it and
then segfaults inside ``transcribe()``; inference also holds a core for hundreds of milliseconds.
So: the model file is validated first (:func:`~ari_agent.speech.ggml_format.validate_whisper_model`
walks the whole file), each worker process loads it once, and the service only talks to workers
over a pipe, under a :class:`~ari_agent.speech.worker_supervisor.WorkerSupervisor`. A worker that
dies (segfault, OOM kill) or overruns ``timeout_s`` is noticed through its process sentinel, killed if
need be, and replaced in the background; the utterance it was working on comes back as a
:class:`~ari_agent.speech.recognizer.Transcript` with ``error`` set - never a hang, never a
crash of the service. After ``max_restarts`` consecutive failed starts the pool declares itself
broken and answers every request with an error at once.

Whisper has no true streaming: :class:`WhisperRecognizer` buffers the turn (cut by the VAD
endpointer) and sends it whole at ``finish()``: 8 kHz int16 -> 16 kHz float32 (soxr, one shot).
Threads, GPU use (``use_gpu``, ``gpu_device``, ``flash_attn``; the PyPI wheel is CPU-only) and the
number of workers come from :class:`~ari_agent.config.WhisperSettings`.

Confidence: the mean over segments of pywhispercpp's segment probability (geometric mean of the
token probabilities), weighted by text length.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
import multiprocessing.connection as mpc
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from ari_agent.config import SttConfig, WhisperSettings
from ari_agent.media.pcm import as_pcm16, pcm16_to_float, resample
from ari_agent.seam import Expectation
from ari_agent.speech.code_check import CodeCheck
from ari_agent.speech.ggml_format import ValidationLevel, WhisperModelInfo, validate_whisper_model
from ari_agent.speech.recognizer import SttError, Transcript
from ari_agent.speech.repetition import collapse_repeats
from ari_agent.speech.worker_supervisor import (
    WorkerError,
    WorkerRefused,
    WorkerStartError,
    WorkerStats,
    WorkerSupervisor,
    spawn_function,
)
from ari_agent.uk_postcodes import compact, spaced

log = logging.getLogger(__name__)

WorkerTarget = Callable[..., None]
# The decode, measured on the phone set (docs/speech-bench.md, "Recogniser changes"): no timestamp tokens
# (the decoder then stops instead of looping: p95 on digits 1.4 s -> 0.25 s, half the CPU, WER lower on
# every kind) and no temperature fallback (a failing turn is decoded once, not up to six times).
DECODE_PARAMS: Final[dict[str, Any]] = {"no_context": True, "single_segment": True, "suppress_blank": True,
                                        "no_timestamps": True, "temperature_inc": 0.0}
_NON_SPEECH: Final = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")


# ------------------------------------------------------------------ the worker process


def whisper_worker_main(conn: mpc.Connection, model_path: str, threads: int, context_params: dict[str, Any],
                        decode_params: dict[str, Any]) -> None:
    """Entry point of a worker process: load the model once, then answer transcription requests.

    Messages in: ("transcribe", id, float32 audio at 16 kHz, params) | ("check", id, audio, params with
    "constraint" and "record": :meth:`ConstrainedDecoder.check`) | ("stop",).
    Messages out: ("ready", info) | ("init_error", text) | ("result", id, segments, infer_ms) |
    ("error", id, text). A crash in whisper.cpp kills the process; the parent notices.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    t0 = time.perf_counter()
    try:
        from pywhispercpp.model import Model

        model = Model(model_path, redirect_whispercpp_logs_to=None, n_threads=threads, print_progress=False,
                      print_realtime=False, print_timestamps=False, context_params=cast(Any, context_params),
                      **decode_params)
    except BaseException as exc:  # report whatever stopped the load
        conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {"pid": os.getpid(), "load_ms": (time.perf_counter() - t0) * 1000.0}))
    constrained = ConstrainedDecoder(model_path, threads)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] not in ("transcribe", "check"):
            return
        verb, req_id, audio, params = msg
        t1 = time.perf_counter()
        try:
            constraint = params.pop("constraint", None)
            out: Any
            if verb == "check":
                out = constrained.check(audio, constraint, str(params.pop("record")), params)
            elif constraint is not None:
                out = constrained.decode(audio, constraint, params)
            else:
                segments = model.transcribe(audio, extract_probability=True, **params)
                out = [(int(s.t0), int(s.t1), str(s.text), float(s.probability)) for s in segments]
            conn.send(("result", req_id, out, (time.perf_counter() - t1) * 1000.0))
        except Exception as exc:  # a Python-level failure: the worker stays usable
            conn.send(("error", req_id, f"{type(exc).__name__}: {exc}"))


# The constrained decodes a request may ask for (``WhisperWorkerPool.transcribe(constraint=...)``).
CONSTRAINTS: Final = ("uk_postcode",)


class ConstrainedDecoder:
    """The worker's constrained decodes (``speech/whisper_lib.py``, ``speech/token_constraint.py``): the model
    is loaded a second time through ctypes, on the first request that needs it (~0.45 s and ~90 MB of RSS;
    a map without postcode slots never pays it; ``VoiceServices.warm`` asks at start-up), and a failure to
    do so answers every later request at once."""

    def __init__(self, model_path: str, threads: int) -> None:
        self.model_path = model_path
        self.threads = threads
        self._lib: Any = None
        self._constraint: Any = None
        self._failed: str | None = None

    def decode(self, audio: npt.NDArray[np.float32], constraint: str,
               params: dict[str, Any]) -> list[tuple[int, int, str, float]]:
        self._load(constraint)
        got = self._lib.decode(audio, self._constraint.allowed, audio_ctx=int(params.get("audio_ctx", 0)),
                               max_tokens=int(params.get("max_tokens", 24)))
        code = self._constraint.value(got.tokens)
        if code is None:  # the token cap came first
            return [(0, 0, "", 0.0)]
        # the code itself ("SW1A 1AA"), not the decode's spelling of it: the slot reader gets what was decoded
        return [(0, 0, spaced(code), math.exp(got.logprob))]

    def check(self, audio: npt.NDArray[np.float32], constraint: str, record: str,
              params: dict[str, Any]) -> dict[str, Any]:
        """The audio against ``record`` (``speech/code_check.py``): the free constrained decode and the decode
        forced to write the record, with the model's scores of both."""
        self._load(constraint)
        c = self._constraint
        kw = {"audio_ctx": int(params.get("audio_ctx", 0)), "max_tokens": int(params.get("max_tokens", 24))}
        free = self._lib.decode(audio, c.allowed, **kw)
        forced = self._lib.decode(audio, c.exactly(record), rivals=c.rivals, **kw)
        written = c.value(forced.tokens) == record
        return {"heard": c.value(free.tokens), "heard_score": free.score,
                "record_score": forced.score if written else -math.inf, "weakest": forced.weakest}

    def _load(self, constraint: str | None) -> None:
        if constraint not in CONSTRAINTS:
            raise SttError(f"unknown constraint {constraint!r} ({', '.join(CONSTRAINTS)})")
        if self._failed is not None:
            raise SttError(self._failed)
        if self._lib is None:
            try:
                from ari_agent.speech.token_constraint import PostcodeConstraint
                from ari_agent.speech.whisper_lib import WhisperLib

                lib = WhisperLib(Path(self.model_path), threads=self.threads)
                self._constraint = PostcodeConstraint(lib.token_texts(), lib.eot)
                self._lib = lib
            except Exception as exc:
                self._failed = f"constrained decoding is not available: {type(exc).__name__}: {exc}"
                raise SttError(self._failed) from exc


# ------------------------------------------------------------------ the pool


@dataclass
class PoolStats(WorkerStats):
    requests: int = 0
    errors: int = 0


class WhisperWorkerPool:
    """Worker processes running whisper.cpp; ``transcribe`` is thread-safe (one request per worker)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        workers: int = 1,
        threads: int = 2,
        use_gpu: bool = False,
        gpu_device: int = 0,
        flash_attn: bool = False,
        language: str = "en",
        timeout_s: float = 15.0,
        start_timeout_s: float = 60.0,
        audio_ctx_floor: int = 384,
        validate: ValidationLevel = "full",
        max_restarts: int = 5,
        target: WorkerTarget | None = None,
    ) -> None:
        if workers < 1:
            raise SttError("a whisper pool needs at least one worker")
        self.model: WhisperModelInfo = validate_whisper_model(model_path, validate)
        self.size = workers
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.max_restarts = max_restarts
        self.language = language
        self.audio_ctx_floor = audio_ctx_floor
        self.stats = PoolStats()
        worker_target: WorkerTarget = target or whisper_worker_main
        args = (
            str(self.model.path),
            threads,
            {"use_gpu": use_gpu, "gpu_device": gpu_device, "flash_attn": flash_attn},
            DECODE_PARAMS | {"language": language},
        )
        self._workers = WorkerSupervisor(
            functools.partial(spawn_function, worker_target, args, name="whisper"), name="whisper",
            loads=str(self.model.path), task="the utterance", size=workers, start_timeout_s=start_timeout_s,
            restart="background", max_restarts=max_restarts, stats=self.stats,
        )
        self._broken: str | None = None
        self._started = False

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> WhisperWorkerPool:
        """Start all workers and wait until each has loaded the model (SttError if one cannot)."""
        if self._started:
            return self
        self._started = True
        try:
            self._workers.start()
        except WorkerStartError as exc:
            raise SttError(str(exc)) from None
        return self

    def __enter__(self) -> WhisperWorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def broken(self) -> str | None:
        """Why the pool gave up restarting workers, or None while it is healthy."""
        return self._broken or self._workers.broken

    def worker_pids(self) -> list[int]:
        return self._workers.worker_pids()

    def close(self) -> None:
        self._workers.close()

    # -- requests --------------------------------------------------------------------------------

    def _error(self, message: str, t0: float, audio_ms: int) -> Transcript:
        self.stats.errors += 1
        log.warning("whisper: %s", message)
        return Transcript(text="", latency_ms=(time.perf_counter() - t0) * 1000.0, audio_ms=audio_ms,
                          engine="whisper", error=message)

    def transcribe(self, pcm8k: npt.ArrayLike, prompt: str | None = None, timeout_s: float | None = None,
                   max_tokens: int | None = None, constraint: str | None = None) -> Transcript:
        """Transcribe one utterance (8 kHz int16). Blocks; never raises for engine failures. ``max_tokens``:
        a tighter token cap than the audio length gives (what the turn expects: :func:`expected_tokens`).
        ``constraint`` (one of :data:`CONSTRAINTS`): a decode that may only write such a value (the value,
        "SW1A 1AA", or '' when it made none; engine ``whisper-constrained``)."""
        t0 = time.perf_counter()
        samples = as_pcm16(pcm8k, "whisper input")
        audio_ms = samples.size // 8
        params: dict[str, Any] = {"initial_prompt": prompt or ""}
        if constraint is not None:
            params["constraint"] = constraint
        try:
            reply = self._request("transcribe", samples, params, max_tokens, timeout_s)
        except WorkerRefused as exc:
            return self._error(f"whisper failed: {exc}", t0, audio_ms)
        except (WorkerError, SttError) as exc:
            return self._error(str(exc), t0, audio_ms)
        got = _transcript(reply[0], t0, audio_ms)
        return dataclasses.replace(got, engine="whisper-constrained") if constraint is not None else got

    def check_code(self, pcm8k: npt.ArrayLike, record: str, constraint: str = "uk_postcode",
                   timeout_s: float | None = None) -> CodeCheck:
        """The turn's audio against the code on ``record`` (``speech/code_check.py``); blocks; never raises
        for engine failures (``error`` set, and :func:`~ari_agent.speech.code_check.matches` is then False)."""
        t0 = time.perf_counter()
        code = compact(record)
        try:
            reply = self._request("check", as_pcm16(pcm8k, "whisper input"),
                                  {"constraint": constraint, "record": code}, None, timeout_s)
            got = reply[0]
            return CodeCheck(code, got["heard"], float(got["heard_score"]), float(got["record_score"]),
                             float(got["weakest"]), (time.perf_counter() - t0) * 1000.0)
        except (WorkerError, SttError, KeyError, TypeError, ValueError) as exc:  # a reply out of shape too
            self.stats.errors += 1
            log.warning("whisper: code check: %s", exc)
            return CodeCheck(code, None, 0.0, -math.inf, 0.0, (time.perf_counter() - t0) * 1000.0,
                             error=str(exc))

    def _request(self, verb: str, samples: npt.NDArray[np.int16], params: dict[str, Any], max_tokens: int | None,
                 timeout_s: float | None) -> tuple[Any, ...]:
        """Send one utterance (8 kHz int16) to a worker: SttError when the pool is broken, the supervisor's
        WorkerError (WorkerRefused included) when the worker fails."""
        self.stats.requests += 1
        if not self._started:
            try:
                self.start()
            except SttError as exc:
                self._broken = str(exc)
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        if self.broken is not None:
            raise SttError(f"whisper pool is broken: {self.broken}")
        audio = pcm16_to_float(resample(samples, 8000, 16000, quality="HQ"))
        seconds = audio.size / 16000
        params = {**params, "audio_ctx": audio_context(seconds, self.audio_ctx_floor, self.model.hparams.n_audio_ctx),
                  # a decoder caught in a repetition loop stops here instead of running for seconds
                  "max_tokens": token_cap(seconds, max_tokens)}
        return self._workers.request(verb, audio, params, timeout_s=limit, deadline=deadline)

    def warm(self, constraint: str) -> None:
        """Load every worker's ``constraint`` decoder now (a second of silence each, all at once)."""
        silence = np.zeros(8000, dtype=np.int16)
        threads = [threading.Thread(target=self.transcribe, args=(silence,), kwargs={"constraint": constraint},
                                    name="whisper-warm", daemon=True) for _ in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    async def transcribe_async(self, pcm8k: npt.ArrayLike, prompt: str | None = None,
                               timeout_s: float | None = None) -> Transcript:
        return await asyncio.to_thread(self.transcribe, pcm8k, prompt, timeout_s)


def audio_context(seconds: float, floor: int, full: int) -> int:
    """The encoder window for an utterance of ``seconds``: ~50 positions a second plus a margin, at least
    ``floor`` (0: always the model's full 30 s window). A window shorter than the audio would cut it, so
    it only ever shrinks the padding. Measured on tiny.en (2 threads, 2-4 s utterances, a quiet 2-core
    machine): full window p50 1166 ms, sized with floor 256: 226 ms on wideband audio; on phone audio
    with the expectation prompt floor 256 made the decoder repeat itself, floor 512 did not (~400 ms)."""
    if floor <= 0:
        return 0
    return min(full, max(floor, math.ceil(50 * seconds) + 32))


# The decode's token cap (whisper.cpp ``max_tokens``) by audio length. Speech on the line gives about 3-4
# tokens a second (bench lines: "Hi, I'd like to check the status of my order please." 14 in 3.8 s with the
# pre-roll and tail; "4 5 6 7" 8 in 2 s; eleven digits read fast, 12 in 3.5 s); a repetition loop runs to
# the cap at ~15 ms a token (tiny.en, 2 threads): 6 a second + 10 keeps every real turn whole and stops a
# loop on a 2 s turn after 22 tokens (was 8 a second + 16: 32).
TOKENS_PER_SECOND: Final = 6
TOKEN_MARGIN: Final = 10


def token_cap(seconds: float, expected: int | None = None) -> int:
    """The most tokens a decode of ``seconds`` of audio may write (see :data:`TOKENS_PER_SECOND`), at most
    ``expected`` when the turn says how long its answer is."""
    cap = math.ceil(TOKENS_PER_SECOND * seconds) + TOKEN_MARGIN
    return min(cap, expected) if expected else cap


def expected_tokens(expect: Expectation) -> int | None:
    """A token cap from what the turn expects, or None (the audio length alone caps it). A digits turn of at
    most N digits: two tokens a digit (" 4" and a comma, or a word) and room for a carrier ("My number is"):
    a digit loop ("4 5 6 7 4 5 6 7 ...", the slowest decodes on the line) stops there."""
    if expect.kind == "digits" and expect.max_digits:
        return 2 * expect.max_digits + 8
    return None


def _transcript(segments: list[tuple[int, int, str, float]], t0: float, audio_ms: int) -> Transcript:
    texts: list[str] = []
    weighted = 0.0
    weight = 0
    for _t0, _t1, text, prob in segments:
        clean = " ".join(_NON_SPEECH.sub(" ", text).split())
        if not clean:
            continue
        texts.append(clean)
        if prob == prob:  # not NaN
            weighted += prob * len(clean)
            weight += len(clean)
    text = collapse_repeats(" ".join(texts))  # "Yes. Yes. Yes. …": the decoder's loop, not the caller's words
    confidence = weighted / weight if weight else 0.0
    return Transcript(text=text, confidence=confidence if text else 0.0,
                      latency_ms=(time.perf_counter() - t0) * 1000.0, audio_ms=audio_ms, engine="whisper")


# Where `ari-agent models prepare` writes the whisper.cpp model, under models.dir.
PREPARED_MODEL: Final = Path("whisper-tiny.en") / "ggml-tiny.en.bin"


def whisper_model_path(settings: WhisperSettings, models_dir: Path | None = None) -> Path:
    """The configured model file; unset: the one prepared in ``models_dir`` (SttError when there is none)."""
    if settings.model_path is not None:
        return Path(settings.model_path)
    if models_dir is None:
        raise SttError("stt.whisper.model_path is not set")
    prepared = models_dir / PREPARED_MODEL
    if not prepared.is_file():
        raise SttError(f"stt.whisper.model_path is not set and no model is prepared at {prepared}: "
                       "run `ari-agent models prepare`")
    return prepared


def create_whisper_pool(config: SttConfig | WhisperSettings, models_dir: Path | None = None) -> WhisperWorkerPool:
    """Validate the configured model (unset: the one prepared in ``models_dir``) and start the workers
    (SttError when either fails)."""
    s = config.whisper if isinstance(config, SttConfig) else config
    pool = WhisperWorkerPool(
        whisper_model_path(s, models_dir), workers=s.workers, threads=s.threads, use_gpu=s.use_gpu,
        gpu_device=s.gpu_device,
        flash_attn=s.flash_attn, language=s.language, timeout_s=s.timeout_s, start_timeout_s=s.start_timeout_s,
        validate=s.validation, max_restarts=s.max_restarts, audio_ctx_floor=s.audio_ctx_floor,
    )
    return pool.start()


# ------------------------------------------------------------------ per-call front end


# What a date or time answer looks like, for whisper's prompt on those turns: numerals, ordinals, am / pm, written
# as the slot parsers read them. The values are none of the phone set's answers nor the voice suites' (a
# prompt's words are what a weak hearing falls back on). Measured: docs/speech-bench.md, 2026-12-07 (last).
ANSWER_FORMS: Final = {"date": "On Saturday the 8th. The 27th of September 1963.", "time": "At 7:50 am. Or 4:05 pm."}


def prompt_for(expect: Expectation) -> str | None:
    """A short initial prompt nudging whisper towards the expected wording (None: no prompt). An open turn: what
    it is about (``expect.context``, the map's descriptions), else the first of its example phrasings; a date or
    time turn: the question asked (``expect.context``) and the answer's form (:data:`ANSWER_FORMS`)."""
    if expect.kind == "open" and expect.context:
        return expect.context
    if expect.kind == "open" and expect.phrases:
        text = ""
        for phrase in expect.phrases:
            if len(text) + len(phrase) > 200:
                break
            text += phrase.rstrip(".?!") + ". "
        return text.strip() or None
    if expect.kind == "choice" and expect.choices:
        return ", ".join(expect.choices) + "."
    if expect.kind == "yes_no":
        return "Yes. No."
    if expect.kind == "digits":
        # a carrier, zeros ("oh"), a filler before the digits; numbers that are none of the test set's answers
        # (measured: docs/speech-bench.md)
        return "It's 8 0 0 3. Uh, 0 6 2 5."
    if expect.kind in ANSWER_FORMS:
        # the question just asked (the map's words), then answers in the form the slot parsers read best
        return f"{expect.context} {ANSWER_FORMS[expect.kind]}".strip()
    return None


class WhisperRecognizer:
    """:class:`~ari_agent.speech.recognizer.SpeechRecognizer` over a shared pool: buffers the turn, sends it
    whole at ``finish()``. ``partial()`` is always '' (whisper re-decodes the whole buffer)."""

    engine = "whisper"

    def __init__(self, pool: WhisperWorkerPool, *, prompt_with_expectation: bool = True) -> None:
        self.pool = pool
        self.prompt_with_expectation = prompt_with_expectation
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._prompt: str | None = None
        self._max_tokens: int | None = None
        self._active = False

    def start(self, expect: Expectation) -> None:
        self._chunks = []
        self._prompt = prompt_for(expect) if self.prompt_with_expectation else None
        self._max_tokens = expected_tokens(expect)
        self._active = True

    def feed(self, pcm8k: npt.ArrayLike) -> None:
        if self._active:
            self._chunks.append(as_pcm16(pcm8k, "recogniser input").copy())

    def partial(self) -> str:
        return ""

    def turn_audio(self) -> npt.NDArray[np.int16]:
        """The audio fed since ``start`` (empty once the turn is finished or discarded)."""
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)

    def finish(self) -> Transcript:
        if not self._active:
            return Transcript(text="", engine=self.engine, error="no turn in progress")
        self._active = False
        audio = self.turn_audio()
        self._chunks = []
        if audio.size == 0:
            return Transcript(text="", engine=self.engine)
        return self.pool.transcribe(audio, self._prompt, max_tokens=self._max_tokens)

    def decode(self, pcm8k: npt.ArrayLike) -> Transcript:
        """This audio with the turn's prompt (:class:`SpeculativeRecognizer`: a decode started at a pause)."""
        audio = as_pcm16(pcm8k, "recogniser input")
        if audio.size == 0:
            return Transcript(text="", engine=self.engine)
        return self.pool.transcribe(audio, self._prompt, max_tokens=self._max_tokens)

    def discard(self) -> None:
        self._chunks = []
        self._active = False

    def close(self) -> None:
        self._chunks = []
        self._active = False
