"""Faults of the agent process on the real Asterisk 22: no caller is left in dead air.

The agent runs as a real ``ari-agent run`` process (its own event loop, signals, health server). A
test caller (dialplan/test-caller.conf) calls in and stays on the line; then:

- ``kill -9`` mid-call and restart: the restarted agent's connect cleanup sends the caller to the
  queue (reason ``agent_restart``), hangs up the dead process's media channel, destroys its bridge;
- ``kill -9`` and no restart at all: the dialplan lease (TIMEOUT(absolute), renewed by the agent)
  runs out and Asterisk itself moves the caller to the queue (reason ``agent_unresponsive``);
- SIGTERM mid-call: the agent drains (``/readyz`` false, a new caller goes to the queue with reason
  ``draining``, the call in progress is handed off at the deadline) and exits 0.

"In the queue" = the caller's channel runs ``Queue()`` in ``[agent-handoff]`` (the Local/ desk in
dialplan/agent-desk.conf answers it). Timings are measured and printed (`-s` shows them); the only
bounds are generous poll deadlines, so a loaded machine cannot make them flake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ari_agent.config import load_config
from ari_agent.devtools.backend_process import free_port
from ari_agent.devtools.test_caller import TestCaller, TestCallResult, write_wav
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.records.store import CallRecordStore
from ari_agent.telephony.ari import AriClient, AriNotFound

from .conftest import wait_until_clean

pytestmark = [pytest.mark.integration, pytest.mark.fault]

APP = "ari-agent"
REPO = Path(__file__).resolve().parents[2]


class AgentProcess:
    """``ari-agent run`` in a child process (greet-and-listen conversation: the call stays up)."""

    def __init__(self, tmp_path: Path, name: str, **env: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"agent-{name}.log"
        base = {
            "ARI_AGENT__CONVERSATION__MODE": "greet_and_listen",
            "ARI_AGENT__AGENT__LISTEN_AFTER_GREETING_S": "120",
            "ARI_AGENT__AGENT__RECORDINGS_DIR": str(tmp_path / "recordings"),
            "ARI_AGENT__TTS__CACHE_DIR": "/tmp/ari-agent-test-state/prompt-cache",
            "ARI_AGENT__METRICS__BIND": f"127.0.0.1:{self.port}",
            # No Redis here: the restart cleanup must work without it (minimal context).
            "ARI_AGENT__REDIS__URL": f"redis://127.0.0.1:{free_port()}/0",
            "ARI_AGENT__LOG__LEVEL": "INFO",
            # the cheap engines (CI time; stt/tts "auto" would load whisper and Piper where prepared)
            "ARI_AGENT__STT__ENGINE": "pocketsphinx",
            "ARI_AGENT__TTS__ENGINE": "espeak-ng",
        }
        base.update({f"ARI_AGENT__{k.upper()}": v for k, v in env.items()})
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ARI_AGENT__")} | base
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        log = self.log_path.open("ab")
        exe = Path(sys.executable).with_name("ari-agent")
        cmd = [str(exe), "run"] if exe.exists() else [
            sys.executable, "-c", "import sys; from ari_agent.cli import main; sys.exit(main())", "run"]
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except OSError:
            return 0, {}

    async def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds from start until /readyz said ready (connected to ARI)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, _ = await asyncio.to_thread(self.probe, "/readyz")
            if status == 200:
                return time.monotonic() - self.started_at
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"agent not ready (rc={self.proc.poll()}):\n{self.tail()}")
            await asyncio.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def agents(pbx: LocalPbx) -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for a in started:
        a.stop()


@pytest.fixture
async def test_ari(pbx: LocalPbx) -> AsyncIterator[AriClient]:
    cfg = load_config(None, env={})
    async with AriClient(cfg.ari.url, cfg.ari.username, cfg.ari.password.get_secret_value(), "ari-agent-tests") as c:
        yield c


@pytest.fixture
def quiet_wav(tmp_path: Path) -> Path:
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(4000, dtype=np.int16))
    return wav


class Call:
    """A test caller that stays on the line (it hangs up only at the end of the test)."""

    def __init__(self, ari: AriClient, wav: Path) -> None:
        self.ari = ari
        self.caller = TestCaller(ari, load_config(None, env={}).pbx)
        self.wav = wav
        self.task: asyncio.Task[TestCallResult] | None = None
        self.call_id = ""

    async def place(self) -> str:
        call_id, _ = self.caller.prepare(self.wav)
        self.call_id = call_id
        self.task = asyncio.create_task(self.caller.place(
            self.wav, pre_wait_s=0, tail_wait_s=0, caller_hangs_up=False, max_duration_s=120, call_id=call_id))
        return f"{call_id}-leg"

    async def hang_up(self) -> None:
        with contextlib.suppress(Exception):
            await self.ari.hangup(f"{self.call_id}-leg")
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 15)


async def channel(ari: AriClient, cid: str) -> dict[str, Any] | None:
    try:
        return await ari.get_channel(cid)
    except AriNotFound:
        return None


async def wait_for(predicate: Any, timeout_s: float, what: str) -> float:
    """Poll ``await predicate()`` until truthy; returns the monotonic time it first was."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f}s: {what}")
        await asyncio.sleep(0.02)


