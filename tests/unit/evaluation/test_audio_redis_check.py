"""``eval --mode audio`` says up front when Redis does not answer (every transfer would lack its context),
before any call is placed; with a real redis-server answering, the check passes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ari_agent.conversation.nlu import build_classifier
from ari_agent.devtools.backend_process import free_port
from ari_agent.errors import AriAgentError
from ari_agent.evaluation.audio_run import evaluate_audio
from ari_agent.evaluation.audio_runner import check_redis
from ari_agent.evaluation.scenario import resolve_suite_path


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: scripts/install.sh installs it (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


async def test_a_redis_that_answers_passes(redis_url: str) -> None:
    for _ in range(250):  # redis-server takes a moment to listen
        try:
            await check_redis(redis_url)
            return
        except AriAgentError:
            await asyncio.sleep(0.02)
    await check_redis(redis_url)


async def test_an_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(AriAgentError) as err:
        await check_redis(url, timeout_s=0.5)
    msg = str(err.value)
    assert "Redis is not reachable at redis://:***@127.0.0.1:" in msg
    assert "every transfer lacks its handoff context" in msg and "hunter2" not in msg


async def test_a_malformed_url_is_a_clear_error() -> None:
    with pytest.raises(AriAgentError, match="is not a Redis URL"):
        await check_redis("http://127.0.0.1:6379/0")


async def test_the_audio_run_refuses_before_any_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Asterisk is needed: the check comes before the agent connects or a call is placed."""
    def no_agent(*a: object, **kw: object) -> None:
        raise AssertionError("the agent must not start without Redis")

    monkeypatch.setattr("ari_agent.evaluation.audio_run.InProcessAgent", no_agent)
    env = {"ARI_AGENT__REDIS__URL": f"redis://127.0.0.1:{free_port()}/0"}
    with pytest.raises(AriAgentError, match="Redis is not reachable"):
        await evaluate_audio([resolve_suite_path("voice-smoke")], lambda m: build_classifier(m.nlu_intents()),
                             records_url=f"sqlite:///{tmp_path / 'r.sqlite3'}", work_dir=tmp_path, env=env)
