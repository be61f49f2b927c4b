"""The neural ears on real Asterisk calls: ``stt.engine: both`` (whisper tiny.en from the pinned wheel, as
``ari-agent models prepare`` converted it, with pocketsphinx's grammar beside it on turns answered with a
value). Caller phrasings that are not in the demo map, spoken by flite voices through G.711; judged from
the call's event log (what was heard, which tools ran with which arguments)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import TestCallResult
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.ops.models import prepared_whisper_model

from .conftest import agent_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def neural_agent(pbx: LocalPbx, tmp_path: Path) -> AsyncIterator[InProcessAgent]:
    pytest.importorskip("pywhispercpp", reason="the whisper extra is installed by scripts/test.sh")
    cfg = agent_config(tmp_path, conversation__mode="voice")
    if not prepared_whisper_model(cfg.models.dir).is_file():
        pytest.skip("the whisper model is prepared by scripts/test.sh (ari-agent models prepare)")
    async with running_demo_backend() as url:
        cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=url, stt__engine="both")
        async with InProcessAgent(cfg) as a:
            yield a


def events_of(agent: InProcessAgent, res: TestCallResult) -> list[dict[str, Any]]:
    assert agent.manager is not None
    for s in agent.manager.ended:
        if s.caller.id == f"{res.call_id}-leg" and isinstance(s.conversation, VoiceConversation):
            return s.conversation.events
    raise AssertionError(f"no voice conversation for {res.call_id}")


async def test_order_number_with_a_carrier_in_front(neural_agent: InProcessAgent, voice_dir: Path) -> None:
    """"it's one two three four": whisper and the digits grammar agree on 1234 (or it is read back and
    confirmed); the order is looked up with exactly that number."""
    assert neural_agent.caller is not None and neural_agent.manager is not None
    lines = ["hi there, um, I'm wondering where my parcel has got to", "it's one two three four", "yes",
             "no, that's everything, thanks"]
    wavs = [synthesize_caller(t, "flite:awb", voice_dir) for t in lines]
    res = await neural_agent.caller.place_dialog(wavs, "tttt", tail_wait_s=6)
    await neural_agent.manager.wait_idle(20)
    events = events_of(neural_agent, res)
    log = "\n".join(json.dumps(e) for e in events)
    heard = [e for e in events if e["kind"] == "heard"]
    assert heard and all(e["error"] is None for e in heard), log
    print("heard:", [(e["text"], e["stt_ms"], e.get("unsure")) for e in heard])
    tools = [e for e in events if e["kind"] == "tool"]
    assert tools and tools[0]["name"] == "lookup_order" and tools[0]["args"] == {"order_number": "1234"}, log
