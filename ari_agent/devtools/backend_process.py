"""The demo backend as a separate process on a free loopback port (benchmarks, demos)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

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
