"""Runs the agent inside the current event loop, next to a test caller: for tests and benchmarks.

It is the same ``CallManager`` that ``ari-agent run`` serves with; only the process is shared, so a
benchmark can read per-call RTP statistics and tests can check for leaked tasks and sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from ari_agent.call.app import ari_client, build_call_manager
from ari_agent.call.manager import CallManager
from ari_agent.config import Config
from ari_agent.devtools.test_caller import TestCaller
from ari_agent.telephony.ari import AriClient


class InProcessAgent:
    def __init__(self, cfg: Config, *, record_lateness: bool = False) -> None:
        self.cfg = cfg
        self.record_lateness = record_lateness
        self.manager: CallManager | None = None
        self.ari: AriClient | None = None
        self.caller: TestCaller | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InProcessAgent:
        await self.start()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) \
            -> None:
        await self.stop()

    async def start(self, connect_timeout_s: float = 10.0) -> None:
        self.manager = await build_call_manager(self.cfg, record_lateness=self.record_lateness)
        self.manager.keep_sessions = True
        self._task = asyncio.create_task(self.manager.run(), name="ari-agent-events")
        deadline = asyncio.get_running_loop().time() + connect_timeout_s
        while self.manager.stream is None or not self.manager.stream.connected.is_set():
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("agent did not connect to ARI")
            await asyncio.sleep(0.02)
        self.ari = ari_client(self.cfg)
        self.caller = TestCaller(self.ari, self.cfg.pbx)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.manager is not None:
            await self.manager.close()
            await self.manager.ari.close()
        if self.ari is not None:
            await self.ari.close()
