"""Production recogniser: whisper.cpp (pywhispercpp) in a pool of worker processes.

Why processes. A missing, corrupt or truncated model raises nothing when pywhispercpp loads it and
then segfaults inside ``transcribe()``; inference also holds a core for hundreds of milliseconds.
So: the model file is validated first (:func:`~ari_agent.speech.ggml_format.validate_whisper_model`
walks the whole file), each worker process loads it once, and the service only talks to workers
over a pipe. A worker that dies (segfault, OOM kill) or overruns ``timeout_s`` is noticed through its
process sentinel, killed if need be, and replaced in the background; the utterance it was working on
comes back as a :class:`~ari_agent.speech.stt.Transcript` with ``error`` set - never a hang, never a
crash of the service. After ``max_restarts`` consecutive failed starts the pool declares itself
broken and answers every request with an error at once.

Whisper has no true streaming: :class:`WhisperRecognizer` buffers the turn (cut by the VAD
endpointer) and sends it whole at ``finish()``: 8 kHz int16 -> 16 kHz float32 (soxr, one shot).
Threads, GPU use (``use_gpu``, ``gpu_device``, ``flash_attn``; the PyPI wheel is CPU-only) and the
number of workers come from :class:`~ari_agent.speech.stt.WhisperSettings`.

Confidence: the mean over segments of pywhispercpp's segment probability (geometric mean of the
token probabilities), weighted by text length.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt

from ari_agent.media.pcm import as_pcm16, pcm16_to_float, resample
from ari_agent.seam import Expectation
from ari_agent.speech.ggml_format import ValidationLevel, WhisperModelInfo, validate_whisper_model
from ari_agent.speech.stt import SttConfig, SttError, Transcript, WhisperSettings

log = logging.getLogger(__name__)

WorkerTarget = Callable[..., None]
_NON_SPEECH: Final = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")


# ------------------------------------------------------------------ the worker process


def whisper_worker_main(conn: mpc.Connection, model_path: str, threads: int, context_params: dict[str, Any],
                        decode_params: dict[str, Any]) -> None:
    """Entry point of a worker process: load the model once, then answer transcription requests.

    Messages in: ("transcribe", id, float32 audio at 16 kHz, params) | ("stop",).
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
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "transcribe":
            return
        _, req_id, audio, params = msg
        t1 = time.perf_counter()
        try:
            segments = model.transcribe(audio, extract_probability=True, **params)
            out = [(int(s.t0), int(s.t1), str(s.text), float(s.probability)) for s in segments]
            conn.send(("result", req_id, out, (time.perf_counter() - t1) * 1000.0))
        except Exception as exc:  # a Python-level failure: the worker stays usable
            conn.send(("error", req_id, f"{type(exc).__name__}: {exc}"))


# ------------------------------------------------------------------ the pool


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: mpc.Connection
    pid: int
    load_ms: float

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        try:
            self.process.kill()
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        self.conn.close()


