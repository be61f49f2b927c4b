"""Real processes the fault drills start, stop and kill: a redis-server and ``ari-agent worker``s.

- :class:`RedisProcess` — a private redis-server on a loopback port with an append-only file fsync'd
  on every write (``appendfsync always``), so a SIGKILL loses nothing redis acknowledged; ``stop``
  and ``start`` again on the same port and data directory are an outage and a recovery.
- :class:`WorkerSupervisor` — N ``ari-agent worker`` processes, each restarted when it exits (as
  systemd's ``Restart=always`` or a Kubernetes Deployment would), with the restarts counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import psutil
import redis

from ari_agent.devtools.backend_process import free_port
from ari_agent.errors import AriAgentError

StopMode = Literal["kill", "term"]


class RedisProcess:
    def __init__(self, work_dir: Path, *, port: int | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise AriAgentError("redis-server is not installed (apt-get install redis-server)")
        self.exe = exe
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.work_dir = work_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout_s: float = 30.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with (self.work_dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.work_dir),
                 "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                 "--loglevel", "warning"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.BusyLoadingError:
                    pass  # loading the append-only file
                except redis.ConnectionError:
                    if self.proc.poll() is not None:
                        raise AriAgentError(f"redis-server exited with {self.proc.returncode} "
                                            f"(see {self.work_dir / 'redis.log'})") from None
                if time.monotonic() > deadline:
                    self.stop("kill")
                    raise AriAgentError("redis-server did not start")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, mode: StopMode = "kill") -> None:
        """``kill``: SIGKILL (a crash: only the fsync'd AOF survives); ``term``: a clean shutdown."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class WorkerSupervisor:
    """``count`` ``ari-agent worker`` processes on ``queue``, each restarted after it exits."""

    def __init__(self, redis_url: str, queue: str, log_dir: Path, *, count: int = 1,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 restart_delay_s: float = 0.5) -> None:
        self.redis_url = redis_url
        self.queue = queue
        self.log_dir = log_dir
        self.count = count
        self.extra_args = extra_args
        self.env = {**os.environ, **(env or {})}
        self.restart_delay_s = restart_delay_s
        self.procs: dict[int, asyncio.subprocess.Process] = {}  # slot -> running process
        self.names: dict[int, str] = {}  # pid -> RQ worker name
        self.started = 0
        self.exits: dict[str, int] = {}  # "rc=<code>" -> how many
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def restarts(self) -> int:
        return max(0, self.started - self.count)

    async def start(self) -> None:
        await asyncio.to_thread(self.log_dir.mkdir, parents=True, exist_ok=True)
        self._tasks = [asyncio.create_task(self._keep(slot), name=f"drill-worker-{slot}")
                       for slot in range(self.count)]

    async def _spawn(self, slot: int) -> asyncio.subprocess.Process:
        name = f"drill-{slot}-{self.started}"
        self.started += 1
        with (self.log_dir / f"worker-{slot}.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_agent.cli.worker", "--redis-url", self.redis_url, "--queue", self.queue,
                "--maintenance-interval", "2", "--redis-wait", "600", "--log-level", "WARNING", "--name", name,
                *self.extra_args, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env=self.env)
        self.names[proc.pid] = name
        return proc

    async def _keep(self, slot: int) -> None:
        while not self._stopping:
            proc = await self._spawn(slot)
            self.procs[slot] = proc
            rc = await proc.wait()
            self.procs.pop(slot, None)
            self.names.pop(proc.pid, None)
            self.exits[f"rc={rc}"] = self.exits.get(f"rc={rc}", 0) + 1
            if not self._stopping:
                await asyncio.sleep(self.restart_delay_s)

    def running(self) -> list[asyncio.subprocess.Process]:
        return [p for p in self.procs.values() if p.returncode is None]

    @staticmethod
    def horse_of(proc: asyncio.subprocess.Process) -> psutil.Process | None:
        """The work-horse (forked child running a job) of a worker, if it has one now."""
        try:
            children = psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return None
        return children[0] if children else None

    async def stop(self) -> None:
        self._stopping = True
        for proc in list(self.procs.values()):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in list(self.procs.values()):
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
