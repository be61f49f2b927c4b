"""No secret in any log: the agent built from config as ``ari-agent run`` builds it (production mode,
an approved map, HMAC-keyed audit log, kill-switch watch on a password-protected Redis that is down,
ARI and AMI credentials), a whole conversation with a tool call, and the governance commands, all
with logging at DEBUG; then every byte logged, every log record's raw message and arguments, the
audit log and the approval are searched for each secret value."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from ari_agent.call.app import build_voice_services
from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.cli import main
from ari_agent.config import load_config
from ari_agent.conversation.intent_map import DEMO_MAP_PATH
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.governance.audit import verify_file
from ari_agent.log import ScrubbingFormatter
from ari_agent.media.pcm import Codec
from ari_agent.telephony.rtp_transport import RtpEndpoint
from tests.unit.call.conftest import FakeLine, FastTicker, ScriptedRecognizer

SECRETS = {
    "ARI_AGENT__ARI__PASSWORD": "ari-pass-S3CRET-7f3a",
    "ARI_AGENT__AMI__SECRET": "ami-S3CRET-91bc",
    "ARI_AGENT__GOVERNANCE__AUDIT_KEY": "audit-S3CRET-key-5d2e9",
    "ARI_AGENT__GOVERNANCE__APPROVAL_KEY": "approval-S3CRET-key-c81d",
}
REDIS_PASSWORD = "redis-S3CRET-pw-42"


class Records(logging.Handler):
    """Every record as emitted (before any scrubbing): its message and its raw arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(f"{record.msg!r} {record.args!r} {record.getMessage()}")


async def test_no_secret_in_any_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capfd: pytest.CaptureFixture[str]) -> None:
    map_file = tmp_path / "map.yaml"
    shutil.copy(DEMO_MAP_PATH, map_file)
    env = {**SECRETS,
           "ARI_AGENT__LOG__LEVEL": "DEBUG",
           "ARI_AGENT__REDIS__URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0",
           "ARI_AGENT__CONVERSATION__INTENT_MAP": str(map_file),
           "ARI_AGENT__TTS__CACHE_DIR": "/tmp/ari-agent-test-state/prompt-cache",
           "ARI_AGENT__STT__ENGINE": "pocketsphinx",  # resolved engines: the call layer refuses "auto"
           "ARI_AGENT__TTS__ENGINE": "espeak-ng",
           "ARI_AGENT__GOVERNANCE__PRODUCTION": "true",
           "ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(tmp_path / "audit.jsonl"),
           "ARI_AGENT__GOVERNANCE__KILLSWITCH_OVERRIDE_FILE": str(tmp_path / "killswitch.on"),
           "ARI_AGENT__GOVERNANCE__KILLSWITCH_STATE_FILE": str(tmp_path / "killswitch.last"),
           "ARI_AGENT__GOVERNANCE__KILLSWITCH_POLL_S": "0.05"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    # The commands (each sets up logging as the CLI does: DEBUG, to stderr).
    assert main(["config", "approve", str(map_file), "--by", "Dana"]) == 0
    assert main(["config", "check", str(map_file)]) == 0

    records = Records()
    logging.getLogger().addHandler(records)
    formatted = io.StringIO()
    out = logging.StreamHandler(formatted)
    out.setFormatter(ScrubbingFormatter(json_lines=False))
    logging.getLogger().addHandler(out)
    try:
        async with running_demo_backend() as backend:
            cfg = load_config(None, env={**env, "ARI_AGENT__CONVERSATION__TOOLS_BASE_URL": backend})
            services = await build_voice_services(cfg)
            recognizer = ScriptedRecognizer(["where is my order", "four five six seven", "no thanks that's all"])
            services.recognizer = lambda: recognizer  # type: ignore[method-assign]
            endpoint = RtpEndpoint(Codec.ULAW, lambda f: None, send_silence=True)
            ticker = FastTicker(endpoint)
            ticker.start()
            line = FakeLine(call_id="secret-test", endpoint=endpoint)
            conversation = VoiceConversation(services)
            task = asyncio.create_task(conversation.run(line))
            try:
                for turn in (1, 2, 3):
                    while [e["kind"] for e in conversation.events].count("listen") < turn or endpoint.playing:
                        assert not task.done(), conversation.events
                        await asyncio.sleep(0.005)
                    await line.say()
                await asyncio.wait_for(task, 30)
            finally:
                await ticker.stop()
                await services.aclose()
        assert any(e["kind"] == "tool" for e in conversation.events)
        assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    finally:
        logging.getLogger().removeHandler(records)
        logging.getLogger().removeHandler(out)
    # Redis is down: the kill-switch command falls back to the override file, and says so.
    assert main(["killswitch", "on", "--reason", "secret test", "--by", "ops"]) == 1
    assert main(["killswitch", "status"]) == 1
    assert main(["audit", "verify"]) == 0
    captured = capfd.readouterr()

    audit_text = (tmp_path / "audit.jsonl").read_text()
    kinds = [json.loads(line)["kind"] for line in audit_text.splitlines()]
    assert {"approval", "config_load", "tool_call", "killswitch"} <= set(kinds), kinds
    assert verify_file(tmp_path / "audit.jsonl", SECRETS["ARI_AGENT__GOVERNANCE__AUDIT_KEY"].encode()).ok
    assert len(records.raw) > 10 and "tool" in formatted.getvalue()
    everything = {
        "stderr+stdout": captured.err + captured.out,
        "formatted log": formatted.getvalue(),
        "raw log records": "\n".join(records.raw),
        "audit log": audit_text,
        "approval": (tmp_path / "map.yaml.approval.json").read_text(),
        "kill-switch override": (tmp_path / "killswitch.on").read_text(),
    }
    for where, text in everything.items():
        for secret in [*SECRETS.values(), REDIS_PASSWORD]:
            assert secret not in text, f"{secret!r} found in {where}"
