"""The /metrics endpoint serves the agent's registry in Prometheus text format."""

from __future__ import annotations

import aiohttp

from ari_agent.call.voice_loop import TurnTiming
from ari_agent.devtools.backend_process import free_port
from ari_agent.metrics import REGISTRY
from ari_agent.ops.metrics_server import start_metrics_server


def stage_count(stage: str) -> float:
    return REGISTRY.get_sample_value("ari_agent_turn_stage_seconds_count", {"stage": stage}) or 0.0


async def test_turn_timings_reach_metrics_endpoint() -> None:
    before = stage_count("first_rtp")
    TurnTiming(speech_end=10.0, stt_final=10.05, engine_done=10.06, tts_first_audio=10.08, first_rtp=10.1).observe()
    assert stage_count("first_rtp") == before + 1
    port = free_port()
    runner = await start_metrics_server(f"127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200
        assert 'ari_agent_turn_stage_seconds_bucket{le="0.1",stage="first_rtp"}' in text
        assert "ari_agent_active_calls" in text
    finally:
        await runner.cleanup()
