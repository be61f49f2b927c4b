"""Start-up renders the map's lines ahead (call/services.py ``VoiceServices.warm``): a reply's first sentence
is then in memory, not synthesised while the caller waits."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from ari_agent.call.services import VoiceServices
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.speech.tts import PromptCache
from tests.unit.call.conftest import ToneVoice


def test_the_map_lines_as_written_are_listed_and_templates_left_out() -> None:
    lines = load_intent_map().spoken_lines()
    assert "Sure, I can check on your order." in lines  # an intent's intro
    assert "What's your order number? You can say it or key it in." in lines  # a slot's question
    assert "Thank you for calling. Goodbye!" in lines  # a global prompt
    assert not [line for line in lines if "{" in line]  # "Order {order_number} has shipped ..." is the call's
    # map-wide values are the same on every call: filled in, so the hours answer is rendered ahead too
    assert "We're open Monday to Friday from 8 AM to 6 PM, and Saturday from 9 AM to 1 PM. We're closed on " \
        "Sundays." in lines
    assert len(lines) == len(set(lines))


async def test_warm_renders_the_fixed_prompts_then_the_map_lines_in_the_background(tmp_path: Path) -> None:
    voice = ToneVoice()
    prompts = PromptCache(voice, tmp_path / "prompts")
    services = VoiceServices(load_intent_map(), classifier=None, tools=None, prompts=prompts)  # type: ignore[arg-type]
    await services.warm()
    assert prompts.cached("Thank you for calling.") is not None  # fixed prompts: before warm returns
    await asyncio.wait_for(services.warmed(), 10)
    assert prompts.cached("Sure, I can check on your order.") is not None
    assert prompts.cached("What's your order number?") is not None  # sentence by sentence, as replies play


async def test_closing_during_the_background_rendering_stops_it(tmp_path: Path) -> None:
    class Slow(ToneVoice):
        def synthesize(self, text: str):  # type: ignore[no-untyped-def]
            import time

            time.sleep(0.05)
            return super().synthesize(text)

    services = VoiceServices(load_intent_map(), classifier=None, tools=_NoTools(),  # type: ignore[arg-type]
                             prompts=PromptCache(Slow(), tmp_path / "prompts"))
    await services.warm()
    await services.aclose()
    assert services._warming is not None and services._warming.done()


class _NoTools:
    async def aclose(self) -> None:
        return None


class _Pool:
    """Records the constrained decoders it is asked to load."""

    def __init__(self) -> None:
        self.warmed: list[str] = []

    def warm(self, constraint: str) -> None:
        self.warmed.append(constraint)

    def close(self) -> None:
        return None


async def test_warm_loads_the_postcode_decoder_of_the_whisper_workers_for_a_map_with_postcodes(tmp_path: Path) -> None:
    from ari_agent.call.services import VoiceLoopSettings
    from ari_agent.speech.stt import SttConfig

    for engine, constrained, want in (("both", True, ["uk_postcode"]), ("both", False, []), ("whisper", True, [])):
        pool = _Pool()
        stt = SttConfig(engine=engine)  # type: ignore[arg-type]
        stt = stt.model_copy(update={"whisper": stt.whisper.model_copy(update={"constrained_codes": constrained})})
        services = VoiceServices(load_intent_map(), classifier=None, tools=_NoTools(),  # type: ignore[arg-type]
                                 prompts=PromptCache(ToneVoice(), tmp_path / "prompts"),
                                 settings=VoiceLoopSettings(stt=stt), whisper_pool=pool)  # type: ignore[arg-type]
        await services.warm()
        assert services._warming is not None
        await asyncio.wait_for(services._warming, 10)
        assert pool.warmed == want, (engine, constrained)  # the demo map verifies with a UK postcode


async def test_waiting_for_the_background_rendering_returns_once_it_is_done_and_does_not_cancel_it(
        tmp_path: Path) -> None:
    class Slow(ToneVoice):
        def synthesize(self, text: str):  # type: ignore[no-untyped-def]
            import time

            time.sleep(0.01)
            return super().synthesize(text)

    prompts = PromptCache(Slow(), tmp_path / "prompts")
    services = VoiceServices(load_intent_map(), classifier=None, tools=_NoTools(),  # type: ignore[arg-type]
                             prompts=prompts)
    await services.warmed()  # before warm: nothing to wait for
    await services.warm()
    assert prompts.cached("Sure, I can check on your order.") is None  # still rendering in the background
    with contextlib.suppress(TimeoutError):  # a waiter that gives up leaves the rendering going
        await asyncio.wait_for(services.warmed(), 0.001)
    await asyncio.wait_for(services.warmed(), 10)
    assert prompts.cached("Sure, I can check on your order.") is not None
    await services.aclose()