async def served(ari: AriClient, cid: str) -> bool:
    """The agent serves the caller: in Stasis of our app, bridged with an externalMedia channel."""
    ch = await channel(ari, cid)
    if ch is None or ch["dialplan"].get("app_name") != "Stasis":
        return False
    return any(c["id"].endswith("-media") for c in await ari.list_channels())


async def in_queue(ari: AriClient, cid: str) -> bool:
    ch = await channel(ari, cid)
    return ch is not None and ch["dialplan"].get("context") == "agent-handoff" \
        and ch["dialplan"].get("app_name") == "Queue"


async def desk_answered(ari: AriClient) -> bool:
    return any(c["dialplan"].get("context") == "agent-desk" and c["state"] == "Up" for c in await ari.list_channels())


async def ours_left(ari: AriClient) -> dict[str, list[str]]:
    """What of our app is still in Asterisk: callers in Stasis(ari-agent), media channels, bridges."""
    chans = await ari.list_channels()
    return {
        "stasis_callers": [c["id"] for c in chans if c["dialplan"].get("app_name") == "Stasis"
                           and str(c["dialplan"].get("app_data", "")).split(",")[0] == APP],
        "media_channels": [c["id"] for c in chans if c["id"].endswith("-media") or c["name"].startswith("UnicastRTP/")],
        # ARI-made (stasis) bridges only: Queue() bridges the caller with the desk in a bridge of its own.
        "bridges": [b["id"] for b in await ari.list_bridges() if b.get("bridge_class") == "stasis"],
    }


async def reason_of(ari: AriClient, cid: str) -> str:
    return await ari.get_variable(cid, "ARI_AGENT_REASON")


def leaked(left: dict[str, list[str]]) -> int:
    return sum(len(v) for v in left.values())


@dataclass
class Served:
    """What :func:`served_call` set up: the agent process and its callers, each served."""

    agent: AgentProcess
    calls: list[Call]
    cids: list[str]  # the callers' channel ids

    @property
    def cid(self) -> str:
        return self.cids[0]


@contextlib.asynccontextmanager
async def served_call(agents: list[AgentProcess], ari: AriClient, wav: Path, tmp_path: Path, name: str, *,
                      n: int = 1, settle_s: float = 1.0, clean_s: float = 10.0, **env: str) -> AsyncIterator[Served]:
    """Start an ``ari-agent run`` (``env``: its settings), place ``n`` calls that stay on the line, wait
    until the agent serves every one (in Stasis, one media channel each), then ``settle_s`` more (mid-call).
    On the way out the callers hang up; when the test body passed, Asterisk must be left clean."""
    agent = AgentProcess(tmp_path, name, **env)
    agents.append(agent)
    agent.start()
    await agent.wait_ready()
    calls = [Call(ari, wav) for _ in range(n)]
    try:
        cids = [await c.place() for c in calls]

        async def all_served() -> bool:
            media = [c for c in await ari.list_channels() if c["id"].endswith("-media")]
            return len(media) == n and all([await served(ari, cid) for cid in cids])

        await wait_for(all_served, 20 if n == 1 else 30, f"agent serving {n} call(s)")
        if settle_s:
            await asyncio.sleep(settle_s)
        yield Served(agent, calls, cids)
    finally:
        for c in calls:
            await c.hang_up()
    chans, bridges = await wait_until_clean(ari, clean_s)
    assert chans == [] and bridges == []


