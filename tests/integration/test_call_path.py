"""The foundation's call path on a real Asterisk 22: audio both ways, clean teardown, concurrency,
reconnect after an Asterisk restart, and bad RTP during a live call."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import psutil
import pytest

from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import TestCallResult, read_wav_mono
from ari_agent.media.match import audio_similarity
from ari_agent.media.rtp import RtpPacket
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.telephony.ari import AriClient

from .conftest import agent_config, wait_until_clean

pytestmark = pytest.mark.integration

THRESHOLD = 0.9


def udp_sockets() -> int:
    return len(psutil.Process().net_connections(kind="udp"))


def session_tasks() -> list[str]:
    return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(("session-", "cleanup-"))]


def greeting_pcm(agent: InProcessAgent) -> np.ndarray:
    from ari_agent.call.app import prompt_cache

    return prompt_cache(agent.cfg).get(agent.cfg.agent.greeting)


async def check_call(agent: InProcessAgent, res: TestCallResult, greeting: np.ndarray) -> dict[str, float]:
    """(a) the agent received what the caller said; (b) the caller heard the greeting."""
    assert res.answered, res
    manager = agent.manager
    assert manager is not None
    await manager.wait_idle(10)
    sessions = [s for s in manager.ended if s.caller.id == f"{res.call_id}-leg"]
    assert len(sessions) == 1, f"no finished agent session for {res.call_id}"
    received = sessions[0].recorder.pcm()
    said_src, _ = read_wav_mono(Path(res.said_source))
    heard, _ = read_wav_mono(Path(res.heard))
    a = audio_similarity(received, said_src)
    b = audio_similarity(heard, greeting)
    assert a >= THRESHOLD, f"(a) agent-received vs caller WAV correlation {a:.3f} < {THRESHOLD}"
    assert b >= THRESHOLD, f"(b) caller-heard vs greeting correlation {b:.3f} < {THRESHOLD}"
    return {"a": a, "b": b}


async def assert_no_leaks(agent: InProcessAgent, ari: AriClient, udp_baseline: int) -> None:
    """(c) ARI lists no channels or bridges; no stray UDP sockets or session tasks in this process."""
    chans, bridges = await wait_until_clean(ari)
    assert chans == [] and bridges == [], f"leaked channels={chans} bridges={bridges}"
    assert agent.manager is not None
    await agent.manager.wait_idle(5)
    assert agent.manager.sessions == {}
    assert session_tasks() == []
    assert udp_sockets() == udp_baseline


async def test_caller_hangs_up(agent: InProcessAgent, ari: AriClient, caller_wav: Path) -> None:
    assert agent.caller is not None
    baseline = udp_sockets()
    res = await agent.caller.place(caller_wav, pre_wait_s=1, tail_wait_s=4)
    await assert_no_leaks(agent, ari, baseline)
    scores = await check_call(agent, res, greeting_pcm(agent))
    assert agent.manager is not None
    assert agent.manager.outcomes[-1].ended_by == "caller"
    print(f"caller hangs up: a={scores['a']:.3f} b={scores['b']:.3f}")


async def test_agent_hangs_up(pbx: LocalPbx, ari: AriClient, caller_wav: Path, tmp_path: Path) -> None:
    cfg = agent_config(tmp_path, agent__listen_after_greeting_s="4")
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None
        baseline = udp_sockets()
        res = await agent.caller.place(caller_wav, pre_wait_s=1, tail_wait_s=0, caller_hangs_up=False,
                                       max_duration_s=30)
        await assert_no_leaks(agent, ari, baseline)
        await check_call(agent, res, greeting_pcm(agent))
        assert agent.manager.outcomes[-1].ended_by == "agent"


async def test_twenty_concurrent_calls(agent: InProcessAgent, ari: AriClient, voice_dir: Path) -> None:
    from ari_agent.devtools.voices import VOICES, synthesize_caller

    assert agent.caller is not None
    lines = ["I want to check my order status.", "Can I move my appointment to next week?",
             "What are your opening hours on Saturday?", "My account is locked, can you help?"]
    wavs = [synthesize_caller(lines[i % len(lines)], VOICES[i % len(VOICES)], voice_dir) for i in range(20)]
    baseline = udp_sockets()
    caller = agent.caller
    results = await asyncio.gather(*(caller.place(w, pre_wait_s=1, tail_wait_s=4) for w in wavs))
    await assert_no_leaks(agent, ari, baseline)
    greeting = greeting_pcm(agent)
    scores = [await check_call(agent, r, greeting) for r in results]
    print(f"20 calls: min a={min(s['a'] for s in scores):.3f} min b={min(s['b'] for s in scores):.3f}")


async def test_reconnects_after_asterisk_restart(agent: InProcessAgent, pbx: LocalPbx, ari: AriClient,
                                                 caller_wav: Path) -> None:
    assert agent.manager is not None and agent.manager.stream is not None and agent.caller is not None
    stream = agent.manager.stream
    connects = stream.connects
    await asyncio.to_thread(pbx.down)
    await asyncio.to_thread(pbx.up)
    deadline = asyncio.get_running_loop().time() + 20
    while stream.connects == connects or not stream.connected.is_set():
        assert asyncio.get_running_loop().time() < deadline, "agent did not reconnect to ARI"
        await asyncio.sleep(0.05)
    res = await agent.caller.place(caller_wav, pre_wait_s=1, tail_wait_s=3)
    await check_call(agent, res, greeting_pcm(agent))


async def test_bad_rtp_during_a_call(agent: InProcessAgent, ari: AriClient, caller_wav: Path) -> None:
    """Garbage, truncated, wrong-PT, foreign-SSRC and foreign-address packets hit the agent's RTP port
    during a live call: the call goes on and still passes (a) and (b)."""
    assert agent.caller is not None and agent.manager is not None
    manager = agent.manager
    place = asyncio.create_task(agent.caller.place(caller_wav, pre_wait_s=1.5, tail_wait_s=3))
    while not manager.sessions:
        await asyncio.sleep(0.02)
    session = next(iter(manager.sessions.values()))
    while session.endpoint.remote is None or session.endpoint.stats.accepted == 0:
        await asyncio.sleep(0.02)
    ep = session.endpoint
    port = ep.local_port
    remote = ep.remote
    assert remote is not None
    good = RtpPacket(payload_type=0, sequence_number=1, timestamp=1, ssrc=0x1234, payload=b"\xff" * 160)
    # Real datagrams from a foreign address (a different socket on this host).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x80", b"garbage" * 30, good.serialize()):
            s.sendto(junk, ("127.0.0.1", port))
    # Bad packets from Asterisk's own address: fed to the live endpoint as the socket would.
    wrong_pt = RtpPacket(payload_type=18, sequence_number=5, timestamp=5, ssrc=0x1, payload=b"\x00" * 20)
    for junk in (b"\x80\x00", b"\x00" * 12, bytes([0xA0]) + b"\x00" * 11, wrong_pt.serialize(), good.serialize()):
        ep.datagram_received(junk, remote)
    res = await place
    await check_call(agent, res, greeting_pcm(agent))
    st = ep.stats
    assert st.foreign_source >= 4
    assert st.malformed >= 3
    assert st.wrong_payload_type >= 1
    assert st.foreign_ssrc >= 1
    assert manager.outcomes[-1].ended_by == "caller"
