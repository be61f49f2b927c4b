"""What PromptCache keeps of a rendering: the audio the caller hears, without the engine's silent lead-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ari_agent.media.pcm import Pcm
from ari_agent.speech.tts import CancelToken, PromptCache

LEAD = 480  # 60 ms of digital silence before the first sound, like Piper's


class LeadingSilence:
    cache_key = "leading-silence"

    def synthesize(self, text: str) -> Pcm:
        sound = np.full(800 * len(text.split()), 4000, dtype=np.int16)
        return np.concatenate([np.zeros(LEAD, dtype=np.int16), sound])


def lead_in_ms(pcm: Pcm) -> float:
    return float(np.flatnonzero(pcm)[0]) / 8


async def test_prompts_and_streamed_sentences_start_within_10_ms_of_their_first_sound(tmp_path: Path) -> None:
    cache = PromptCache(LeadingSilence(), tmp_path)
    fixed = "How can I help you today?"
    await cache.warm([fixed])
    assert lead_in_ms(cache.get(fixed)) == 10.0
    assert lead_in_ms(cache.sentence("Your order has shipped.")) == 10.0
    assert lead_in_ms(cache.sentence("It arrives on Thursday.", CancelToken())) == 10.0
    chunks = [c.pcm async for c in cache.stream("Your order has shipped. It left on Monday.")]
    assert [lead_in_ms(c) for c in chunks] == [10.0, 10.0]


def test_a_prompt_cached_on_disk_before_the_trim_is_trimmed_when_read(tmp_path: Path) -> None:
    voice = LeadingSilence()
    text = "Thank you for calling."
    PromptCache(voice, tmp_path).path(text).write_bytes(voice.synthesize(text).astype("<i2").tobytes())
    assert lead_in_ms(PromptCache(voice, tmp_path).get(text)) == 10.0
