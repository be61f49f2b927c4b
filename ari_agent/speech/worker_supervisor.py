"""Worker processes for speech engines that can crash or hog the GIL, under one supervisor.

An engine (whisper.cpp, Coqui) runs in a worker process that loads its model once and then answers
requests over a :class:`multiprocessing.connection.Connection`. The protocol, both ways, is tuples:

- worker -> parent, once at start: ``("ready", info)`` (``info`` a dict; ``"load_ms"`` and any
  engine facts such as the sample rate) or ``("init_error", text)``;
- parent -> worker: ``(verb, request_id, *payload)`` or ``("stop",)``;
- worker -> parent: ``("result", request_id, *payload)`` or ``("error", request_id, text)`` (a
  Python-level failure: the worker stays usable).

Two ways to start one: :func:`spawn_function` (a ``multiprocessing`` "spawn" child running a target
function of this interpreter) and :func:`run_in_interpreter` (a plain subprocess of another
interpreter, e.g. another virtual environment, running a self-contained function's source).

:class:`WorkerSupervisor` keeps ``size`` such workers and serves one request per worker at a time.
A worker that dies (segfault, OOM kill), overruns its time limit, or answers out of order is killed
and replaced; the request comes back as a :class:`WorkerLost` within milliseconds of the death -
never a hang. Replacement is either ``"background"`` (a thread restarts it at once, with back-off;
after ``max_restarts`` consecutive failed starts the supervisor is :attr:`~WorkerSupervisor.broken`)
or ``"on_demand"`` (the next request starts it, and a failed start is that request's error).
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import IO, Any, Literal, Protocol

from ari_agent.errors import AriAgentError

log = logging.getLogger(__name__)

RestartPolicy = Literal["background", "on_demand"]
_STOP_GRACE_S = 2.0
_KILL_WAIT_S = 5.0


class WorkerError(AriAgentError):
    """A worker could not serve a request (the message says why, with the worker's output tail)."""


class WorkerStartError(WorkerError):
    """A worker could not be started or did not get ready (bad model, missing engine, no answer)."""


class WorkerUnavailable(WorkerError):
    """No worker was free in time, or the supervisor gave up restarting workers."""


class WorkerLost(WorkerError):
    """The worker died, timed out or broke the protocol during the request; it has been killed."""


class WorkerRefused(WorkerError):
    """The worker answered the request with an error of its own; it stays in service."""


def describe_exit(code: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def with_output(message: str, output: str) -> str:
    return message + (f"\n--- worker output ---\n{output}" if output else "")


# ------------------------------------------------------------------ one worker process


class _Process(Protocol):
    """What the supervisor needs of an OS process, whichever way it was started."""

    pid: int
    sentinel: int | None  # readable once the process has ended (None: watch the connection only)

    def exitcode(self) -> int | None: ...

    def wait(self, timeout: float) -> int | None: ...

    def kill(self) -> None: ...

    def output_tail(self, limit: int) -> str: ...

    def release(self) -> None: ...


class _SpawnedProcess:
    def __init__(self, process: BaseProcess) -> None:
        self._process = process
        self.pid = process.pid or 0
        self.sentinel: int | None = process.sentinel

    def exitcode(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float) -> int | None:
        self._process.join(timeout=timeout)
        return self._process.exitcode

    def kill(self) -> None:
        try:
            self._process.kill()
        except (OSError, ValueError):
            pass

    def output_tail(self, limit: int) -> str:
        return ""  # a spawned child writes to the parent's stderr

    def release(self) -> None:
        pass


class _Subprocess:
    def __init__(self, proc: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self._proc = proc
        self._output = output
        self.pid = proc.pid
        self.sentinel: int | None = None  # the socket's EOF tells of its death

    def exitcode(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.kill()
            except OSError:
                pass

    def output_tail(self, limit: int) -> str:
        try:
            self._output.flush()
            self._output.seek(0, os.SEEK_END)
            self._output.seek(max(0, self._output.tell() - limit))
            return self._output.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def release(self) -> None:
        self._output.close()


class WorkerProcess:
    """One started worker: its process, the parent's end of the connection, and its ready info."""

    def __init__(self, process: _Process, conn: mpc.Connection, name: str) -> None:
        self._process = process
        self.conn = conn
        self.name = name
        self.pid = process.pid
        self.info: dict[str, Any] = {}
        self.retired = False

    @property
    def load_ms(self) -> float:
        return float(self.info.get("load_ms", 0.0))

    def alive(self) -> bool:
        return self._process.exitcode() is None

    def exitcode(self) -> int | None:
        return self._process.exitcode()

    def wait_exit(self, timeout: float) -> str:
        """Wait (at most ``timeout``) for the process to end; how it ended, in words."""
        return describe_exit(self._process.wait(timeout))

    def output_tail(self, limit: int = 600) -> str:
        """The end of what the worker wrote to stdout/stderr ('' where it writes to ours)."""
        return self._process.output_tail(limit)

    def wait_event(self, timeout: float | None) -> bool:
        """Wait until the worker wrote something or ended; False when ``timeout`` passed first."""
        waitables: list[Any] = [self.conn]
        if self._process.sentinel is not None:
            waitables.append(self._process.sentinel)
        return bool(mpc.wait(waitables, timeout=timeout))

    def receive(self) -> Any:
        """The next message, or None when the worker is gone (ended with nothing to read, or EOF)."""
        if not mpc.wait([self.conn], timeout=0):
            return None
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def kill(self) -> None:
        """Kill the process, reap it and free the parent's ends (idempotent)."""
        self._process.kill()
        if self._process.wait(_KILL_WAIT_S) is None:
            log.error("%s worker %d did not exit after SIGKILL", self.name, self.pid)
        self.conn.close()
        self._process.release()


def spawn_function(target: Callable[..., None], args: Sequence[Any], *, name: str) -> WorkerProcess:
    """Start ``target(conn, *args)`` in a ``multiprocessing`` "spawn" child of this interpreter.

    ``target`` must be importable by its module's name (the child imports it again).
    """
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=target, args=(child, *args), daemon=True, name=f"ari-agent-{name}")
    proc.start()
    child.close()
    return WorkerProcess(_SpawnedProcess(proc), parent, name)


def worker_program(target: Callable[..., None]) -> str:
    """The source run by :func:`run_in_interpreter`: ``target``'s own source, then a call with the
    JSON keyword arguments of ``sys.argv[1]``. ``target`` imports what it needs inside its body."""
    return inspect.getsource(target) + f"\nimport json, sys\n{target.__name__}(**json.loads(sys.argv[1]))\n"


def run_in_interpreter(python: str, target: Callable[..., None], kwargs: Mapping[str, Any], *, name: str,
                       env: Mapping[str, str] | None = None) -> WorkerProcess:
    """Start ``target(fd=<socket>, **kwargs)`` under the interpreter ``python`` (``python -I -c``).

    A plain subprocess, not a ``multiprocessing`` child: spawn would overwrite the child's
    ``sys.path`` with ours, so another virtual environment's packages would not be seen. The worker
    wraps its end of a socket pair in a :class:`~multiprocessing.connection.Connection`; its
    stdout and stderr go to a temporary file (see :meth:`WorkerProcess.output_tail`).
    """
    parent_sock, child_sock = socket.socketpair()
    output = tempfile.TemporaryFile(prefix=f"ari-agent-{name}-")
    args = json.dumps({"fd": child_sock.fileno(), **kwargs})
    try:
        proc = subprocess.Popen(
            [python, "-I", "-c", worker_program(target), args],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            pass_fds=(child_sock.fileno(),), env=None if env is None else dict(env), close_fds=True,
        )
    except OSError as exc:
        parent_sock.close()
        output.close()
        raise WorkerStartError(f"could not start the {name} worker with {python}: {exc}") from None
    finally:
        child_sock.close()
    return WorkerProcess(_Subprocess(proc, output), mpc.Connection(parent_sock.detach()), name)


# ------------------------------------------------------------------ the supervisor


@dataclass
class WorkerStats:
    crashes: int = 0
    """Workers that died: while idle, while taking a request, or during one."""
    timeouts: int = 0
    """Requests that overran their time limit (the worker was killed)."""
    lost: int = 0
    """Workers retired for any failure (crashes, timeouts, answers out of order)."""
    restarts: int = 0
    """Replacement workers started."""


class WorkerSupervisor:
    """Up to ``size`` workers of one kind; each serves one request at a time (thread-safe).

    ``launch`` starts one worker process (:func:`spawn_function`, :func:`run_in_interpreter`);
    the supervisor waits for its ``"ready"``. ``loads`` names what the workers load (for messages),
    ``task`` what a request is ("the utterance", "synthesis").
    """

    def __init__(
        self,
        launch: Callable[[], WorkerProcess],
        *,
        name: str,
        loads: str,
        task: str = "the request",
        size: int = 1,
        start_timeout_s: float = 60.0,
        restart: RestartPolicy = "background",
        max_restarts: int = 5,
        stats: WorkerStats | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a worker supervisor needs at least one worker")
        self.name = name
        self.loads = loads
        self.task = task
        self.size = size
        self.start_timeout_s = start_timeout_s
        self.restart = restart
        self.max_restarts = max_restarts
        self.stats = stats if stats is not None else WorkerStats()
        self._launch = launch
        self._idle: queue.Queue[WorkerProcess] = queue.Queue()
        self._all: set[WorkerProcess] = set()
        self._vacant = size  # worker places with no worker in them (nor one starting)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._failed_starts = 0
        self._broken: str | None = None
        self._closed = False

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every missing worker and wait until each is ready (WorkerStartError if one is not;
        the supervisor is then closed)."""
        self._closed = False
        try:
            while self._take_vacancy():
                self._start_into_place()
        except WorkerStartError:
            self.close()
            raise

    @property
    def broken(self) -> str | None:
        """Why background restarts were given up, or None while the supervisor is healthy."""
        return self._broken

    def workers(self) -> list[WorkerProcess]:
        with self._lock:
            return sorted(self._all, key=lambda w: w.pid)

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.workers()]

    def close(self) -> None:
        """Ask every worker to stop, give them a moment together, then kill what is left.

        ``"background"``: final. ``"on_demand"``: a later request starts a fresh worker.
        """
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for w in workers:
            try:
                w.conn.send(("stop",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + _STOP_GRACE_S
        for w in workers:
            w.wait_exit(max(0.0, deadline - time.monotonic()))
            self._retire(w)
        while True:  # workers retired by close are not restarted
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break

    # -- starting and retiring workers -----------------------------------------------------------

    def _take_vacancy(self) -> bool:
        with self._lock:
            if self._vacant <= 0:
                return False
            self._vacant -= 1
            return True

    def _give_back_vacancy(self) -> None:
        with self._lock:
            self._vacant += 1

    def _start_into_place(self) -> WorkerProcess:
        """Start a worker into a place already taken; it goes to the idle queue."""
        try:
            worker = self._start_one()
        except WorkerStartError:
            self._give_back_vacancy()
            raise
        self._idle.put(worker)
        return worker

    def _start_one(self) -> WorkerProcess:
        worker = self._launch()
        answered = worker.wait_event(self.start_timeout_s)
        msg = worker.receive() if answered else None
        if not (isinstance(msg, tuple) and len(msg) > 1 and msg[0] == "ready" and isinstance(msg[1], dict)):
            if isinstance(msg, tuple) and len(msg) > 1 and msg[0] == "init_error":
                reason = str(msg[1])
            elif not answered:
                reason = f"no answer within {self.start_timeout_s:.0f} s (killed)"
            elif msg is None:
                reason = f"worker {worker.wait_exit(1.0)}"
            else:
                reason = f"bad answer {msg!r:.80}"
            tail = worker.output_tail()
            worker.kill()
            raise WorkerStartError(with_output(f"{self.name} worker could not load {self.loads}: {reason}", tail))
        worker.info = dict(msg[1])
        with self._lock:
            self._all.add(worker)
        log.info("%s worker %d ready (model loaded in %.0f ms)", self.name, worker.pid, worker.load_ms)
        return worker

    def _retire(self, worker: WorkerProcess) -> None:
        with self._lock:
            if worker.retired:
                return
            worker.retired = True
            self._all.discard(worker)
            self._vacant += 1
        worker.kill()

    def _lose(self, worker: WorkerProcess, message: str) -> WorkerLost:
        """Retire a failed worker (its replacement follows the restart policy); the error to raise."""
        tail = worker.output_tail()
        self.stats.lost += 1
        self._retire(worker)
        if self.restart == "background" and not self._closed:
            threading.Thread(target=self._restart_in_background, name=f"{self.name}-restart", daemon=True).start()
        return WorkerLost(with_output(message, tail))

    def _restart_in_background(self) -> None:
        while not self._closed and self._broken is None:
            if not self._take_vacancy():
                return  # the place was filled already
            try:
                worker = self._start_one()
            except WorkerStartError as exc:
                self._give_back_vacancy()
                with self._lock:
                    self._failed_starts += 1
                    failed = self._failed_starts
                log.error("%s worker restart failed (%d in a row): %s", self.name, failed, exc)
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

    # -- requests --------------------------------------------------------------------------------

    def _acquire(self, deadline: float | None, limit_s: float) -> WorkerProcess:
        """A live idle worker, waiting until ``deadline`` (None: as long as it takes)."""
        while True:
            if self._broken is not None:
                raise WorkerUnavailable(f"{self.name} pool is broken: {self._broken}")
            if self.restart == "on_demand" and self._idle.empty() and self._take_vacancy():
                replacing = self.stats.lost > self.stats.restarts  # a lost worker's place is filled
                self._start_into_place()  # in this thread: a failed start is this request's error
                if replacing:
                    self.stats.restarts += 1
            if self.restart == "background" and self._closed:
                raise WorkerUnavailable(f"the {self.name} workers are closed")
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                worker = self._idle.get(timeout=0.25 if remaining is None else max(0.0, min(remaining, 0.25)))
            except queue.Empty:
                if remaining is not None and remaining <= 0:
                    raise WorkerUnavailable(f"no {self.name} worker free within {limit_s:.1f} s") from None
                continue
            if worker.alive():
                return worker
            self.stats.crashes += 1
            how = describe_exit(worker.exitcode())
            log.error("%s worker %d died while idle (%s); replacing it", self.name, worker.pid, how)
            self._lose(worker, f"{self.name} worker {worker.pid} died while idle ({how})")

    @contextmanager
    def _leased(self, deadline: float | None, limit_s: float) -> Iterator[WorkerProcess]:
        worker = self._acquire(deadline, limit_s)
        try:
            yield worker
        finally:
            if not worker.retired:
                self._idle.put(worker)

    def request(self, verb: str, *payload: Any, timeout_s: float, deadline: float | None = None) -> tuple[Any, ...]:
        """Send ``(verb, id, *payload)`` to a free worker and return the payload of its result.

        The answer must come within ``timeout_s`` of sending; with ``deadline`` (a
        :func:`time.monotonic` time) the wait for a free worker counts too and the answer must come
        by then (``timeout_s`` is then the limit named in messages). Raises :class:`WorkerUnavailable`,
        :class:`WorkerStartError` (``"on_demand"``), :class:`WorkerLost` or :class:`WorkerRefused`.
        """
        with self._leased(deadline, timeout_s) as worker:
            req_id = next(self._ids)
            try:
                worker.conn.send((verb, req_id, *payload))
            except (OSError, ValueError) as exc:
                self.stats.crashes += 1
                raise self._lose(worker, f"{self.name} worker {worker.pid} could not take the request: {exc}") from None
            wait_s = timeout_s if deadline is None else max(0.0, deadline - time.monotonic())
            if not worker.wait_event(wait_s):
                self.stats.timeouts += 1
                raise self._lose(worker, f"{self.name} worker {worker.pid} timed out after {timeout_s:.1f} s (killed)")
            msg = worker.receive()
            if msg is None:
                self.stats.crashes += 1
                how = worker.wait_exit(2.0)
                raise self._lose(worker, f"{self.name} worker {worker.pid} crashed ({how}) during {self.task}")
            if not (isinstance(msg, tuple) and len(msg) >= 2 and msg[1] == req_id and msg[0] in ("result", "error")):
                raise self._lose(worker, f"{self.name} worker {worker.pid} answered out of order: {msg!r:.80}")
            if msg[0] == "error":
                raise WorkerRefused(str(msg[2]) if len(msg) > 2 else "unknown error")
            return tuple(msg[2:])
