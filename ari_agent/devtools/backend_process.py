"""The demo backend as a separate process on a free loopback port (benchmarks, demos, fault drills)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from ari_agent.errors import AriAgentError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def demo_backend_process(work_dir: Path, start_timeout_s: float = 20.0) -> AsyncIterator[str]:
    """``ari-agent backend`` in a child process over a fresh database; yields its base URL."""
    port = free_port()
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    db = work_dir / f"demo-backend-{port}.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_agent.cli.backend", "--port", str(port), "--db", str(db), "--log-level", "WARNING",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = asyncio.get_running_loop().time() + start_timeout_s
        async with aiohttp.ClientSession() as http:
            while True:
                if proc.returncode is not None:
                    raise AriAgentError(f"the demo backend exited with {proc.returncode}")
                try:
                    async with http.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise AriAgentError("the demo backend did not start")
                await asyncio.sleep(0.1)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            db.unlink()


class BackendProcess:
    """``ari-agent backend`` as a child process (blocking API, for drills and fixtures): ``start``,
    ``get_json``, ``stop``. ``extra_args`` are backend options (``--write-delay-after-ms 30``)."""

    def __init__(self, work_dir: Path, *extra_args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.work_dir = work_dir
        self.db = work_dir / f"demo-backend-{self.port}.sqlite3"
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with (self.work_dir / "backend.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ari_agent.cli.backend", "--port", str(self.port), "--db", str(self.db),
                 "--log-level", "WARNING", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.get_json("/health", timeout_s=1).get("ok"):
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise AriAgentError(f"the demo backend exited with {self.proc.returncode} (see {self.work_dir})")
            if time.monotonic() > deadline:
                self.stop()
                raise AriAgentError("the demo backend did not start")
            time.sleep(0.05)

    def get_json(self, path: str, timeout_s: float = 10.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout_s) as resp:
            return json.loads(resp.read())

    def send_json(self, method: str, path: str, body: Any, timeout_s: float = 10.0) -> Any:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
