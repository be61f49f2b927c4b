"""Production TTS: Coqui TTS (PyPI ``coqui-tts``) in a worker process, local model files only.

Why a process. Coqui pulls in torch (~1.8 GB venv, CPU wheel), synthesis holds a core, and a
native crash or an out-of-memory kill must not take the agent down. The worker is started with the
interpreter named by ``python`` (default: this one), so Coqui can live in its own virtual
environment while the agent's stays light. It is a plain ``subprocess`` (``python -I -c <worker>``)
talking over a socket pair with :class:`multiprocessing.connection.Connection`, not a
``multiprocessing`` spawn child: spawn overwrites the child's ``sys.path`` with the parent's, so a
child started with another venv's interpreter would not see that venv's packages.

Only local files are accepted (``model_path`` checkpoint + ``config_path`` JSON). Model names such as
``tts_models/en/ljspeech/vits`` are refused: Coqui would try to download them (fails offline). The
worker also runs with ``HF_HUB_OFFLINE=1``. Both files are checked before the worker starts.

The worker runs under a :class:`~ari_agent.speech.worker_supervisor.WorkerSupervisor` (``"on_demand"``
restarts). A worker that crashes, fails to load, or overruns ``timeout_s`` becomes a :class:`TtsError`
with the reason and the tail of the worker's output; it is killed and a fresh one starts on the next call.
Output (the model's rate, 22.05 kHz for the usual VITS configs) is resampled to 8 kHz with soxr.
``cache_key`` carries SHA-256 digests of the checkpoint and config files.

See ``COQUI.md`` beside this file for what installs, what fails, and measurements.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ari_agent.media.pcm import Pcm, resample
from ari_agent.speech.tts import LINE_RATE, TtsError
from ari_agent.speech.worker_supervisor import (
    WorkerError,
    WorkerProcess,
    WorkerRefused,
    WorkerStartError,
    WorkerSupervisor,
    run_in_interpreter,
    worker_program,
)

log = logging.getLogger(__name__)

_MODEL_NAME_PREFIXES = ("tts_models/", "vocoder_models/", "voice_conversion_models/")


# ------------------------------------------------------------------ the worker (runs in the other interpreter)


def _coqui_worker(fd: int, model_path: str, config_path: str, speaker: str | None, language: str | None,
                  threads: int) -> None:
    """Worker entry point. Its source is sent to the interpreter as ``-c``: stdlib imports at the top only.

    Messages in: ("synthesize", id, text) | ("stop",).
    Messages out: ("ready", info) | ("init_error", text) | ("result", id, int16 LE bytes, rate, ms) |
    ("error", id, text). A native crash kills the process; the parent sees EOF on the socket.
    """
    import importlib
    import os
    import signal
    import time
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    conn = Connection(fd)
    t0 = time.perf_counter()
    try:
        import numpy as np

        torch = importlib.import_module("torch")  # untyped on purpose: torch is not in the agent's venv
        torch.set_num_threads(max(1, threads))
        from TTS.api import TTS

        tts = TTS(model_path=model_path, config_path=config_path, progress_bar=False).to("cpu")
        rate = int(tts.synthesizer.output_sample_rate)
    except BaseException as exc:  # report whatever stopped the load
        conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", {"pid": os.getpid(), "load_ms": (time.perf_counter() - t0) * 1000.0, "rate": rate}))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "synthesize":
            return
        _, req_id, text = msg
        t1 = time.perf_counter()
        try:
            with torch.inference_mode():
                wav = tts.tts(text, speaker=speaker, language=language)
            audio = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
            pcm = (audio * 32767.0).round().astype("<i2").tobytes()
            conn.send(("result", req_id, pcm, rate, (time.perf_counter() - t1) * 1000.0))
        except Exception as exc:  # a Python-level failure: the worker stays usable
            conn.send(("error", req_id, f"{type(exc).__name__}: {exc}"))


def _worker_program() -> str:
    return worker_program(_coqui_worker)


# ------------------------------------------------------------------ validation


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _local_file(path: str | os.PathLike[str], what: str) -> Path:
    text = os.fspath(path)
    p = Path(text).expanduser()
    if not p.exists():
        if text.startswith(_MODEL_NAME_PREFIXES):
            raise TtsError(f"coqui {what} {text!r} looks like a Coqui model name; names download from the "
                           "internet and are refused: give the local file path")
        raise TtsError(f"coqui {what} not found: {p}")
    if not p.is_file():
        raise TtsError(f"coqui {what} is not a regular file: {p}")
    if p.stat().st_size == 0:
        raise TtsError(f"coqui {what} is empty: {p}")
    return p.resolve()


def _check_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TtsError(f"coqui config {path} is unreadable: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TtsError(f"coqui config {path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise TtsError(f"coqui config {path} must hold a JSON object, not {type(config).__name__}")
    if not isinstance(config.get("model"), str):
        raise TtsError(f"coqui config {path} has no \"model\" entry (not a Coqui TTS config?)")
    return config


# ------------------------------------------------------------------ the engine


class CoquiTts:
    """:class:`~ari_agent.speech.tts.TextToSpeech` backed by a local Coqui model in a worker process.

    ``synthesize`` is blocking and thread-safe (requests are served one at a time); run it in a thread.
    The worker starts on the first call, or at :meth:`start`.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        config_path: str | os.PathLike[str],
        *,
        python: str | None = None,
        speaker: str | None = None,
        language: str | None = None,
        threads: int = 1,
        timeout_s: float = 30.0,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.model_path = _local_file(model_path, "model checkpoint")
        self.config_path = _local_file(config_path, "config")
        self.config = _check_config(self.config_path)
        interpreter = python or sys.executable
        found = shutil.which(interpreter)
        if found is None:
            raise TtsError(f"python interpreter for the coqui worker not found or not executable: {interpreter}")
        self.python = found
        self.speaker = speaker
        self.language = language
        self.threads = threads
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.model_sha256 = _file_sha256(self.model_path)
        self.config_sha256 = _file_sha256(self.config_path)
        self.cache_key = (f"coqui:{self.config['model']}:{self.model_sha256[:16]}:{self.config_sha256[:16]}:"
                          f"{speaker or '-'}:{language or '-'}:{LINE_RATE}")
        self._workers = WorkerSupervisor(self._launch, name="coqui", loads=str(self.model_path), task="synthesis",
                                         start_timeout_s=start_timeout_s, restart="on_demand")

    def _launch(self) -> WorkerProcess:
        args = {"model_path": str(self.model_path), "config_path": str(self.config_path), "speaker": self.speaker,
                "language": self.language, "threads": self.threads}
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, self.threads)), HF_HUB_OFFLINE="1")
        return run_in_interpreter(self.python, _coqui_worker, args, name="coqui", env=env)

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> CoquiTts:
        """Start the worker and wait until it has loaded the model (TtsError if it cannot)."""
        try:
            self._workers.start()
        except WorkerStartError as exc:
            raise TtsError(str(exc)) from None
        return self

    def __enter__(self) -> CoquiTts:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_pid(self) -> int | None:
        pids = self._workers.worker_pids()
        return pids[0] if pids else None

    @property
    def sample_rate(self) -> int | None:
        """The model's own output rate (known once the worker has loaded it)."""
        workers = self._workers.workers()
        return int(workers[0].info["rate"]) if workers else None

    @property
    def restarts(self) -> int:
        """Workers lost (crashed, hung, died while idle); each is replaced on the next call."""
        return self._workers.stats.lost

    def close(self) -> None:
        """Stop the worker (a later call starts a fresh one)."""
        self._workers.close()

    # -- requests --------------------------------------------------------------------------------

    def synthesize(self, text: str) -> Pcm:
        """Render ``text`` as int16 at 8 kHz (blocking). TtsError on any engine failure, never a hang."""
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        t0 = time.perf_counter()
        try:
            data, rate, infer_ms = self._workers.request("synthesize", text, timeout_s=self.timeout_s)
        except WorkerRefused as exc:
            raise TtsError(f"coqui synthesis failed: {exc}") from None
        except WorkerError as exc:
            raise TtsError(str(exc)) from None
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
        out = resample(pcm, int(rate), LINE_RATE) if int(rate) != LINE_RATE else pcm
        log.debug("coqui: %d chars -> %.2f s audio in %.0f ms (worker %.0f ms)", len(text), out.size / LINE_RATE,
                  (time.perf_counter() - t0) * 1000.0, infer_ms)
        return out
