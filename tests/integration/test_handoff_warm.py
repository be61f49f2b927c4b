"""Announced (warm) transfer on the real Asterisk 22: the answering member hears the agent's spoken
brief of the context before the caller is bridged. Judged from the member's own recording (MixMonitor
on the desk's channel, dialplan/agent-desk.conf) against the brief the agent rendered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.media.match import audio_similarity
from ari_agent.ops.localpbx import LocalPbx

from .conftest_redis import redis_server  # noqa: F401
from .test_handoff_ami import backend_url, voice_config  # noqa: F401
from .test_handoff_screenpop import DeskReports, wait_for

pytestmark = pytest.mark.integration


async def test_member_hears_the_brief_before_the_caller(
        pbx: LocalPbx, tmp_path: Path, voice_dir: Path, redis_server: str, backend_url: str) -> None:  # noqa: F811
    cfg = voice_config(tmp_path, redis_server, backend_url, handoff__queues__support__warm="true",
                       handoff__queues__support__team="support")
    desk = DeskReports(cfg)
    try:
        assert await desk.ami.wait_connected(10), desk.ami.last_error
        async with InProcessAgent(cfg) as agent:
            assert agent.caller is not None and agent.manager is not None and agent.ari is not None
            manager = agent.manager
            wavs = [synthesize_caller("Can I speak to a real person please?", "flite:rms", voice_dir)]
            place = asyncio.create_task(agent.caller.place_dialog(wavs, "t", tail_wait_s=20))
            await wait_for(lambda: any(o.ended_by == "handoff" for o in manager.outcomes) or place.done(), 90,
                           "the handoff")
            outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
            await wait_for(lambda: any(d.get("CallId") == outcome.call_id for d in desk.seen), 30, "the desk")
            report = next(d for d in desk.seen if d.get("CallId") == outcome.call_id)
            assert report["Brief"] == f"{cfg.handoff.briefs_dir}/{outcome.call_id}", report
            brief_wav = cfg.pbx.root / cfg.handoff.briefs_dir.lstrip("/") / f"{outcome.call_id}.wav"
            brief, rate = read_wav_mono(brief_wav)
            assert rate == 8000 and brief.size > 8000  # over a second of speech
            await place  # the caller hangs up after its tail wait: the desk's recording is closed
            heard_wav = cfg.pbx.root / cfg.pbx.calls_dir.lstrip("/") / f"desk-{outcome.call_id}-heard.wav"
            await wait_for(heard_wav.exists, 30, "the desk's recording")
            await asyncio.sleep(1.0)  # MixMonitor finalises the file after the channel ends
            heard, _ = read_wav_mono(heard_wav)
            score = await asyncio.to_thread(audio_similarity, heard, brief, max_lag_s=20)
            print(f"warm transfer: brief {brief.size / 8000:.1f}s, member heard {heard.size / 8000:.1f}s, "
                  f"corr={score:.3f}")
            assert score >= 0.9, f"the member's recording does not contain the brief (corr {score:.3f})"
    finally:
        await desk.ami.close()
