"""What every call shares: the intent map, classifier, tools, rendered speech and the recognisers."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ari_agent.call.paired_recognition import RecordCheck
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.throttle import Throttle
from ari_agent.governance.runtime import Governance
from ari_agent.integrations.runner import ToolRunner
from ari_agent.media.endpointer import EndpointerConfig
from ari_agent.seam import Expectation
from ari_agent.speech.code_check import matches
from ari_agent.speech.recognizer import SpeechRecognizer, Transcript
from ari_agent.speech.stt import SttConfig, create_recognizer
from ari_agent.speech.tts import PromptCache, split_sentences

if TYPE_CHECKING:
    from ari_agent.call.paired_recognition import CodeDecoder, RecordChecker
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

log = logging.getLogger(__name__)


@dataclass
class VoiceLoopSettings:
    ack_text: str = "One moment while I check that."
    tool_timeout_s: float = 8.0
    dtmf_interdigit_s: float = 2.0
    endpointer: EndpointerConfig = field(default_factory=lambda: EndpointerConfig(echo_min_speech_ms=140))
    stt: SttConfig = field(default_factory=lambda: SttConfig(engine="pocketsphinx"))  # resolved: never "auto"
    business_hours: bool = True  # the map's hours judged on the local clock (False: always open)


def call_recognizer(stt: SttConfig, intent_map: IntentMap, whisper_pool: WhisperWorkerPool | None = None
                    ) -> SpeechRecognizer:
    """One call's recogniser for a resolved ``stt.engine`` (``both``: whisper and the grammar, paired on the
    map's value turns; ``ari-agent transcribe`` uses it too). pocketsphinx computes lattice posteriors on
    number and code turns only where the map reads values by confidence (they cost hundreds of ms a turn)."""
    if stt.engine == "pocketsphinx" and intent_map.spec.limits.reads_confidence:
        stt = stt.model_copy(update={"pocketsphinx": stt.pocketsphinx.model_copy(update={"grammar_posterior": True})})
    if stt.engine != "both":
        return create_recognizer(stt, whisper_pool=whisper_pool)
    from ari_agent.call.paired_recognition import PairedRecognizer, SlotReader, paired_grammar_settings
    from ari_agent.speech.whisper_stt import WhisperRecognizer

    whisper = create_recognizer(stt.model_copy(update={"engine": "whisper"}), whisper_pool=whisper_pool)
    grammar = create_recognizer(stt.model_copy(update={"engine": "pocketsphinx",
                                                       "pocketsphinx": paired_grammar_settings(stt.pocketsphinx)}))
    assert isinstance(whisper, WhisperRecognizer)
    codes = code_decoder(whisper_pool) if whisper_pool is not None and stt.whisper.constrained_codes else None
    records = record_checker(whisper_pool) if codes is not None and whisper_pool is not None else None
    return PairedRecognizer(whisper, grammar, SlotReader(intent_map), codes, records)


def code_decoder(pool: WhisperWorkerPool) -> CodeDecoder:
    """A code turn's second decode: the pool's, constrained to the turn's code format."""
    def decode(expect: Expectation, audio: npt.NDArray[np.int16]) -> Transcript:
        return pool.transcribe(audio, None, constraint=expect.code_format)
    return decode


def record_checker(pool: WhisperWorkerPool) -> RecordChecker:
    """A code turn checked against the code on record: the pool's two constrained decodes, judged by
    ``code_check.matches``."""
    def check(record: str, audio: npt.NDArray[np.int16]) -> RecordCheck:
        got = pool.check_code(audio, record)
        return RecordCheck(matches(got), got.latency_ms, got.heard if got.error is None else None,
                           ran=got.error is None and math.isfinite(got.record_score))
    return check


class VoiceServices:
    def __init__(self, intent_map: IntentMap, classifier: IntentClassifier, tools: ToolRunner, prompts: PromptCache,
                 settings: VoiceLoopSettings | None = None, whisper_pool: WhisperWorkerPool | None = None,
                 governance: Governance | None = None, throttle: Throttle | None = None) -> None:
        self.intent_map = intent_map
        self.classifier = classifier
        self.tools = tools
        self.prompts = prompts
        self.settings = settings or VoiceLoopSettings()
        self.whisper_pool = whisper_pool
        self.governance = governance  # kill switch, audit log, map version (None: none, as in unit tests)
        self.throttle = throttle  # limits across calls (call/throttling.py; None: off, as in unit tests)
        self._warming: asyncio.Task[None] | None = None  # the map's lines rendered ahead (warm)

    def recognizer(self) -> SpeechRecognizer:
        """A recogniser for one call (pocketsphinx: its own decoder; whisper: the shared pool; both: the two,
        paired on turns answered with a value)."""
        return call_recognizer(self.settings.stt, self.intent_map, self.whisper_pool)

    async def aclose(self) -> None:
        if self._warming is not None:
            self._warming.cancel()
            await asyncio.gather(self._warming, return_exceptions=True)
        await self.tools.aclose()
        if self.governance is not None:
            await self.governance.aclose()
        if self.whisper_pool is not None:
            await asyncio.to_thread(self.whisper_pool.close)

    async def warm(self) -> None:
        """Render the fixed prompts at start-up, so calls never wait for them; then, in the background, every
        other line of the map as written (its intros, questions, fixed answers: ``IntentMap.spoken_lines``),
        so a reply's first sentence is in memory rather than synthesised while the caller waits (Piper: 130-
        250 ms on this 2-core machine for "Sure, I can check on your order."). Start-up does not wait for
        those; a call that needs one first renders it itself."""
        p = self.intent_map.spec.prompts
        fixed = [self.settings.ack_text, p.anything_else, p.goodbye, p.handoff, p.not_understood, p.silence,
                 p.kill_switch]
        await self.prompts.warm([s for text in fixed for s in split_sentences(text)])
        lines = [s for text in self.intent_map.spoken_lines() for s in split_sentences(text)]
        self._warming = asyncio.get_running_loop().create_task(self._warm_quietly(lines))

    async def warmed(self) -> None:
        """Wait for the background part of ``warm`` (it logs its failures, never raises)."""
        if self._warming is not None:
            await asyncio.shield(self._warming)

    def _code_formats(self) -> set[str]:
        """The constrained decodes this map's turns may ask the whisper workers for (both engine)."""
        stt = self.settings.stt
        if self.whisper_pool is None or stt.engine != "both" or not stt.whisper.constrained_codes:
            return set()
        return {f for f in map(self.intent_map.code_format, self.intent_map.slots()) if f is not None}

    async def _warm_quietly(self, lines: list[str]) -> None:
        try:
            await self.prompts.warm(lines)
        except Exception as exc:  # a line that cannot be rendered now is rendered by the call that says it
            log.warning("rendering the intent map's lines ahead failed (%s); calls render them as needed", exc)
        # each worker's constrained decoder loads on its first use (~0.45 s): here, not on a caller's turn
        for constraint in self._code_formats():
            assert self.whisper_pool is not None
            await asyncio.to_thread(self.whisper_pool.warm, constraint)
