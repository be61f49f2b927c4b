"""The speech loop of one call: VAD/endpointing → STT → conversation engine → TTS → paced RTP out.

It carries out the engine's actions (DESIGN.md's seam) on the live call:
- ``Say``: sentence by sentence (the first sentence plays while the rest is synthesised); the caller
  can barge in: outbound audio is flushed at once and the engine is told what part it heard.
- ``Listen``: the endpointer decides the end of the turn (quicker when the words heard already
  complete the expectation, more patient for digits), the recogniser is fed incrementally in a
  worker thread so its final result is ready right after the turn ends; DTMF answers too.
- ``CallTool``: run through the ToolRunner; past the intent's budget a cached acknowledgement plays
  ("One moment while I check that."); a tool that never answers becomes a ``Timeout("tool")``.
- ``Transfer``: the call's context goes into channel variables and the caller into the queue.
Every turn's stage timings are logged (and kept on the conversation for benchmarks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ari_agent.call.session import CallSession
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.slots.yes_no import parse_yes_no
from ari_agent.integrations.runner import ToolRunner
from ari_agent.media.endpointer import Endpointer, EndpointerConfig, NoInput, SpeechEnd, SpeechStart
from ari_agent.media.jitter import AudioFrame
from ari_agent.metrics import ACKNOWLEDGEMENTS, BARGE_INS, TOOL_CALLS, TURN_STAGE
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Dtmf,
    Event,
    Expectation,
    Hangup,
    Listen,
    Say,
    Timeout,
    ToolResult,
    Transfer,
    Utterance,
)
from ari_agent.speech.stt import SpeechRecognizer, SttConfig, Transcript, create_recognizer
from ari_agent.speech.tts import PromptCache, TextToSpeech
from ari_agent.speech.turn_completion import completes_for, digit_count, is_patient

if TYPE_CHECKING:
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

log = logging.getLogger(__name__)
Pcm = npt.NDArray[np.int16]
FRAME_S = 0.020
SILENCE_FRAME = np.zeros(160, dtype=np.int16)
# An open request whose partial transcript the classifier is this sure about needs no more waiting.
OPEN_TURN_CONFIDENT = 0.75
# Asked this many times with the same partial (250 ms + 2 x 100 ms of silence): the answer is stable.
STABLE_ASKS = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class VoiceLoopSettings:
    ack_text: str = "One moment while I check that."
    tool_timeout_s: float = 8.0
    dtmf_interdigit_s: float = 2.0
    endpointer: EndpointerConfig = field(default_factory=lambda: EndpointerConfig(echo_min_speech_ms=140))
    stt: SttConfig = field(default_factory=SttConfig)


@dataclass
class TurnTiming:
    """Stage times of one caller turn, seconds on the agent's monotonic clock (for logs/benchmarks;
    the benchmark's headline figures come from the caller-side recordings, not from these)."""

    speech_end: float = 0.0  # when the endpointer declared the end of the turn
    endpoint_wait_ms: int = 0  # silence the endpointer waited after the last voiced frame
    stt_final: float = 0.0
    engine_done: float = 0.0
    tool_done: float | None = None
    tts_first_audio: float | None = None
    first_rtp: float | None = None
    text: str = ""
    ack_played: bool = False

    def observe(self) -> None:
        """Export this turn's stage times to the metrics (once the reply has started playing)."""
        for stage, ms in self.profile_ms().items():
            if ms is not None:
                TURN_STAGE.labels(stage).observe(ms / 1000)

    def profile_ms(self) -> dict[str, float | None]:
        def rel(t: float | None) -> float | None:
            return None if t is None else round((t - self.speech_end) * 1000, 1)

        return {"endpoint_wait": float(self.endpoint_wait_ms), "stt_final": rel(self.stt_final),
                "engine": rel(self.engine_done), "tool": rel(self.tool_done),
                "tts_first_audio": rel(self.tts_first_audio), "first_rtp": rel(self.first_rtp)}