@pytest.mark.parametrize("restart_mode", ["greet_and_listen", "voice"])
async def test_kill9_mid_call_then_restart_sends_caller_to_queue(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path, restart_mode: str) -> None:
    """The restarted agent may be a voice agent that takes seconds to load its models: the orphan
    cleanup runs before that (``ari-agent run`` sweeps first), and again once connected."""
    async with served_call(agents, test_ari, quiet_wav, tmp_path, "first") as s:
        first, cid = s.agent, s.cid
        first.kill9()
        await asyncio.sleep(1.0)
        before = await ours_left(test_ari)
        # The fault as it was: the caller sits in Stasis with nobody serving it, media channel and bridge up.
        assert cid in before["stasis_callers"] and before["media_channels"] and before["bridges"], before

        second = AgentProcess(tmp_path, "second", conversation__mode=restart_mode)
        agents.append(second)
        second.start()
        restart = second.started_at
        t_queue = await wait_for(lambda: in_queue(test_ari, cid), 30, "caller in the queue after the restart")
        ready_s = await second.wait_ready()
        await wait_for(lambda: desk_answered(test_ari), 20, "queue member (agent desk) answered")
        assert await reason_of(test_ari, cid) == "agent_restart"
        left = await ours_left(test_ari)
        await asyncio.sleep(0.5)
        left = await ours_left(test_ari)
        print(f"\nkill -9 + restart ({restart_mode}): caller in queue {t_queue - restart:.2f}s after the restart "
              f"(agent ready {ready_s:.2f}s after start); leaked after cleanup: {leaked(left)} {left}; "
              f"before cleanup: {leaked(before)}")
        assert leaked(left) == 0, left
        assert t_queue - restart < 10, f"caller reached the queue {t_queue - restart:.1f}s after the restart"


async def test_kill9_without_restart_lease_moves_caller_to_queue(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path) -> None:
    lease_s = 6.0
    async with served_call(agents, test_ari, quiet_wav, tmp_path, "lease",
                           lifecycle__channel_lease_s=f"{lease_s:g}") as s:
        first, cid = s.agent, s.cid
        # The agent's lease replaced the dialplan's initial 20 s (reading TIMEOUT(absolute) gives the rest).
        remaining = float(await test_ari.get_variable(cid, "TIMEOUT(absolute)") or 0)
        assert 0 < remaining <= lease_s, remaining
        first.kill9()
        killed = time.monotonic()
        t_queue = await wait_for(lambda: in_queue(test_ari, cid), lease_s + 20,
                                 "caller in the queue with no agent at all")
        await wait_for(lambda: desk_answered(test_ari), 20, "queue member answered")
        assert await reason_of(test_ari, cid) == "agent_unresponsive"
        await asyncio.sleep(0.5)
        left = await ours_left(test_ari)
        print(f"\nkill -9, no restart: caller in queue {t_queue - killed:.2f}s after the kill (lease {lease_s:g}s); "
              f"left with no agent: {left}")
        assert left["stasis_callers"] == [] and left["media_channels"] == [], left
        # Only the dead process's (empty) bridge is left; the next agent to connect destroys it.
        second = AgentProcess(tmp_path, "after-lease")
        agents.append(second)
        second.start()
        await second.wait_ready()
        await wait_for(lambda: _no_bridges(test_ari), 10, "bridge destroyed by the next agent")


async def _no_bridges(ari: AriClient) -> bool:
    return not (await ours_left(ari))["bridges"]


async def test_a_caller_past_max_calls_reaches_the_queue_and_the_next_is_served_again(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path) -> None:
    """``agent.max_calls`` 1: a second caller, placed while the first is served, is sent to the queue with
    reason ``capacity`` (no media channel is made for it, the first call goes on); once the first caller
    hangs up, a third is served by the agent again."""
    extra, third = Call(test_ari, quiet_wav), Call(test_ari, quiet_wav)
    async with contextlib.AsyncExitStack() as stack:
        s = await stack.enter_async_context(served_call(agents, test_ari, quiet_wav, tmp_path, "full", settle_s=0,
                                                        agent__max_calls="1"))
        stack.push_async_callback(extra.hang_up)
        stack.push_async_callback(third.hang_up)
        placed = time.monotonic()
        extra_cid = await extra.place()
        t_queue = await wait_for(lambda: in_queue(test_ari, extra_cid), 10, "the caller past max_calls in the queue")
        assert await reason_of(test_ari, extra_cid) == "capacity"
        media = [c["id"] for c in await test_ari.list_channels() if c["id"].endswith("-media")]
        assert len(media) == 1 and await served(test_ari, s.cid), media
        with contextlib.suppress(AriNotFound):
            await test_ari.hangup(extra_cid)
        await s.calls[0].hang_up()
        third_cid = await third.place()
        t_served = await wait_for(lambda: served(test_ari, third_cid), 20, "the next caller served once a call ended")
        print(f"\nmax_calls 1: the second caller in the queue {t_queue - placed:.2f}s after it was placed "
              f"(reason capacity); the third served {t_served - placed:.2f}s after the second was placed")
        assert "passed on" in s.agent.tail()


