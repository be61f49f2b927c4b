"""Drive the call layer without a PBX: a fake line around the real RTP endpoint (ticked fast by the
test instead of every 20 ms), a scripted recogniser, a tone "voice", and a caller that pushes 20 ms
frames of buzz (speech to the VAD) or silence straight into the call's frame listeners.

The speech loop itself (playback, listening, endpointer, DTMF, tools, interpreter, engine) is the
real code; so is the RTP endpoint's playout bookkeeping. Media time runs as fast as frames arrive,
so a conversation of several turns takes well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ari_agent.call.services import VoiceLoopSettings, VoiceServices
from ari_agent.call.voice_loop import VoiceConversation
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.integrations.runner import ToolRunner
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Codec, Pcm
from ari_agent.seam import CallTool, Expectation, ToolResult
from ari_agent.speech.recognizer import Transcript
from ari_agent.speech.tts import PromptCache
from ari_agent.telephony.events import Channel
from ari_agent.telephony.rtp_transport import RtpEndpoint

FRAME = 160
WORD_MS = 100  # the tone voice: 100 ms of audio per word


def buzz(i: int) -> Pcm:
    """20 ms of a 120 Hz harmonic buzz: the VAD calls it speech."""
    t = (np.arange(FRAME) + i * FRAME) / 8000
    sig = sum((1 / k) * np.sin(2 * np.pi * 120 * k * t) for k in range(1, 25))
    return (sig / np.max(np.abs(sig)) * 8000).astype(np.int16)


SILENCE = np.zeros(FRAME, dtype=np.int16)


class ToneVoice:
    """A TTS engine that renders each word as 100 ms of quiet tone (so heard text is computable)."""

    cache_key = "tone-voice"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Pcm:
        self.spoken.append(text)
        n = max(1, len(text.split())) * WORD_MS * 8
        return (300 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)).astype(np.int16)


class ScriptedRecognizer:
    """Returns the next scripted text at each end of turn; partials are empty (like whisper)."""

    engine = "scripted"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.expectations: list[Expectation] = []
        self.fed_samples = 0
        self.closed = False

    def start(self, expect: Expectation) -> None:
        self.expectations.append(expect)

    def feed(self, pcm8k: Any) -> None:
        self.fed_samples += int(np.asarray(pcm8k).size)

    def partial(self) -> str:
        return ""

    def finish(self) -> Transcript:
        text = self.texts.pop(0) if self.texts else ""
        return Transcript(text=text, confidence=0.9, engine=self.engine)

    def close(self) -> None:
        self.closed = True


@dataclass
class Handoff:
    queue: str
    reason: str
    context: dict[str, str]
    told: bool = False  # the conversation's own handoff line was said first


@dataclass
class FakeLine:
    """What ``VoiceConversation`` needs of a ``CallSession``, without Asterisk."""

    call_id: str
    endpoint: RtpEndpoint
    caller: Channel = field(default_factory=lambda: Channel(id="caller-1", caller_number="+15551230001"))
    started_at: float = field(default_factory=time.monotonic)
    caller_gone: asyncio.Event = field(default_factory=asyncio.Event)
    dtmf: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    frame_listeners: list[Callable[[AudioFrame], None]] = field(default_factory=list)
    handoffs: list[Handoff] = field(default_factory=list)
    frames_sent: int = 0

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None, *,
                      announce: Callable[[str], Awaitable[object]] | None = None,
                      render: Callable[[str], Awaitable[object]] | None = None, told: bool = False,
                      ready: Callable[[], Awaitable[object]] | None = None) -> bool:
        if ready is not None:  # as the desk does: the line has played out before the caller moves
            await ready()
        self.handoffs.append(Handoff(queue, reason, dict(context or {}), told))
        return True

    # ---- the caller's side
    async def say(self, ms: int = 400, silence_ms: int = 700) -> None:
        """The caller speaks ``ms`` of buzz, then is silent for ``silence_ms`` (pushed at full speed)."""
        for i in range(ms // 20):
            self._push(buzz(i))
            await asyncio.sleep(0)
        await self.silence(silence_ms)

    async def silence(self, ms: int) -> None:
        for _ in range(ms // 20):
            self._push(SILENCE)
            await asyncio.sleep(0)

    def _push(self, pcm: Pcm) -> None:
        frame = AudioFrame(seq=0, timestamp=0, pcm=pcm, concealed=False)
        for listener in self.frame_listeners:
            listener(frame)


class FastTicker:
    """Ticks the endpoint's outbound stream every millisecond: playout 20x faster than real time."""

    def __init__(self, endpoint: RtpEndpoint) -> None:
        self.endpoint = endpoint
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.endpoint.tick(0.0)
            await asyncio.sleep(0.001)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    async with running_demo_backend() as url:
        yield url


ToolHook = Callable[[CallTool, Callable[[CallTool], Awaitable[ToolResult]]], Awaitable[ToolResult]]


@dataclass
class Harness:
    line: FakeLine
    conversation: VoiceConversation
    recognizer: ScriptedRecognizer
    voice: ToneVoice
    task: asyncio.Task[None]

    def said(self) -> list[str]:
        return [e["text"] for e in self.conversation.events if e["kind"] == "say"]

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.conversation.events]

    async def until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait (briefly polling: this is the test's view from outside) until ``predicate()``."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.task.done():
                self.task.result()
                raise AssertionError(f"conversation ended first; events: {self.kinds()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events: {list(self.conversation.events)}")
            await asyncio.sleep(0.002)

    async def until_listening(self, n: int) -> None:
        """Until the ``n``-th Listen has started (and its prompt has played out)."""
        await self.until(lambda: self.kinds().count("listen") >= n and not self.line.endpoint.playing)
        await asyncio.sleep(0.005)

    async def finished(self, timeout_s: float = 5.0) -> None:
        await asyncio.wait_for(self.task, timeout_s)


@pytest.fixture
async def start_call(demo_map: IntentMap, classifier: IntentClassifier, backend_url: str,
                     tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    started: list[tuple[Harness, FastTicker, ToolRunner]] = []

    async def start(texts: list[str], *, tool_hook: ToolHook | None = None, call_id: str = "call-1",
                    settings: VoiceLoopSettings | None = None) -> Harness:
        endpoint = RtpEndpoint(Codec.ULAW, lambda f: None, send_silence=True)
        ticker = FastTicker(endpoint)
        ticker.start()
        line = FakeLine(call_id=call_id, endpoint=endpoint)
        recognizer = ScriptedRecognizer(texts)
        voice = ToneVoice()
        runner = ToolRunner(demo_map.tools_config, base_url=backend_url)
        tools: Any = runner
        if tool_hook is not None:
            hook = tool_hook

            class Hooked:
                async def run(self, call: CallTool) -> ToolResult:
                    return await hook(call, runner.run)

                async def aclose(self) -> None:
                    await runner.aclose()

            tools = Hooked()
        services = VoiceServices(demo_map, classifier, tools, PromptCache(voice, tmp_path / "prompts"),
                                 settings or VoiceLoopSettings(tool_timeout_s=0.5))
        services.recognizer = lambda: recognizer  # type: ignore[method-assign]
        conversation = VoiceConversation(services)
        task = asyncio.get_running_loop().create_task(conversation.run(line))
        harness = Harness(line, conversation, recognizer, voice, task)
        started.append((harness, ticker, runner))
        return harness

    yield start
    for harness, ticker, runner in started:
        if not harness.task.done():
            harness.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await harness.task
        await ticker.stop()
        await runner.aclose()
