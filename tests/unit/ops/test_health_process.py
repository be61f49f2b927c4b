"""``ari-agent run`` as a real process with Asterisk unreachable: alive, not ready (``ari_disconnected``),
and SIGTERM still ends it cleanly with exit 0 (nothing to drain). No PBX needed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ari_agent.devtools.backend_process import free_port

REPO = Path(__file__).resolve().parents[3]


def probe(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, None


def test_run_without_asterisk_is_alive_not_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARI_AGENT__")} | {
        "ARI_AGENT__ARI__URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "ARI_AGENT__ARI__RECONNECT_MAX_S": "0.5",
        "ARI_AGENT__METRICS__BIND": f"127.0.0.1:{port}",
        "ARI_AGENT__CONVERSATION__MODE": "greet_and_listen",
        "ARI_AGENT__TTS__CACHE_DIR": str(tmp_path / "prompts"),
        "ARI_AGENT__AGENT__RECORDINGS_DIR": str(tmp_path / "recordings"),
        # stt/tts "auto" (the default) with no model prepared: `run` decides on the embedded engines, and says so
        "ARI_AGENT__MODELS__DIR": str(tmp_path / "no-models"),
    }
    log = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from ari_agent.cli import main; sys.exit(main())",
                             "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            status, body = probe(port, "/readyz")
            if status == 503 and body == {"ready": False, "reason": "ari_disconnected"}:
                break
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.1)
        assert probe(port, "/healthz") == (200, {"status": "alive"})
        started = (tmp_path / "agent.log").read_text()
        assert "speech engines: stt.engine auto -> pocketsphinx (fallback: whisper-tiny.en: not prepared" in started
        assert "; tts.engine auto -> espeak-ng (fallback: piper-en_US-joe-medium: not prepared" in started
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "agent.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
