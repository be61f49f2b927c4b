"""A private redis-server per test: a free loopback port, a temp dir, no persistence, killed afterwards.

Import the fixture into a test module (``from .conftest_redis import redis_server``); it skips the
test when ``redis-server`` is not installed (``apt-get install -y redis-server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from ari_agent.devtools.backend_process import free_port

REPO = Path(__file__).resolve().parents[2]


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: scripts/install.sh installs it (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = (workdir / "redis.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        self.stop()
                        log = (workdir / "redis.log").read_text()
                        raise RuntimeError(f"redis-server did not start: {log}") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, private redis-server."""
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def demo_backend(tmp_path: Path) -> Iterator[str]:
    """The URL of ``ari-agent backend`` in a subprocess (writes answer 30 ms after committing)."""
    port = free_port()
    log = (tmp_path / "backend.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ari_agent.cli.backend", "--port", str(port), "--db", str(tmp_path / "demo.db"),
         "--write-delay-after-ms", "30", "--log-level", "WARNING"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("demo backend did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Workers:
    """``ari-agent worker`` subprocesses on one queue."""

    def __init__(self, redis_url: str, tmp_path: Path, queue: str, env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0
        self.names: dict[int, str] = {}
        self.queue = queue
        # faulthandler: a hung worker shows every thread's stack on SIGABRT (see the tests' burst helper)
        self.env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})}

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        n = self.started
        self.started += 1
        log = (self.tmp_path / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ari_agent.cli.worker", "--redis-url", self.redis_url, "--queue", self.queue,
             "--no-scheduler", "--maintenance-interval", "2", "--log-level", "WARNING",
             "--name", f"it-worker-{n}", *extra],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        log.close()
        self.procs.append(proc)
        self.names[proc.pid] = f"it-worker-{n}"
        return proc

    def busy(self) -> tuple[subprocess.Popen[bytes], psutil.Process] | None:
        """A live worker and its work-horse, when one is running a job."""
        for proc in self.procs:
            if proc.poll() is not None:
                continue
            try:
                children = psutil.Process(proc.pid).children()
            except psutil.NoSuchProcess:
                continue
            if children:
                return proc, children[0]
        return None

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-8000:] for p in sorted(self.tmp_path.glob("worker-*.log")))


def redis_dump(conn: redis.Redis) -> bytes:
    """Every value stored in redis (RQ's zlib-compressed job data decompressed), for leak checks."""
    import zlib

    chunks: list[bytes] = []
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key)
        values: list[Any]
        if kind == b"hash":
            values = list(conn.hgetall(key).values())
        elif kind == b"string":
            values = [conn.get(key) or b""]
        elif kind == b"list":
            values = list(conn.lrange(key, 0, -1))
        elif kind == b"zset":
            values = list(conn.zrange(key, 0, -1))
        elif kind == b"set":
            values = list(conn.smembers(key))
        else:
            values = []
        for value in values:
            chunks.append(value)
            try:
                chunks.append(zlib.decompress(value))
            except zlib.error:
                pass
    return b"\n".join(chunks)