class VoiceServices:
    """What every call shares: the intent map, classifier, tools, prompt cache and TTS."""

    def __init__(self, intent_map: IntentMap, classifier: IntentClassifier, tools: ToolRunner, prompts: PromptCache,
                 tts: TextToSpeech, settings: VoiceLoopSettings | None = None,
                 whisper_pool: WhisperWorkerPool | None = None) -> None:
        self.intent_map = intent_map
        self.classifier = classifier
        self.tools = tools
        self.prompts = prompts
        self.tts = tts
        self.settings = settings or VoiceLoopSettings()
        self.whisper_pool = whisper_pool
        self._sentences: collections.OrderedDict[str, Pcm] = collections.OrderedDict()

    def recognizer(self) -> SpeechRecognizer:
        """A recogniser for one call (pocketsphinx: its own decoder; whisper: the shared pool)."""
        return create_recognizer(self.settings.stt, whisper_pool=self.whisper_pool)

    async def aclose(self) -> None:
        await self.tools.aclose()
        if self.whisper_pool is not None:
            await asyncio.to_thread(self.whisper_pool.close)

    async def warm(self) -> None:
        p = self.intent_map.spec.prompts
        fixed = [self.settings.ack_text, p.anything_else, p.goodbye, p.handoff, p.not_understood, p.silence,
                 p.kill_switch]
        await self.prompts.warm([s for text in fixed for s in split_sentences(text)])

    def synthesize(self, sentence: str) -> Pcm:
        """Blocking: fixed prompts warmed at start-up, an LRU of recent sentences, else the TTS engine."""
        fixed = self.prompts.cached(sentence)
        if fixed is not None:
            return fixed
        hit = self._sentences.get(sentence)
        if hit is not None:
            self._sentences.move_to_end(sentence)
            return hit
        pcm = self.tts.synthesize(sentence)
        self._sentences[sentence] = pcm
        while len(self._sentences) > 512:
            self._sentences.popitem(last=False)
        return pcm


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


@dataclass
class _Spoken:
    text: str
    frames: int


class _BargedIn(Exception):
    pass