@dataclass
class PoolStats:
    requests: int = 0
    errors: int = 0
    crashes: int = 0
    timeouts: int = 0
    restarts: int = 0


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


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
        self.stats = PoolStats()
        self._target: WorkerTarget = target or whisper_worker_main
        self._args = (
            str(self.model.path),
            threads,
            {"use_gpu": use_gpu, "gpu_device": gpu_device, "flash_attn": flash_attn},
            {"language": language, "no_context": True, "single_segment": True, "suppress_blank": True},
        )
        self._mp = mp.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._failed_starts = 0
        self._broken: str | None = None
        self._closed = False
        self._started = False

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> WhisperWorkerPool:
        """Start all workers and wait until each has loaded the model (SttError if one cannot)."""
        if self._started:
            return self
        self._started = True
        try:
            for _ in range(self.size):
                self._idle.put(self._spawn())
        except SttError:
            self.close()
            raise
        return self

    def __enter__(self) -> WhisperWorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def broken(self) -> str | None:
        """Why the pool gave up restarting workers, or None while it is healthy."""
        return self._broken

    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def _spawn(self) -> _Worker:
        parent, child = self._mp.Pipe(duplex=True)
        proc = self._mp.Process(target=self._target, args=(child, *self._args), daemon=True,
                                name="ari-agent-whisper")
        proc.start()
        child.close()
        ready = mpc.wait([parent, proc.sentinel], timeout=self.start_timeout_s)
        msg: Any = None
        if parent in ready:
            try:
                msg = parent.recv()
            except (EOFError, OSError):
                msg = None
        if not msg or msg[0] != "ready":
            reason = (msg[1] if msg and msg[0] == "init_error"
                      else "no answer in time" if not ready else _describe_exit(proc.exitcode))
            try:
                proc.kill()
            except (OSError, ValueError):
                pass
            proc.join(timeout=5)
            parent.close()
            raise SttError(f"whisper worker could not load {self.model.path}: {reason}")
        info = msg[1]
        worker = _Worker(process=proc, conn=parent, pid=int(info["pid"]), load_ms=float(info["load_ms"]))
        with self._lock:
            self._all.add(worker)
        log.info("whisper worker %d ready (model loaded in %.0f ms)", worker.pid, worker.load_ms)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()

    def _replace(self, worker: _Worker) -> None:
        """Retire ``worker`` and start its replacement in the background."""
        self._retire(worker)
        if self._closed:
            return
        threading.Thread(target=self._restart_one, name="whisper-restart", daemon=True).start()

    def _restart_one(self) -> None:
        while not self._closed and self._broken is None:
            try:
                worker = self._spawn()
            except SttError as exc:
                with self._lock:
                    self._failed_starts += 1
                    failed = self._failed_starts
                log.error("whisper worker restart failed (%d in a row): %s", failed, exc)
                if failed > self.max_restarts:
                    self._broken = str(exc)
                    return
                time.sleep(min(5.0, 0.2 * 2**failed))
                continue
            with self._lock:
                self._failed_starts = 0
            self.stats.restarts += 1
            if self._closed:
                self._retire(worker)
            else:
                self._idle.put(worker)
            return

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for w in workers:
            try:
                w.conn.send(("stop",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for w in workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._retire(w)

    # -- requests --------------------------------------------------------------------------------

    def _error(self, message: str, t0: float, audio_ms: int) -> Transcript:
        self.stats.errors += 1
        log.warning("whisper: %s", message)
        return Transcript(text="", latency_ms=(time.perf_counter() - t0) * 1000.0, audio_ms=audio_ms,
                          engine="whisper", error=message)

    def transcribe(self, pcm8k: npt.ArrayLike, prompt: str | None = None, timeout_s: float | None = None) -> Transcript:
        """Transcribe one utterance (8 kHz int16). Blocks; never raises for engine failures."""
        t0 = time.perf_counter()
        samples = as_pcm16(pcm8k, "whisper input")
        audio_ms = samples.size // 8
        self.stats.requests += 1
        if not self._started:
            try:
                self.start()
            except SttError as exc:
                self._broken = str(exc)
        limit = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        if self._broken is not None:
            return self._error(f"whisper pool is broken: {self._broken}", t0, audio_ms)
        audio = pcm16_to_float(resample(samples, 8000, 16000, quality="HQ"))
        params: dict[str, Any] = {"initial_prompt": prompt or ""}
        while True:  # find a live idle worker
            remaining = deadline - time.monotonic()
            if self._broken is not None:
                return self._error(f"whisper pool is broken: {self._broken}", t0, audio_ms)
            try:
                worker = self._idle.get(timeout=max(0.0, min(remaining, 0.25)))
            except queue.Empty:
                if remaining <= 0:
                    return self._error(f"no whisper worker free within {limit:.1f} s", t0, audio_ms)
                continue
            if worker.alive():
                break
            self.stats.crashes += 1
            log.error("whisper worker %d died while idle (%s)", worker.pid, _describe_exit(worker.process.exitcode))
            self._replace(worker)
        req_id = next(self._ids)
        try:
            worker.conn.send(("transcribe", req_id, audio, params))
        except (OSError, ValueError):
            self.stats.crashes += 1
            self._replace(worker)
            return self._error(f"whisper worker {worker.pid} could not take the request", t0, audio_ms)
        ready = mpc.wait([worker.conn, worker.process.sentinel], timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            self.stats.timeouts += 1
            self._replace(worker)
            return self._error(f"whisper worker {worker.pid} timed out after {limit:.1f} s (killed)", t0, audio_ms)
        msg: Any = None
        if worker.conn in ready:
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError):
                msg = None
        if msg is None:
            worker.process.join(timeout=1.0)
            self.stats.crashes += 1
            how = _describe_exit(worker.process.exitcode)
            self._replace(worker)
            return self._error(f"whisper worker {worker.pid} crashed ({how}) during the utterance", t0, audio_ms)
        self._idle.put(worker)
        if msg[0] == "error" or msg[1] != req_id:
            return self._error(f"whisper failed: {msg[2] if msg[0] == 'error' else 'answer out of order'}", t0,
                               audio_ms)
        return _transcript(msg[2], t0, audio_ms)

    async def transcribe_async(self, pcm8k: npt.ArrayLike, prompt: str | None = None,
                               timeout_s: float | None = None) -> Transcript:
        return await asyncio.to_thread(self.transcribe, pcm8k, prompt, timeout_s)


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
    text = " ".join(texts)
    confidence = weighted / weight if weight else 0.0
    return Transcript(text=text, confidence=confidence if text else 0.0,
                      latency_ms=(time.perf_counter() - t0) * 1000.0, audio_ms=audio_ms, engine="whisper")


def create_whisper_pool(config: SttConfig | WhisperSettings) -> WhisperWorkerPool:
    """Validate the configured model and start the workers (SttError when either fails)."""
    s = config.whisper if isinstance(config, SttConfig) else config
    if s.model_path is None:
        raise SttError("stt.whisper.model_path is not set")
    pool = WhisperWorkerPool(
        Path(s.model_path), workers=s.workers, threads=s.threads, use_gpu=s.use_gpu, gpu_device=s.gpu_device,
        flash_attn=s.flash_attn, language=s.language, timeout_s=s.timeout_s, start_timeout_s=s.start_timeout_s,
        validate=s.validation, max_restarts=s.max_restarts,
    )
    return pool.start()


# ------------------------------------------------------------------ per-call front end


def prompt_for(expect: Expectation) -> str | None:
    """A short initial prompt nudging whisper towards the expected wording (None: no prompt)."""
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
        return "4 5 6 7. 1 2 3 4."
    return None


class WhisperRecognizer:
    """:class:`~ari_agent.speech.stt.SpeechRecognizer` over a shared pool: buffers the turn, sends it
    whole at ``finish()``. ``partial()`` is always '' (whisper re-decodes the whole buffer)."""

    engine = "whisper"

    def __init__(self, pool: WhisperWorkerPool, *, prompt_with_expectation: bool = True) -> None:
        self.pool = pool
        self.prompt_with_expectation = prompt_with_expectation
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._prompt: str | None = None
        self._active = False

    def start(self, expect: Expectation) -> None:
        self._chunks = []
        self._prompt = prompt_for(expect) if self.prompt_with_expectation else None
        self._active = True

    def feed(self, pcm8k: npt.ArrayLike) -> None:
        if self._active:
            self._chunks.append(as_pcm16(pcm8k, "recogniser input").copy())

    def partial(self) -> str:
        return ""

    def finish(self) -> Transcript:
        if not self._active:
            return Transcript(text="", engine=self.engine, error="no turn in progress")
        self._active = False
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        self._chunks = []
        if audio.size == 0:
            return Transcript(text="", engine=self.engine)
        return self.pool.transcribe(audio, self._prompt)

    def close(self) -> None:
        self._chunks = []
        self._active = False