async def test_sigterm_drains_then_exits_zero(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path) -> None:
    deadline_s = 4.0
    late = Call(test_ari, quiet_wav)  # a second caller, placed while the agent drains
    async with contextlib.AsyncExitStack() as stack:
        s = await stack.enter_async_context(served_call(agents, test_ari, quiet_wav, tmp_path, "drain", settle_s=0,
                                                        lifecycle__drain_deadline_s=f"{deadline_s:g}"))
        stack.push_async_callback(late.hang_up)
        agent, cid = s.agent, s.cid
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGTERM)
        sigterm = time.monotonic()

        async def draining() -> bool:
            status, body = await asyncio.to_thread(agent.probe, "/readyz")
            return status == 503 and body.get("reason") == "draining"

        await wait_for(draining, 5, "/readyz 503 draining")
        status, _ = await asyncio.to_thread(agent.probe, "/healthz")
        assert status == 200
        late_cid = await late.place()
        t_late = await wait_for(lambda: in_queue(test_ari, late_cid), 10, "new caller sent to the queue")
        assert await reason_of(test_ari, late_cid) == "draining"
        assert await served(test_ari, cid), "the call in progress was cut before the drain deadline"
        with contextlib.suppress(AriNotFound):
            await test_ari.hangup(late_cid)  # frees the one test desk for the call in progress
        t_handed = await wait_for(lambda: in_queue(test_ari, cid), deadline_s + 15, "call handed off at deadline")
        assert await reason_of(test_ari, cid) == "drain_deadline"
        rc = await asyncio.to_thread(agent.proc.wait, 30)
        exited = time.monotonic()
        left = await ours_left(test_ari)
        print(f"\nSIGTERM drain (deadline {deadline_s:g}s): new caller in queue {t_late - sigterm:.2f}s after SIGTERM, "
              f"call in progress handed off at {t_handed - sigterm:.2f}s, exit {rc} at {exited - sigterm:.2f}s; "
              f"left: {left}")
        assert rc == 0, agent.tail()
        assert left["media_channels"] == [] and left["bridges"] == [] and left["stasis_callers"] == [], left


async def test_kill9_with_several_calls_restart_sends_every_caller_to_queue(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path) -> None:
    n = 5
    async with served_call(agents, test_ari, quiet_wav, tmp_path, "several", n=n, settle_s=0, clean_s=15) as s:
        first, cids = s.agent, s.cids
        first.kill9()
        second = AgentProcess(tmp_path, "several-2")
        agents.append(second)
        second.start()

        async def all_queued() -> bool:
            return all([await in_queue(test_ari, cid) for cid in cids])

        t_all = await wait_for(all_queued, 30, f"all {n} callers in the queue")
        reasons = {await reason_of(test_ari, cid) for cid in cids}
        await asyncio.sleep(0.5)
        left = await ours_left(test_ari)
        print(f"\nkill -9 with {n} calls + restart: all in queue {t_all - second.started_at:.2f}s after the restart; "
              f"reasons {sorted(reasons)}; leaked {leaked(left)}")
        assert reasons == {"agent_restart"} and leaked(left) == 0, (reasons, left)


async def test_media_channel_lost_mid_call_hands_the_caller_to_a_person(
        agents: list[AgentProcess], test_ari: AriClient, quiet_wav: Path, tmp_path: Path) -> None:
    """Asterisk hangs up the call's media channel (here: through ARI, as a failed lease renewal or a dead
    media socket would): the caller is still on the line, cannot be served, and goes to the queue at once
    instead of sitting with a conversation that talks to nothing."""
    records_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    async with served_call(agents, test_ari, quiet_wav, tmp_path, "media-lost", records__url=records_url) as s:
        cid = s.cid
        media = [c["id"] for c in await test_ari.list_channels() if c["id"].endswith("-media")]
        assert len(media) == 1, media
        await test_ari.hangup(media[0])
        lost = time.monotonic()
        t_queue = await wait_for(lambda: in_queue(test_ari, cid), 15, "caller in the queue after the media loss")
        assert (await reason_of(test_ari, cid)).startswith("agent_failure: media_lost")
        await wait_for(lambda: desk_answered(test_ari), 20, "queue member (agent desk) answered")
        # ari-agent run follows the ACD's queue events: the record gets the person's answer (queue SLA).
        human = await wait_for(lambda: _human_leg_stored(records_url), 20, "the human leg in the call record")
        print(f"human leg stored {human - lost:.2f}s after the media loss")
        await asyncio.sleep(0.5)
        left = await ours_left(test_ari)
        print(f"\nmedia channel lost: caller in queue {t_queue - lost:.2f}s later; left: {left}")
        assert leaked(left) == 0, left


async def _human_leg_stored(url: str) -> bool:
    def read() -> bool:
        store = CallRecordStore(url)
        try:
            now = dt.datetime.now(dt.UTC)
            return any(r.outcome == "transferred" and r.human_answered
                       for r in store.between(now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1)))
        finally:
            store.close()

    return await asyncio.to_thread(read)
