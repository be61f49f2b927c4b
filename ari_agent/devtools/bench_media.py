"""``ari-agent bench media``: N concurrent real calls through Asterisk; CPU and memory per call,
outbound pacing jitter, packets lost inside the agent, and the audio checks of every call.

The agent runs in this process (the same CallManager as ``ari-agent run``) so its per-packet send
times can be read; the caller side is Asterisk's own Local channels + MixMonitor recordings.
CPU figures include the test caller's own light ARI polling, so they are an upper bound.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from ari_agent.call.app import prompt_cache
from ari_agent.config import Config
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.resource_meter import measure
from ari_agent.devtools.test_caller import read_wav_mono
from ari_agent.devtools.voices import VOICES, synthesize_caller
from ari_agent.media.match import audio_similarity
from ari_agent.telephony.rtp_transport import RtpEndpoint

CALLER_LINES = [
    "Hello, I am calling because I would like to know where my order is. It was supposed to arrive on Monday "
    "and I still have not received anything, so could you check it for me please.",
    "Hi, I have an appointment with one of your technicians next week and I need to move it to another day, "
    "ideally Thursday afternoon if you have anything available then.",
]
BENCH_GREETING = ("Hello, and thank you for calling Acme Home Services. I am the automated assistant. I can check "
                  "an order, confirm or move an appointment, or answer questions about our opening hours. "
                  "How can I help you today?")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def run_media_bench(cfg: Config, calls: int, work_dir: Path) -> dict[str, Any]:
    # The media path alone: the agent greets and records (no speech recognition in the way).
    cfg = cfg.model_copy(update={
        "agent": cfg.agent.model_copy(update={"greeting": BENCH_GREETING, "recordings_dir": work_dir / "recordings",
                                             "max_calls": max(cfg.agent.max_calls, calls)}),
        "conversation": cfg.conversation.model_copy(update={"mode": "greet_and_listen"}),
    })
    wavs = [synthesize_caller(CALLER_LINES[i % 2], VOICES[i % len(VOICES)], work_dir / "voices")
            for i in range(calls)]
    async with InProcessAgent(cfg, record_lateness=True) as agent:
        assert agent.caller is not None and agent.manager is not None
        greeting = prompt_cache(cfg).get(cfg.agent.greeting)
        await asyncio.sleep(0.5)
        caller = agent.caller
        results, usage = await measure(asyncio.gather(*(caller.place(w, pre_wait_s=1, tail_wait_s=3) for w in wavs)))
        await agent.manager.wait_idle(10)
        sessions = {s.caller.id: s for s in agent.manager.ended}
        lateness: list[float] = []
        lost = 0
        sent = received = 0
        scores_a: list[float] = []
        scores_b: list[float] = []
        for r in results:
            s = sessions.get(f"{r.call_id}-leg")
            if s is None or not isinstance(s.endpoint, RtpEndpoint):
                continue
            st = s.endpoint.stats
            lateness.extend(abs(x) * 1000 for x in st.send_lateness)
            lost += s.endpoint.jitter.stats.lost + st.send_errors
            sent += st.sent
            received += st.accepted
            said, _ = read_wav_mono(Path(r.said_source))
            heard, _ = read_wav_mono(Path(r.heard))
            scores_a.append(audio_similarity(s.recorder.pcm(), said))
            scores_b.append(audio_similarity(heard, greeting))
        lost += agent.manager.ticker.skipped
    return {
        "calls": calls,
        "calls_served": len(scores_a),
        "wall_s": round(usage.wall_s, 2),
        **usage.per_call(calls),
        "pacing_lateness_ms": {"p50": round(_pct(lateness, 50), 3), "p99": round(_pct(lateness, 99), 3),
                               "max": round(max(lateness), 3) if lateness else None, "packets": len(lateness)},
        "packets_sent": sent,
        "packets_received": received,
        "packets_lost_in_agent": lost,
        "audio_check_min": {"agent_heard_caller": round(min(scores_a), 3) if scores_a else None,
                            "caller_heard_greeting": round(min(scores_b), 3) if scores_b else None},
    }
