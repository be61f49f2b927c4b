"""Encryption in transit on the real Asterisk 22: ARI over HTTPS/WSS verified against the PBX's own CA,
and media over chan_websocket (wss://, slin16 both ways). A whole voice conversation must pass; a wrong CA
must be refused at connect with a clear error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import TLS_ARI_URL, LocalPbx
from ari_agent.ops.pbx_tls import write_ca
from ari_agent.telephony.ari import AriClient, AriTlsError
from ari_agent.telephony.event_stream import AriEventStream
from ari_agent.telephony.tls import TlsConfigError

from .conftest import agent_config
from .test_voice_conversation import ORDER_LINES, conversation_of, heard_contains, said_texts

pytestmark = pytest.mark.integration


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    async with running_demo_backend() as url:
        yield url


async def test_voice_conversation_over_tls_and_websocket_media(pbx: LocalPbx, tmp_path: Path, backend_url: str,
                                                               voice_dir: Path) -> None:
    cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url,
                       ari__url=TLS_ARI_URL, ari__ca_file=str(pbx.tls.ca_cert), media__transport="websocket")
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None and agent.manager.stream is not None
        assert agent.manager.stream.url.startswith("wss://127.0.0.1:8089/")
        # All three turns spoken, as in the RTP voice test (test_voice_conversation.py). The order number
        # used to be keyed: over this path the recogniser heard extra words ("eight four five six seven"):
        # the 16k→8k resampler handed frames on in ~60 ms bursts (the listener filled the pauses with
        # silence, mid-word) and held back the end of each talk spurt until the next one began
        # (websocket_media.HalfRateDecimator and handle_binary).
        wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in ORDER_LINES]
        res = await agent.caller.place_dialog(wavs, "ttt", tail_wait_s=6)
        await agent.manager.wait_idle(15)
        conv = conversation_of(agent, res)
        log = "\n".join(json.dumps(e) for e in conv.events)
        session = next(s for s in agent.manager.ended if s.caller.id == f"{res.call_id}-leg")
        stats = session.outcome.rtp
        assert stats.get("websocket") == 1 and stats["frames_in"] > 100 and stats["malformed"] == 0, stats
        heard = [e["text"] for e in conv.events if e["kind"] == "heard"]
        print(f"\nheard over TLS/WebSocket: {heard}")
        tools = [e for e in conv.events if e["kind"] == "tool"]
        assert tools and tools[0]["name"] == "lookup_order" and tools[0]["args"] == {"order_number": "4567"}, log
        assert ORDER_LINES[1] in heard, f"the spoken order number was not heard as said: {heard}\n{log}"
        answers = [t for t in said_texts(conv) if "has shipped" in t]
        assert answers, log
        sentence = answers[0].split(". ")[0] if ". " in answers[0] else answers[0]
        score = heard_contains(agent, res, sentence)
        assert score >= 0.9, f"the answer is not audible in the caller's recording (corr {score:.3f})\n{log}"


async def test_wrong_ca_is_refused_with_a_clear_error(pbx: LocalPbx, tmp_path: Path) -> None:
    other = write_ca(tmp_path / "other-ca", "some other CA")
    async with AriClient(TLS_ARI_URL, "ari-agent", "ari-agent-dev", "tls-test", ca_file=other.ca_cert) as ari:
        with pytest.raises(AriTlsError) as err:
            await ari.asterisk_info()
    message = str(err.value)
    assert "certificate" in message and "127.0.0.1:8089" in message and "ari.ca_file" in message, message
    assert "ari-agent-dev" not in message
    # The events WebSocket refuses it too (and says why); it never falls back to plain ws://.
    stream = AriEventStream(TLS_ARI_URL, "tls-test", "Basic x", initial_backoff_s=0.05, max_backoff_s=0.05,
                            tls=ari.tls)
    events = stream.events()
    import asyncio

    task = asyncio.ensure_future(events.__anext__())
    for _ in range(100):
        if stream.last_error:
            break
        await asyncio.sleep(0.05)
    stream.close()
    task.cancel()
    assert stream.last_error and "not accepted" in stream.last_error and stream.connects == 0
    # The right CA works; a CA file for a plain URL is refused before any connection.
    async with AriClient(TLS_ARI_URL, "ari-agent", "ari-agent-dev", "tls-test", ca_file=pbx.tls.ca_cert) as ok:
        assert (await ok.asterisk_info())["system"]["version"].startswith("22")
    with pytest.raises(TlsConfigError):
        AriClient("http://127.0.0.1:8088", "ari-agent", "ari-agent-dev", "tls-test", ca_file=pbx.tls.ca_cert)


async def test_websocket_media_failure_mid_call_hands_off_at_once(pbx: LocalPbx, tmp_path: Path, backend_url: str,
                                                                 voice_dir: Path) -> None:
    """The media socket fails while the agent listens (Asterisk sends a burst of garbage): the caller goes to
    a person then, not at the agent's next prompt (which would have been its no-input reprompt)."""
    import asyncio

    from ari_agent.telephony.websocket_media import MAX_MALFORMED, WebSocketMediaEndpoint

    cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=backend_url,
                       ari__url=TLS_ARI_URL, ari__ca_file=str(pbx.tls.ca_cert), media__transport="websocket")
    async with InProcessAgent(cfg) as agent:
        assert agent.caller is not None and agent.manager is not None
        manager = agent.manager
        wavs = [synthesize_caller(ORDER_LINES[0], "flite:rms", voice_dir)]
        place = asyncio.create_task(agent.caller.place_dialog(wavs, "t", tail_wait_s=30))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while True:  # the agent has asked for the order number and is listening for it
            session = next(iter(manager.sessions.values()), None)
            conv = getattr(session, "conversation", None)
            said = [e["text"] for e in getattr(conv, "events", ()) if e["kind"] == "say"]
            if session is not None and any("order number" in t for t in said) and not session.endpoint.playing:
                break
            assert loop.time() < deadline and not place.done(), "the agent never asked for the order number"
            await asyncio.sleep(0.1)
        endpoint = session.endpoint
        assert isinstance(endpoint, WebSocketMediaEndpoint)
        said_before = len(said)
        for _ in range(MAX_MALFORMED):
            endpoint.handle_text("GARBAGE from the media socket")
        while not any(o.ended_by == "handoff" for o in manager.outcomes):
            assert loop.time() < deadline, "no handoff after the media failure"
            await asyncio.sleep(0.1)
        outcome = next(o for o in manager.outcomes if o.ended_by == "handoff")
        assert outcome.handoff_reason == "agent_failure: media_lost", outcome
        said_after = [e["text"] for e in conv.events if e["kind"] == "say"][said_before:]
        assert said_after == [], f"the agent went on talking after its media failed: {said_after}"
        assert agent.ari is not None
        await agent.ari.hangup(outcome.caller_channel)
        await place
