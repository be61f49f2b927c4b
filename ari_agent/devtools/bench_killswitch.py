"""``ari-agent bench killswitch --agents 3``: how long from ``on`` until each running agent is
transfer-only, measured over many flips.

Each agent is its own process running the agent's code path: a :class:`KillSwitchWatch` (subscribed
to Redis, polling as a backstop) with a real :class:`ConversationEngine` of the demo map attached,
exactly as ``VoiceConversation`` attaches its engine. On each change the process checks that the
engine now answers a caller's request with a ``Transfer`` (transfer-only) and reports the moment
(``CLOCK_MONOTONIC``, shared by all processes of the host). The bench flips the switch the way
``ari-agent killswitch`` does (``KillSwitchStore.set``: SET + PUBLISH), a few times through the real
command too (from the moment the command is started), and through the override file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CLI = "import sys; from ari_agent.cli import main; sys.exit(main(sys.argv[1:]))"
AGENT = "import sys; from ari_agent.devtools.bench_killswitch import agent_main; agent_main(sys.argv[1:])"


# ---------------------------------------------------------------------- one agent process
def agent_main(argv: list[str]) -> None:
    url, key, override, name = argv
    asyncio.run(_agent(url, key, Path(override), name))


async def _agent(url: str, key: str, override: Path, name: str) -> None:
    from ari_agent.conversation.engine import ConversationEngine
    from ari_agent.conversation.intent_map import load_intent_map
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.governance.killswitch import KillSwitchState, KillSwitchWatch
    from ari_agent.seam import CallStarted, Transfer, Utterance

    intent_map = load_intent_map()
    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False)
    watch = KillSwitchWatch(url, key=key, override_file=override, poll_s=0.5)
    engines: list[ConversationEngine] = []

    def new_call() -> None:
        engine = ConversationEngine(intent_map, classifier, call_id=f"{name}-{len(engines)}")
        watch.attach(engine)
        engine.handle(CallStarted(caller_id="+15550100"))
        engines[:] = [engine]

    def on_change(on: bool, state: KillSwitchState) -> None:
        t_ns = time.monotonic_ns()
        engine = engines[0]
        actions = engine.handle(Utterance("where is my order", 0.9)) if on else []
        transfer_only = bool(actions) and isinstance(actions[-1], Transfer) and actions[-1].reason == "kill_switch"
        if not on:
            new_call()  # that call was handed off: the next flip finds a call in progress again
        print(json.dumps({"agent": name, "on": on, "t_ns": t_ns, "transfer_only": transfer_only}), flush=True)

    watch.listeners.append(on_change)
    new_call()
    await watch.start()
    await asyncio.wait_for(watch.connected.wait(), 30)
    print(json.dumps({"agent": name, "ready": True}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin
    await watch.aclose()


# ---------------------------------------------------------------------- the bench
def _free_port() -> int:
    from ari_agent.devtools.backend_process import free_port

    return free_port()


def _start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server), or pass --redis-url")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.02)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def percentiles(values_ms: list[float]) -> dict[str, float]:
    if not values_ms:
        return {"n": 0}
    ordered = sorted(values_ms)

    def rank(p: float) -> float:  # nearest rank
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2)

    return {"n": len(ordered), "p50": rank(50), "p95": rank(95), "max": round(ordered[-1], 2)}


class Agents:
    def __init__(self, n: int, url: str, key: str, override: Path) -> None:
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.procs = [subprocess.Popen([sys.executable, "-c", AGENT, url, key, str(override), f"agent{i}"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                      for i in range(n)]
        for proc in self.procs:
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()
        ready = {self.reports.get(timeout=120)["agent"] for _ in range(n)}
        assert len(ready) == n

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.reports.put(json.loads(line))

    def wait_all(self, on: bool, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout_s
        while len(got) < len(self.procs):
            report = self.reports.get(timeout=max(0.01, deadline - time.monotonic()))
            if report.get("on") is on:
                got[report["agent"]] = report
        return list(got.values())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_killswitch_bench(agents: int, flips: int, cli_flips: int, override_flips: int,
                         redis_url: str | None = None) -> dict[str, Any]:
    from ari_agent.governance.killswitch import KillSwitchState, KillSwitchStore

    work = Path(tempfile.mkdtemp(prefix="ari-agent-bench-killswitch-"))
    redis_proc = None
    if redis_url is None:
        redis_proc, redis_url = _start_redis(work)
    key = f"ari-agent:bench-killswitch:{os.getpid()}"
    override = work / "killswitch.on"
    store = KillSwitchStore(redis_url, key)
    store.set(KillSwitchState(False, "bench start", "bench"))
    group = Agents(agents, redis_url, key, override)
    on_ms: list[float] = []
    off_ms: list[float] = []
    cli_ms: list[float] = []
    override_ms: list[float] = []
    verified = 0

    def flip(on: bool, via: str) -> list[float]:
        nonlocal verified
        if via == "override":
            t0 = time.monotonic_ns()
            if on:
                override.write_text("bench\n")
            else:
                override.unlink()
        elif via == "cli":
            env = {**os.environ, "ARI_AGENT__REDIS__URL": redis_url, "ARI_AGENT__GOVERNANCE__KILLSWITCH_KEY": key,
                   "ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(work / "audit.jsonl"),
                   "ARI_AGENT__GOVERNANCE__KILLSWITCH_OVERRIDE_FILE": str(override)}
            t0 = time.monotonic_ns()
            subprocess.run([sys.executable, "-c", CLI, "killswitch", "on" if on else "off", "--reason", "bench",
                            "--by", "bench"], env=env, check=True, capture_output=True)
        else:
            t0 = time.monotonic_ns()
            store.set(KillSwitchState(on, "bench", "bench", "", time.time_ns()))
        reports = group.wait_all(on)
        verified += sum(1 for r in reports if r["transfer_only"])
        return [(r["t_ns"] - t0) / 1e6 for r in reports]

    try:
        for _ in range(flips):
            on_ms += flip(True, "redis")
            off_ms += flip(False, "redis")
        for _ in range(cli_flips):
            cli_ms += flip(True, "cli")
            flip(False, "cli")
        for _ in range(override_flips):
            override_ms += flip(True, "override")
            flip(False, "override")
    finally:
        group.stop()
        store.close()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    total_on = len(on_ms) + len(cli_ms) + len(override_ms)
    return {
        "agents": agents,
        "on_to_transfer_only_ms": percentiles(on_ms),
        "off_to_serving_ms": percentiles(off_ms),
        "cli_command_to_transfer_only_ms": percentiles(cli_ms),
        "override_file_to_transfer_only_ms": percentiles(override_ms),
        "transfer_only_verified": f"{verified}/{total_on}",
        "note": "on: KillSwitchStore.set (SET+PUBLISH) to each agent process's engine flipped and answering "
                "with a Transfer; cli: from starting `ari-agent killswitch on` (interpreter start included); "
                "override: file created, seen by the 0.5 s backstop poll",
    }