class VoiceConversation:
    def __init__(self, services: VoiceServices) -> None:
        self.s = services
        self.settings = services.settings
        self.timings: list[TurnTiming] = []
        self.transcripts: list[Transcript] = []
        self.barge_ins: list[str] = []
        # The call's event log: what the agent said, heard and did, in order (also logged).
        self.events: list[dict[str, Any]] = []
        self._frames: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self._turn_events: asyncio.Queue[SpeechStart | SpeechEnd | NoInput] = asyncio.Queue()
        self._media_ms = 0
        self._feed_buf: list[Pcm] = []
        self._partial = ""
        self._rec_lock = asyncio.Lock()
        self._upcoming_expect = Expectation()
        self._expect = Expectation()
        self._recognizing = False
        self._pre: collections.deque[Pcm] = collections.deque(maxlen=15)
        self._barge_flag = False  # caller speech started over a prompt, not yet ended
        self._completes_cache: tuple[str, bool] = ("", False)
        self._asked_partial = ""
        self._asks = 0

    # ------------------------------------------------------------------ entry point
    async def run(self, call: CallSession) -> None:
        self.call = call
        self.engine = ConversationEngine(self.s.intent_map, self.s.classifier, call_id=call.call_id)
        self.rec: SpeechRecognizer = await asyncio.to_thread(self.s.recognizer)
        self.ep = Endpointer(self.settings.endpointer, partial_text=lambda: self._partial)
        call.frame_listeners.append(self._frames.put_nowait)
        listener = asyncio.create_task(self._listen_loop(), name=f"listen-{call.call_id}")
        try:
            first = await self._engine(CallStarted(caller_id=call.caller.caller_number,
                                                   dnid=call.caller.dialplan_exten))
            await self._execute(first)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.rec.close)

    def _log(self, kind: str, **detail: Any) -> None:
        entry = {"t": round(time.monotonic() - self.call.started_at, 3), "kind": kind, **detail}
        self.events.append(entry)
        log.info("call %s: %s %s", self.call.call_id, kind, detail)

    async def _engine(self, event: Event) -> list[Action]:
        # Classification costs 5-20 ms of numpy that releases the GIL: keep it off the event loop.
        actions = await asyncio.to_thread(self.engine.handle, event)
        if self.timings and self.timings[-1].engine_done == 0.0:
            self.timings[-1].engine_done = time.monotonic()
        return actions

    async def _execute(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            nxt: list[Action] = []
            self._log_action(action)
            if isinstance(action, Say):
                self._upcoming_expect = next((a.expect for a in queue if isinstance(a, Listen)), self._expect)
                heard = await self._say(action)
                if heard is not None:  # barged in: the rest of this batch of prompts is moot
                    queue = []
                    nxt = await self._engine(BargeIn(heard_text=heard))
            elif isinstance(action, Listen):
                nxt = await self._engine(await self._listen(action))
            elif isinstance(action, CallTool):
                nxt = await self._engine(await self._tool(action))
            elif isinstance(action, Transfer):
                await self._wait_playout()
                await self.call.handoff(action.queue, action.reason, dict(action.context))
                return
            elif isinstance(action, Hangup):
                await self._wait_playout()
                log.info("call %s: agent hangs up (%s)", self.call.call_id, action.reason)
                return
            queue = nxt + queue

    def _log_action(self, action: Action) -> None:
        if isinstance(action, Say):
            self._log("say", text=action.text)
        elif isinstance(action, Listen):
            self._log("listen", expect=action.expect.kind, timeout_s=action.timeout_s)
        elif isinstance(action, CallTool):
            self._log("tool", name=action.name, args=action.args, key=action.idempotency_key)
        elif isinstance(action, Transfer):
            self._log("transfer", queue=action.queue, reason=action.reason, context=dict(action.context))
        elif isinstance(action, Hangup):
            self._log("hangup", reason=action.reason)

    # ------------------------------------------------------------------ speaking
    async def _say(self, say: Say) -> str | None:
        """Speak; returns None when played out, or the text heard so far when the caller barged in."""
        ep = self.call.endpoint
        spoken: list[_Spoken] = []
        start_sent = ep.outbound.packets_sent
        self.ep.set_playing(True)
        turn = self.timings[-1] if self.timings and self.timings[-1].tts_first_audio is None else None
        try:
            for sentence in split_sentences(say.text):
                pcm = await asyncio.to_thread(self.s.synthesize, sentence)
                if turn is not None and turn.tts_first_audio is None:
                    turn.tts_first_audio = time.monotonic()
                    before = ep.spurt_started_at
                    ep.play(pcm)
                    asyncio.get_running_loop().create_task(self._note_first_rtp(turn, before))
                else:
                    ep.play(pcm)
                spoken.append(_Spoken(sentence, -(-pcm.size // 160)))
                if say.interruptible and self._barge_in_pending():
                    raise _BargedIn
            while not ep.outbound.is_idle:
                if self.call.caller_gone.is_set():
                    return None
                if say.interruptible and self._barge_in_pending():
                    raise _BargedIn
                await asyncio.sleep(0.01)
            return None
        except _BargedIn:
            dropped = ep.stop_playback()
            heard = _heard_text(spoken, ep.outbound.packets_sent - start_sent)
            self.barge_ins.append(heard)
            BARGE_INS.inc()
            self._log("barge_in", heard=heard)
            log.info("call %s: barge-in after %r (dropped %d frames)", self.call.call_id, heard, dropped)
            return heard
        finally:
            self.ep.set_playing(False)

    async def _note_first_rtp(self, turn: TurnTiming, before: float | None) -> None:
        ep = self.call.endpoint
        for _ in range(100):
            if ep.spurt_started_at is not None and ep.spurt_started_at != before:
                turn.first_rtp = ep.spurt_started_at
                turn.observe()
                return
            await asyncio.sleep(0.005)

    def _barge_in_pending(self) -> bool:
        return self._barge_flag

    async def _wait_playout(self) -> None:
        ep = self.call.endpoint
        while not ep.outbound.is_idle and not self.call.caller_gone.is_set():  # noqa: ASYNC110 (pacer state)
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ listening
    async def _listen(self, listen: Listen) -> Event:
        self._expect = listen.expect
        await self._start_recognizer(listen.expect)
        self.ep.start_turn(self._media_ms, patient=is_patient(listen.expect), completes=self._completes,
                           no_input_ms=int(listen.timeout_s * 1000))
        dtmf = asyncio.create_task(self._collect_dtmf(listen.expect))
        turn = asyncio.create_task(self._next_utterance())
        try:
            done, _ = await asyncio.wait({dtmf, turn}, return_when=asyncio.FIRST_COMPLETED)
            if dtmf in done:
                self.ep.cancel_turn()
                self._log("dtmf", digits=dtmf.result().digits)
                return dtmf.result()
            return turn.result()
        finally:
            for t in (dtmf, turn):
                if not t.done():
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t

    async def _next_utterance(self) -> Event:
        while True:
            ev = await self._turn_events.get()
            if isinstance(ev, NoInput):
                self._log("no_input")
                return Timeout("silence")
            if isinstance(ev, SpeechEnd):
                timing = TurnTiming(speech_end=time.monotonic(), endpoint_wait_ms=self._media_ms - ev.end_ms)
                transcript = await self._finish_recognizer(ev)
                timing.stt_final = time.monotonic()
                timing.text = transcript.text
                self.timings.append(timing)
                self.transcripts.append(transcript)
                self._log("heard", text=transcript.text, confidence=round(transcript.confidence, 2),
                          stt_ms=round(transcript.latency_ms), error=transcript.error)
                return Utterance(transcript.text, transcript.confidence)

    async def _collect_dtmf(self, expect: Expectation) -> Dtmf:
        digits = ""
        limit = expect.max_digits or 0
        while True:
            try:
                d = await asyncio.wait_for(self.call.dtmf.get(), None if not digits else
                                           self.settings.dtmf_interdigit_s)
            except TimeoutError:
                return Dtmf(digits)
            if d == "#":
                return Dtmf(digits or "#")
            digits += d
            if limit and len(digits) >= limit:
                return Dtmf(digits)

    def _completes(self, partial: str) -> bool:
        """Does what was heard already answer the turn? The endpointer asks after 250 ms of silence
        and again every 100 ms; True ends the turn there instead of waiting the full silence."""
        asks = self._asks + 1 if partial == self._asked_partial else 1
        self._asked_partial, self._asks = partial, asks
        check = completes_for(self._expect)
        if check is not None and check(partial):
            return True
        expect = self._expect
        if expect.kind == "digits" and expect.min_digits and digit_count(partial) >= expect.min_digits:
            # Enough digits for a valid answer and nothing new for 450 ms: the caller has finished
            # (the patient 1 s wait is for callers pausing *before* they reach the minimum).
            return asks >= STABLE_ASKS
        if expect.kind != "open" or not partial.strip():
            return False
        if parse_yes_no(partial) is not None:  # "no, that's all" to "anything else?"
            return True
        # The open request: complete once the classifier is confident about it. Classified in the
        # recogniser's worker thread after each feed (see _feed_sync), never on the event loop.
        text, confident = self._completes_cache
        return text == partial and confident

    # ------------------------------------------------------------------ recogniser plumbing
    async def _start_recognizer(self, expect: Expectation) -> None:
        async with self._rec_lock:
            if self._recognizing:
                return  # a barge-in utterance is already being decoded: keep it
            await asyncio.to_thread(self.rec.start, expect)
            self._recognizing = True
            self._partial = ""

    async def _feed(self, pcm: Pcm) -> None:
        async with self._rec_lock:
            if not self._recognizing:
                return
            await asyncio.to_thread(self._feed_sync, pcm)

    def _feed_sync(self, pcm: Pcm) -> None:
        self.rec.feed(pcm)
        partial = self.rec.partial()
        if self._expect.kind == "open" and partial != self._completes_cache[0] and len(partial.split()) >= 2:
            confident = self.s.classifier.classify(partial).confidence >= OPEN_TURN_CONFIDENT
            self._completes_cache = (partial, confident)
        self._partial = partial

    async def _finish_recognizer(self, end: SpeechEnd) -> Transcript:
        async with self._rec_lock:
            if not self._recognizing:
                await asyncio.to_thread(self.rec.start, self._expect)
                await asyncio.to_thread(self.rec.feed, end.audio)
            elif self._feed_buf:
                await asyncio.to_thread(self._feed_sync, np.concatenate(self._feed_buf))
            self._feed_buf = []
            self._recognizing = False
            return await asyncio.to_thread(self.rec.finish)

    async def _listen_loop(self) -> None:
        """Every 20 ms of caller audio → endpointer; recogniser fed in 100 ms batches while in speech.
        Asterisk sends nothing while a caller is silent, so missing audio is filled with silence by
        the clock, keeping the endpointer's timeline true."""
        last = time.monotonic()
        pending_feed: asyncio.Task[None] | None = None
        while True:
            try:
                frame = await asyncio.wait_for(self._frames.get(), 0.06)
                pcms = [frame.pcm]
                last = time.monotonic()
            except TimeoutError:
                now = time.monotonic()
                n = int((now - last) / FRAME_S)
                last += n * FRAME_S
                pcms = [SILENCE_FRAME] * n
            for pcm in pcms:
                ev = self.ep.push(pcm, self._media_ms)
                self._media_ms += 20
                self._pre.append(pcm)
                if isinstance(ev, SpeechStart):
                    await self._on_speech_start(ev)
                elif self._recognizing and self.ep.in_speech:
                    self._feed_buf.append(pcm)
                if ev is not None:
                    if isinstance(ev, SpeechStart) and ev.barge_in:
                        self._barge_flag = True
                    if isinstance(ev, SpeechEnd):
                        self._barge_flag = False
                    self._turn_events.put_nowait(ev)
            if len(self._feed_buf) >= 5 and (pending_feed is None or pending_feed.done()):
                batch, self._feed_buf = np.concatenate(self._feed_buf), []
                pending_feed = asyncio.create_task(self._feed(batch))

    async def _on_speech_start(self, ev: SpeechStart) -> None:
        # Start decoding now (with the audio before the onset) so the result is ready at end of turn.
        if not self._recognizing:
            expect = self._expect if not ev.barge_in else self._upcoming_expect
            async with self._rec_lock:
                await asyncio.to_thread(self.rec.start, expect)
                self._recognizing = True
                self._partial = ""
        onset_frames = max(1, (self._media_ms - ev.start_ms) // 20 + 10)
        self._feed_buf = list(self._pre)[-onset_frames:]

    # ------------------------------------------------------------------ tools
    async def _tool(self, call_tool: CallTool) -> ToolResult | Timeout:
        task = asyncio.create_task(self.s.tools.run(call_tool))
        turn = self.timings[-1] if self.timings else None
        try:
            done, _ = await asyncio.wait({task}, timeout=call_tool.budget_ms / 1000)
            if not done:
                if turn is not None:
                    turn.ack_played = True
                log.info("call %s: %s past its %d ms budget: acknowledging", self.call.call_id, call_tool.name,
                         call_tool.budget_ms)
                ACKNOWLEDGEMENTS.inc()
                ack = Say(self.settings.ack_text, prompt_id="ack", interruptible=False)
                self._log_action(ack)
                await self._say(ack)
                done, _ = await asyncio.wait({task}, timeout=self.settings.tool_timeout_s)
            if not done:
                log.warning("call %s: %s did not answer within %.1fs", self.call.call_id, call_tool.name,
                            self.settings.tool_timeout_s)
                TOOL_CALLS.labels(call_tool.name, "timeout").inc()
                return Timeout("tool")
            result = task.result()
            TOOL_CALLS.labels(call_tool.name, "ok" if result.ok else (result.error or "error")).inc()
            self._log("tool_result", ok=result.ok, error=result.error, submitted=result.submitted)
            return result
        finally:
            if turn is not None:
                turn.tool_done = time.monotonic()
            if not task.done():
                task.cancel()


def _heard_text(spoken: list[_Spoken], frames_sent: int) -> str:
    """The words the caller heard before cutting in, from how many 20 ms frames went out."""
    heard: list[str] = []
    left = frames_sent
    for part in spoken:
        if left >= part.frames:
            heard.append(part.text)
            left -= part.frames
            continue
        words = part.text.split()
        k = int(len(words) * max(0, left) / max(1, part.frames))
        if k:
            heard.append(" ".join(words[:k]))
        break
    return " ".join(heard)


def describe(timings: list[TurnTiming]) -> list[dict[str, Any]]:
    return [{"text": t.text, "ack": t.ack_played, **t.profile_ms()} for t in timings]
