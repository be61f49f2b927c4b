"""The speech loop of one call: VAD/endpointing → STT → conversation engine → TTS → paced RTP out.

``VoiceConversation`` wires one call's parts together and carries out the engine's actions (DESIGN.md's
seam) through the shared :class:`~ari_agent.call.actions.ActionInterpreter`:

- ``Say`` → :class:`~ari_agent.call.playback.Playback` (piece by piece as the voice renders them:
  clauses for a neural voice; barge-in flushes the line and the engine is told what the caller heard);
- ``Listen`` → :class:`~ari_agent.call.listening.Listener` (endpointer, recogniser fed as the caller
  speaks, turn rules of :mod:`ari_agent.speech.turn_completion`) raced against
  :func:`~ari_agent.call.dtmf.collect_dtmf`;
- ``CallTool`` → :class:`~ari_agent.call.tools.ToolCaller` (acknowledgement past the budget, timeout);
- ``Transfer`` → the queue is checked while the line plays; once it has played out the caller goes to the
  queue with the context.

Every turn's stage timings are kept (``timings``) and the call's event log (``events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from ari_agent.call.actions import ActionInterpreter, action_record
from ari_agent.call.answers import ConversationAnswers
from ari_agent.call.awaiting import finish_cleanup, first_of, stop_task
from ari_agent.call.call_log import CallLog
from ari_agent.call.dtmf import collect_dtmf
from ari_agent.call.listening import Listener
from ari_agent.call.playback import AudioOut, Playback
from ari_agent.call.recognition import RecognizerFeed
from ari_agent.call.record_lookup import RecordLookups
from ari_agent.call.services import VoiceLoopSettings, VoiceServices
from ari_agent.call.timing import TurnTiming, TurnTimings, describe
from ari_agent.call.tools import ToolCaller
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.media.endpointer import Endpointer
from ari_agent.media.jitter import AudioFrame
from ari_agent.media.pcm import Pcm
from ari_agent.seam import Action, BargeIn, CallStarted, CallTool, Event, Expectation, Hangup, Listen, Say, Transfer
from ari_agent.speech.recognizer import Transcript
from ari_agent.speech.tts import split_sentences
from ari_agent.speech.turn_completion import TurnCompletion
from ari_agent.telephony.events import Channel

log = logging.getLogger(__name__)

__all__ = ["CallLine", "TurnTiming", "VoiceConversation", "VoiceLoopSettings", "VoiceServices", "describe"]


class CallLine(Protocol):
    """What the speech loop needs of the call it runs on (``CallSession``; a fake in unit tests)."""

    @property
    def call_id(self) -> str: ...
    @property
    def caller(self) -> Channel: ...
    @property
    def started_at(self) -> float: ...
    @property
    def endpoint(self) -> AudioOut: ...
    @property
    def caller_gone(self) -> asyncio.Event: ...
    @property
    def dtmf(self) -> asyncio.Queue[str]: ...
    @property
    def frame_listeners(self) -> list[Callable[[AudioFrame], None]]: ...

    async def handoff(self, queue: str, reason: str, context: dict[str, str] | None = None, *,
                      announce: Callable[[str], Awaitable[object]] | None = None,
                      render: Callable[[str], Awaitable[Pcm]] | None = None, told: bool = False,
                      ready: Callable[[], Awaitable[object]] | None = None) -> bool: ...


class VoiceConversation:
    def __init__(self, services: VoiceServices) -> None:
        self.s = services
        self.settings = services.settings
        self.timings = TurnTimings()
        self.transcripts: list[Transcript] = []
        self.barge_ins: list[str] = []
        self.events = CallLog("", time.monotonic())
        self.handing_off = False  # the call layer is announcing a handoff it decided (announce_handoff)
        self._handoff_failed = asyncio.Event()
        self._last: Action | None = None  # the last two actions carried out (a Transfer: was a line said first?)
        self._before_last: Action | None = None

    async def run(self, call: CallLine) -> None:
        self.call = call
        self.events = CallLog(call.call_id, call.started_at)
        self.events.mark_sensitive(self.s.intent_map)  # identity answers are never stored (CallLog.store)
        self.engine = ConversationEngine(self.s.intent_map, self.s.classifier, call_id=call.call_id,
                                         throttle=self.s.throttle,
                                         now=datetime.now() if self.s.settings.business_hours else None)
        gov = self.s.governance
        if gov is not None and gov.kill_switch is not None:
            gov.kill_switch.attach(self.engine)  # on: a new call goes to the queue; flipped: at the next turn
        rules = TurnCompletion(ConversationAnswers(self.s.classifier))
        feed = RecognizerFeed(await asyncio.to_thread(self.s.recognizer), rules)
        endpointer = Endpointer(self.settings.endpointer, partial_text=lambda: feed.partial)
        stt = self.settings.stt
        self.listener = Listener(endpointer, feed, rules, self.events,
                                 speculate_after_ms=stt.whisper.speculate_after_ms
                                 if stt.engine in ("whisper", "both") else 0)
        self.transcripts = self.listener.transcripts
        self.playback = Playback(call.endpoint, self.s.prompts.stream, caller_gone=call.caller_gone,
                                 barge_in=self.listener.barge_in, set_playing=endpointer.set_playing,
                                 call_log=self.events)
        self.barge_ins = self.playback.barge_ins
        audit = (lambda a, outcome: gov.tool_called(call.call_id, a, outcome)) if gov else None
        self.tools = ToolCaller(self.s.tools.run, ack_text=self.settings.ack_text,
                                timeout_s=self.settings.tool_timeout_s, speak=self._speak, call_log=self.events,
                                audit=audit)
        self.records = RecordLookups(self.s.tools.run, call.call_id, audit=audit, call_log=self.events)
        call.frame_listeners.append(self.listener.on_frame)
        listening = asyncio.create_task(self.listener.run(), name=f"listen-{call.call_id}")
        try:
            interpreter = ActionInterpreter(self._decide, self, observe=self._observe)
            await interpreter.feed(CallStarted(caller_id=call.caller.caller_number, dnid=call.caller.dialplan_exten))
        finally:
            self.records.close()
            # finish_cleanup(): the session's repeated cancels must not cut this short, or the listener (and the
            # recogniser it holds: ~10-60 MB native) would run on after the call, one per call (a load run
            # grew 150 % in RSS so)
            failed = await finish_cleanup(self._stop_listening(listening, feed))
            if failed is not None:  # the listener broke: a failure of the conversation (as before)
                raise failed

    @staticmethod
    async def _stop_listening(listening: asyncio.Task[None], feed: RecognizerFeed) -> BaseException | None:
        failed = await stop_task(listening)  # repeated cancels: a lost one must not leave it listening
        with contextlib.suppress(Exception):
            await feed.close()
        return failed

    async def _decide(self, event: Event) -> list[Action]:
        # Classification costs 5-20 ms of numpy that releases the GIL: keep it off the event loop.
        actions = await asyncio.to_thread(self.engine.handle, event)
        turn = self.timings.latest()
        if turn is not None and turn.engine_done == 0.0:
            turn.engine_done = time.monotonic()
        return actions

    def _observe(self, action: Action) -> None:
        if self.handing_off:  # not carried out (announce_handoff): kept out of the log and the transcript
            return
        self._before_last, self._last = self._last, action
        self.events.add(**action_record(action))

    async def _speak(self, say: Say) -> str | None:
        self._observe(say)
        return await self.playback.say(say, self.timings.open_turn())

    # ------------------------------------------------------------------ ActionHandler
    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        upcoming = next((a.expect for a in rest if isinstance(a, Listen)), self.listener.expect)
        self.listener.upcoming = upcoming
        self.records.prefetch(upcoming, ready=lambda e: self._upcoming_ready(upcoming, e))
        heard = await self.playback.say(action, self.timings.open_turn())
        return BargeIn(heard_text=heard) if heard is not None else None

    def _upcoming_ready(self, asked: Expectation, with_code: Expectation) -> None:
        if self.listener.upcoming is asked:  # still the question playing: an answer over it is checked too
            self.listener.upcoming = with_code

    async def listen(self, action: Listen) -> Event:
        await self.listener.begin(await self.records.resolve(action.expect), action.timeout_s)
        keyed = asyncio.ensure_future(collect_dtmf(self.call.dtmf, action.expect, self.settings.dtmf_interdigit_s))
        spoken = asyncio.ensure_future(self.listener.next_utterance(self.timings))
        done = await first_of(keyed=keyed, spoken=spoken)
        if "keyed" in done:
            self.listener.cancel()
            dtmf = keyed.result()
            self.events.add("dtmf", digits=dtmf.digits)
            return dtmf
        return spoken.result()

    async def call_tool(self, action: CallTool) -> Event:
        # timed on the turn only while its reply has not begun: a follow-up sent after "that's confirmed"
        # was said is no part of the wait for that reply
        return await self.tools.call(action, self.timings.open_turn())

    async def transfer(self, action: Transfer) -> None:
        if self.handing_off:  # a supervisor's takeover or the maximum duration is moving the caller already
            log.info("call %s: %s transfer dropped: a forced handoff is under way", self.call.call_id, action.reason)
            return
        # The queue is checked while the conversation's handoff line plays (``ready``: nothing more is said,
        # and the caller not moved, before it has played out); after that line the announcement says only
        # what it could not know (call/handoff_plan.announcement).
        told = isinstance(self._before_last, Say) and bool(self._before_last.text.strip())
        ok = await self.call.handoff(action.queue, action.reason, dict(action.context), announce=self._announce,
                                     render=lambda text: asyncio.to_thread(self.s.prompts.sentence, text),
                                     told=told, ready=self.playback.wait_playout)
        if self.s.governance is not None:
            self.s.governance.transferred(self.call.call_id, action, ok)

    async def _announce(self, text: str) -> None:
        """What happens next, said just before the transfer (the queue and its wait, from call/handoff.py)."""
        say = Say(text, interruptible=False)
        self._observe(say)
        await self.playback.say(say)
        await self.playback.wait_playout()

    async def announce_handoff(self, text: str, *, synth_limit_s: float = 3.0, margin_s: float = 0.75) -> bool:
        """Say ``text`` before a handoff the conversation did not decide (call/forced_handoff.py): what the
        conversation was saying stops, and it says nothing more on this line. True once it has played
        out; False (at once) when it cannot be said: no line yet, the caller gone, TTS failing or slower
        than ``synth_limit_s``, or the audio not draining within its length plus ``margin_s``."""
        playback = getattr(self, "playback", None)
        if playback is None or self.call.caller_gone.is_set():
            return False
        self.handing_off = True
        self._handoff_failed.clear()
        playback.hold()
        self.events.add(**action_record(Say(text, interruptible=False)))
        try:
            pcm = await asyncio.wait_for(asyncio.to_thread(self._render_all, text), synth_limit_s)
        except Exception as exc:  # TimeoutError included: a TTS failure must not keep the caller waiting
            log.warning("call %s: handoff announcement not rendered (%s): transferring without it",
                        self.call.call_id, type(exc).__name__)
            return False
        self.call.endpoint.play(pcm)
        try:
            played: bool = await asyncio.wait_for(playback.wait_playout(), pcm.size / 8000 + margin_s)
        except TimeoutError:
            self.call.endpoint.stop_playback()
            log.warning("call %s: handoff announcement did not play out: transferring", self.call.call_id)
            played = False
        self.events.add("handoff_announced", played=played, ms=pcm.size // 8)
        return played

    def handoff_failed(self) -> None:
        """The forced handoff did not happen (ARI refused it): the line is the conversation's again."""
        self.handing_off = False
        if getattr(self, "playback", None) is not None:
            self.playback.held = False
        self._handoff_failed.set()

    def _render_all(self, text: str) -> Pcm:
        parts = [self.s.prompts.sentence(s) for s in split_sentences(text)]
        return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, dtype=np.int16)

    async def hangup(self, action: Hangup) -> None:
        if self.handing_off:  # the caller is being transferred: ending the call now would cut them off
            await first_of(gone=self.call.caller_gone.wait(), failed=self._handoff_failed.wait())
            if self.call.caller_gone.is_set():
                return
        await self.playback.wait_playout()
        log.info("call %s: agent hangs up (%s)", self.call.call_id, action.reason)
