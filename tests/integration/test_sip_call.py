"""A real SIP call: SIPp (Debian's sip-tester) INVITEs chan_pjsip over loopback with RTP from a file;
the dialplan sends it to Stasis, and the agent must receive what SIPp sent."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.media.g711 import ulaw_encode
from ari_agent.media.match import audio_similarity
from ari_agent.media.pcm import resample
from ari_agent.telephony.ari import AriClient

from .conftest import wait_until_clean

pytestmark = pytest.mark.integration
SCENARIO = Path(__file__).parent / "sipp" / "uac_rtp.xml"


async def test_sipp_call_reaches_agent(agent: InProcessAgent, ari: AriClient, voice_dir: Path, tmp_path: Path) -> None:
    sipp = shutil.which("sipp")
    assert sipp, "sipp (Debian package sip-tester) is not installed: scripts/install.sh installs it"
    wav = synthesize_caller("Hello, I am calling from a real SIP phone about my appointment.", "flite:slt", voice_dir)
    pcm, rate = read_wav_mono(wav)
    pcm = resample(pcm, rate, 8000)
    raw = tmp_path / "caller.ulaw"
    raw.write_bytes(ulaw_encode(pcm))
    scenario = tmp_path / "uac_rtp.xml"
    scenario.write_text(SCENARIO.read_text().replace("{RTP_FILE}", str(raw)))
    hold_ms = int(len(pcm) / 8) + 2500
    proc = await asyncio.create_subprocess_exec(
        sipp, "127.0.0.1:5060", "-sf", str(scenario), "-s", "agent", "-i", "127.0.0.1", "-p", "5071",
        "-mp", "16000", "-m", "1", "-l", "1", "-d", str(hold_ms), "-timeout", "60", "-timeout_error",
        "-nostdin", "-trace_err", "-error_file", str(tmp_path / "sipp-errors.log"),
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    errors = (tmp_path / "sipp-errors.log").read_text() if (tmp_path / "sipp-errors.log").exists() else ""
    assert proc.returncode == 0, f"sipp exit {proc.returncode}: {out.decode(errors='replace')[-800:]}\n{errors[-800:]}"
    assert agent.manager is not None
    await agent.manager.wait_idle(10)
    sessions = [s for s in agent.manager.ended if s.caller.name.startswith("PJSIP/sipp")]
    assert len(sessions) == 1, f"SIPp call did not reach the agent: {[s.caller.name for s in agent.manager.ended]}"
    score = audio_similarity(sessions[0].recorder.pcm(), pcm)
    assert score >= 0.9, f"agent-received vs SIPp RTP correlation {score:.3f}"
    assert agent.manager.outcomes[-1].ended_by == "caller"
    chans, bridges = await wait_until_clean(ari)
    assert chans == [] and bridges == []
    print(f"SIPp call: correlation {score:.3f}")
