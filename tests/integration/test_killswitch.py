"""The kill switch with a real redis-server and the real command line: on/off/status, pub/sub reaching a
running watch (its backstop poll set far beyond the test's wait), Redis down → the last state held and
the override file working, a restarted agent starting from its last state, bad input → one line.

The waits below are deadlines for failure, not timing assertions: latency is measured by
``ari-agent bench killswitch`` instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap, load_intent_map
from ari_agent.conversation.nlu import IntentClassifier, build_classifier
from ari_agent.governance.audit import verify_file
from ari_agent.governance.killswitch import KillSwitchState, KillSwitchWatch
from ari_agent.seam import CallStarted, Transfer, Utterance

from .conftest_redis import RedisServer

pytestmark = pytest.mark.integration

AUDIT_KEY = "audit-key-for-killswitch-tests"
CLI = "import sys; from ari_agent.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def demo_map() -> IntentMap:
    return load_intent_map()


@pytest.fixture(scope="module")
def classifier(demo_map: IntentMap) -> IntentClassifier:
    return build_classifier(demo_map.nlu_intents(), embeddings=False)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.redis = RedisServer(tmp_path / "redis")
        self.override = tmp_path / "state" / "killswitch.on"
        self.state_file = tmp_path / "state" / "killswitch.last"
        self.audit = tmp_path / "audit.jsonl"
        self.env = {**os.environ,
                    "ARI_AGENT__REDIS__URL": self.redis.url,
                    "ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(self.audit),
                    "ARI_AGENT__GOVERNANCE__AUDIT_KEY": AUDIT_KEY,
                    "ARI_AGENT__GOVERNANCE__KILLSWITCH_OVERRIDE_FILE": str(self.override),
                    "ARI_AGENT__GOVERNANCE__KILLSWITCH_STATE_FILE": str(self.state_file)}

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", CLI, "killswitch", *args], env={**self.env, **env},
                              capture_output=True, text=True, timeout=60)

    def watch(self, poll_s: float) -> KillSwitchWatch:
        return KillSwitchWatch(self.redis.url, override_file=self.override, state_file=self.state_file,
                               poll_s=poll_s)

    def audit_records(self) -> list[dict[str, object]]:
        assert verify_file(self.audit, AUDIT_KEY.encode()).ok
        return [json.loads(line)["data"] for line in self.audit.read_text().splitlines()]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    try:
        yield s
    finally:
        s.redis.stop()


class Flips:
    """Records each change the watch reports; ``wait(on)`` until it reports that state."""

    def __init__(self, watch: KillSwitchWatch) -> None:
        self.seen: list[bool] = []
        self.changed = asyncio.Event()
        watch.listeners.append(self._on_change)

    def _on_change(self, on: bool, state: KillSwitchState) -> None:
        self.seen.append(on)
        self.changed.set()

    async def wait(self, on: bool, deadline_s: float = 10.0) -> None:
        async def until() -> None:
            while not self.seen or self.seen[-1] != on:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(until(), deadline_s)


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


async def test_on_off_status_reach_a_running_agent_by_pubsub(setup: Setup, demo_map: IntentMap,
                                                             classifier: IntentClassifier) -> None:
    watch = setup.watch(poll_s=600)  # the backstop poll cannot fire during this test: only pub/sub can
    flips = Flips(watch)
    await watch.start()
    await asyncio.wait_for(watch.connected.wait(), 10)
    call = ConversationEngine(demo_map, classifier, call_id="in-progress")
    watch.attach(call)
    call.handle(CallStarted(caller_id="+15550100"))
    try:
        status = await asyncio.to_thread(setup.cli, "status")
        assert status.returncode == 0 and "kill switch: off" in status.stdout and "never set" in status.stdout

        on = await asyncio.to_thread(setup.cli, "on", "--reason", "fraud spike on line 2", "--by", "alice")
        assert on.returncode == 0, on.stderr
        assert "1 agent(s) subscribed" in on.stdout
        await flips.wait(True)
        assert call.kill_switch
        # the call in progress is handed off at its next turn, with the polite prompt
        actions = call.handle(Utterance("where is my order", 0.9))
        assert isinstance(actions[-1], Transfer) and actions[-1].reason == "kill_switch"
        assert demo_map.spec.prompts.kill_switch in [getattr(a, "text", "") for a in actions]

        status = await asyncio.to_thread(setup.cli, "status")
        assert "kill switch: ON" in status.stdout and "by alice: fraud spike on line 2" in status.stdout

        off = await asyncio.to_thread(setup.cli, "off", "--reason", "resolved", SUDO_USER="bob")
        assert off.returncode == 0, off.stderr
        await flips.wait(False)
        fresh = ConversationEngine(demo_map, classifier, call_id="after")
        watch.attach(fresh)
        assert not isinstance(fresh.handle(CallStarted(caller_id="+15550101"))[-1], Transfer)
    finally:
        await watch.aclose()
    assert [(r["on"], r["by"], r["reason"], r["via"]) for r in setup.audit_records()] == [
        (True, "alice", "fraud spike on line 2", "redis"), (False, "bob", "resolved", "redis")]


async def test_redis_down_holds_the_last_state_and_the_override_file_works(setup: Setup) -> None:
    watch = setup.watch(poll_s=0.1)
    flips = Flips(watch)
    await watch.start()
    try:
        await asyncio.wait_for(watch.connected.wait(), 10)
        assert (await asyncio.to_thread(setup.cli, "on", "--reason", "incident 42")).returncode == 0
        await flips.wait(True)

        setup.redis.stop()
        while watch.redis_ok:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # several poll rounds without Redis
        assert watch.on and flips.seen == [True]  # held

        # an agent restarted while Redis is down starts from the last state it saw
        restarted = setup.watch(poll_s=0.1)
        assert restarted.on

        # `off` cannot reach Redis: it says so in one line, and the agents keep their state
        off = await asyncio.to_thread(setup.cli, "off")
        assert off.returncode == 1 and "agents keep their last state" in _one_line(off.stderr)
        assert watch.on

        status = await asyncio.to_thread(setup.cli, "status")
        assert status.returncode == 1 and "redis unreachable" in status.stdout
    finally:
        await watch.aclose()


async def test_override_file_turns_it_on_without_redis(setup: Setup) -> None:
    setup.redis.stop()
    watch = setup.watch(poll_s=0.1)
    flips = Flips(watch)
    await watch.start()
    try:
        await asyncio.sleep(0.3)
        assert not watch.on and not watch.redis_ok
        on = await asyncio.to_thread(setup.cli, "on", "--reason", "redis is down too", "--by", "carol")
        assert on.returncode == 1
        assert "wrote the local override file" in _one_line(on.stderr) and setup.override.exists()
        await flips.wait(True)
        off = await asyncio.to_thread(setup.cli, "off", "--local")
        assert off.returncode == 0 and not setup.override.exists()
        await flips.wait(False)
        on = await asyncio.to_thread(setup.cli, "on", "--local", "--reason", "drill")
        assert on.returncode == 0
        await flips.wait(True)
    finally:
        await watch.aclose()
    vias = [(r["on"], r["via"]) for r in setup.audit_records()]
    assert vias == [(True, "override_file (redis unreachable)"), (False, "override_file"), (True, "override_file")]


@pytest.mark.parametrize("args,env,message", [
    (("on", "--reason", ""), {}, "--reason must not be empty"),
    (("on", "--reason", "two\nlines"), {}, "--reason must be one line"),
    (("on", "--reason", "x", "--by", ""), {}, "--by must not be empty"),
    (("status",), {"ARI_AGENT__REDIS__URL": "not-a-url"}, "redis url"),
    (("on", "--reason", "x"), {"ARI_AGENT__GOVERNANCE__KILLSWITCH_POLL_S": "-1"}, "killswitch_poll_s"),
])
def test_bad_input_is_one_line(setup: Setup, args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    result = setup.cli(*args, **env)
    assert result.returncode == 2
    assert message in _one_line(result.stderr)
    assert not setup.override.exists()
