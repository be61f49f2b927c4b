"""The one Redis follow loop, as the kill switch and the call layer's followers use it, against a real
redis-server that is stopped and started again on the same port: messages arrive before and after, and
the outage is one warning and one "again" line per follower, however many retries it took."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ari_agent.call.live_calls import follow_channel
from ari_agent.devtools.backend_process import free_port
from ari_agent.governance.killswitch import KillSwitchState, KillSwitchWatch

pytestmark = pytest.mark.integration


class Server:
    """A redis-server that can be stopped and started again on the same port."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: scripts/install.sh installs it (apt-get install redis-server)")
        self.exe, self.workdir, self.port = exe, workdir, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: asyncio.subprocess.Process | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir), "--save", "",
            "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        client = aioredis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            for _ in range(500):
                try:
                    if await client.ping():
                        return
                except (OSError, aioredis.RedisError):
                    await asyncio.sleep(0.02)
            raise RuntimeError("redis-server did not start")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 5)


async def _until(cond: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    async def loop() -> None:
        while not cond():
            await asyncio.sleep(0.02)
    try:
        await asyncio.wait_for(loop(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_both_followers_ride_out_a_redis_restart_with_one_warning_each(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = Server(tmp_path / "redis")
    await server.start()
    caplog.set_level("DEBUG", logger="ari_agent")
    watch = KillSwitchWatch(server.url, poll_s=0.1)
    got: list[object] = []
    subscribed: list[int] = []

    async def on_message(raw: object) -> None:
        got.append(raw)

    async def on_subscribed() -> None:
        subscribed.append(1)

    follower = asyncio.create_task(follow_channel(server.url, "ch", on_message, what="takeover requests",
                                                  on_subscribed=on_subscribed, retry_s=0.1))
    await watch.start()
    pub = aioredis.Redis.from_url(server.url)
    try:
        await asyncio.wait_for(watch.connected.wait(), 10)
        await _until(lambda: len(subscribed) == 1, "the follower to subscribe")
        await pub.publish("ch", b"one")
        await pub.publish(watch.key, KillSwitchState(True, "drill", "ops", "t", 1).to_json())
        await _until(lambda: got == [b"one"] and watch.on, "both messages")
        await pub.aclose()

        await server.stop()
        await _until(lambda: not watch.redis_ok, "the kill switch to notice")
        await asyncio.sleep(1.5)  # many retries of both followers
        assert watch.on  # held while Redis is away
        await server.start()
        await asyncio.wait_for(watch.connected.wait(), 15)
        await _until(lambda: len(subscribed) == 2, "the follower to subscribe again")

        pub = aioredis.Redis.from_url(server.url)
        await pub.publish("ch", b"two")
        await pub.publish(watch.key, KillSwitchState(False, "over", "ops", "t", 2).to_json())
        await _until(lambda: got == [b"one", b"two"] and not watch.on, "both messages after the restart")
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await watch.aclose()
        await pub.aclose()
        await server.stop()

    for name, what in (("ari_agent.governance.killswitch", "kill switch"),
                       ("ari_agent.call.live_calls", "takeover requests")):
        mine = [r for r in caplog.records if r.name == name]
        outage = [r.getMessage() for r in mine
                  if r.levelno == logging.WARNING and "Redis unreachable" in r.getMessage()]
        back = [r.getMessage() for r in mine if r.getMessage() == f"{what}: subscribed to Redis again"]
        assert len(outage) == 1 and outage[0].startswith(f"{what}: Redis unreachable"), outage
        assert len(back) == 1, [r.getMessage() for r in mine]
        assert sum(1 for r in mine if r.levelno == logging.DEBUG and "Redis unreachable" in r.getMessage()) >= 2
    ks_outage = next(r.getMessage() for r in caplog.records
                     if r.name == "ari_agent.governance.killswitch" and "Redis unreachable" in r.getMessage())
    assert "holding the last state (on)" in ks_outage
