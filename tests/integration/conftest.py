"""Fixtures that start real services: Asterisk 22 (the project's local PBX) and the agent in-process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ari_agent.config import Config, load_config
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.telephony.ari import AriClient

# The cheap speech engines for whatever reads the environment here (CLI subprocesses, evaluate_audio with
# env=None): stt/tts "auto" would load whisper and Piper where they are prepared, at CI time's expense.
os.environ.setdefault("ARI_AGENT__STT__ENGINE", "pocketsphinx")
os.environ.setdefault("ARI_AGENT__TTS__ENGINE", "espeak-ng")


@pytest.fixture(scope="session")
def pbx() -> Iterator[LocalPbx]:
    if os.geteuid() != 0:
        pytest.fail("integration tests need root: the local PBX uses debootstrap/chroot (run scripts/test.sh as root)")
    pbx = LocalPbx()
    pbx.up()
    yield pbx


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="session")
def caller_wav(voice_dir: Path) -> Path:
    return synthesize_caller("Hi there, I would like to check on the status of my order please.", "flite:rms",
                             voice_dir)


def agent_config(tmp_path: Path, **env: str) -> Config:
    base = {
        "ARI_AGENT__AGENT__RECORDINGS_DIR": str(tmp_path / "recordings"),
        "ARI_AGENT__STORAGE__CALL_LOGS_DIR": str(tmp_path / "call-logs"),
        "ARI_AGENT__TTS__CACHE_DIR": "/tmp/ari-agent-test-state/prompt-cache",
        "ARI_AGENT__AGENT__LISTEN_AFTER_GREETING_S": "60",
        "ARI_AGENT__CONVERSATION__MODE": "greet_and_listen",
        # outcomes must not depend on the hour the suite runs at (the demo map closes at 18:00 and on Sundays)
        "ARI_AGENT__CONVERSATION__BUSINESS_HOURS": "false",
        # The cheap engines (CI time): stt/tts "auto" would load whisper and Piper where they are prepared.
        # A test that wants the neural ones sets them (test_voice_neural.py: stt__engine="both").
        "ARI_AGENT__STT__ENGINE": "pocketsphinx",
        "ARI_AGENT__TTS__ENGINE": "espeak-ng",
    }
    base.update({f"ARI_AGENT__{k.upper()}": v for k, v in env.items()})
    return load_config(None, env=base)


@pytest.fixture
async def agent(pbx: LocalPbx, tmp_path: Path) -> AsyncIterator[InProcessAgent]:
    async with InProcessAgent(agent_config(tmp_path)) as a:
        yield a


@pytest.fixture
async def ari(pbx: LocalPbx) -> AsyncIterator[AriClient]:
    cfg = load_config(None, env={})
    async with AriClient(cfg.ari.url, cfg.ari.username, cfg.ari.password.get_secret_value(), "ari-agent-tests") as c:
        yield c


async def wait_until_clean(ari: AriClient, timeout_s: float = 5.0) -> tuple[list[str], list[str]]:
    """Channels and bridges still listed by ARI after ``timeout_s`` (both empty when clean)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        chans = [c["name"] for c in await ari.list_channels()]
        bridges = [b["id"] for b in await ari.list_bridges()]
        if (not chans and not bridges) or asyncio.get_running_loop().time() > deadline:
            return chans, bridges
        await asyncio.sleep(0.1)
