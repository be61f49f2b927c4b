"""The ``both`` speech engine: whisper hears every turn, and a turn answered with a value is heard twice.

On turns that fill a number, code, date or time (the Expectation's kind is one of :data:`VALUE_KINDS`),
pocketsphinx decodes the same audio with the turn's grammar while the caller speaks. At the end of the turn
both results are read as the conversation will read them (the slot's own parser, :class:`SlotReader`):

- the same value from both: used as heard (whisper's text);
- different values, or only one of them gives one: the transcript is marked ``unsure`` and the value is
  read back before it is used ("I have 4 5 6 7. Is that right?"); whisper's value when it has one;
- no value from either: whisper's text (the caller said something else: a question, a correction, "I
  don't know"), as heard;
- on a number turn, two values that differ only in how many times a repeated digit was said (whisper "999
  999" or "9 9" against the grammar's 9999; "8 8 8 8 8" against 8888): the grammar's, read back. Its count
  is bounded by the slot's length and exact; whisper's numeral formatting miscounts repeated digits;
- on a number turn, a value from the grammar alone while whisper wrote words with no number in them at all:
  whisper's text, as heard. The grammar has no way to say "not a number" and forces any sentence into digits
  ("you're not listening, that's not what I said" -> "two eight two double five six" on a real call): the
  caller's words (a complaint, a request for a person, "I don't have it") are what the conversation must see.

Code turns (letters with a ``code_format``: a UK postcode) are not paired with the grammar: its letters loop
read none of the 80 phone-set postcodes right and never agreed with whisper on a value. Whisper's value,
when its transcript holds one, is read back; when it holds none but looks like a code misheard ("S-t-a-b-a",
"and one one eighty": ``spelled_code_in``), the same audio is decoded again with every step constrained to
what can still become a postcode (``speech/token_constraint.py``, run in the whisper worker), and that value
is read back. On the phone set's 80 postcodes: 21 right with whisper alone, 27 with the constrained decode
after it (docs/speech-bench.md). Words that are no code ("I don't know it") stand as heard.

Yes/no turns are whisper's, with the yes/no grammar decoding the same audio beside it (its partials do not
drive the endpointer there). Whisper's verdict stands, except where it is unclear only for a recogniser's
slip beside an answer and the grammar, on its own, heard that answer (:func:`grammar_answer_stands`): a yes
with one word whisper cannot place and nothing against it ("She would go ahead." for "sure, go ahead", the
grammar "sure"), or a no that runs on into a yes ("No, it is." for "no it isn't", the grammar "no it isn't").
Either engine alone never consents: the grammar forces some hedges into a yes, and whisper's stray word may
be a condition it misheard; both together are two independent hearings of one answer. A whisper failure on a
yes/no turn is not replaced by the grammar's answer.

Open, choice and free-text turns are whisper's alone. This is the rule measured by ``ari-agent
bench stt --engines both`` on the generated phone set (docs/speech-bench.md): 4-digit numbers 45.0 % /
85.0 % / 87.5 % right (pocketsphinx / whisper / both) with 32 / 2 / **0** wrong values used as heard; for
yes/no whisper's verdict was best alone (92.9 %, 0 of 62 non-yes answers heard as yes); pocketsphinx's domain
LM pulls out-of-scope requests into domain words, so open turns are not paired.

The grammar's partial results still drive the endpointer on paired turns (whisper gives none), as in the
pocketsphinx mode. The paired grammar runs without lattice posteriors (:func:`paired_grammar_settings`): its
confidence decides nothing here (agreement does), and computing it was most of the turn's wait: pocketsphinx's
``finish`` on the 4-8 digit order-number grammar took p50 377 / p95 1768 ms with them and 1 ms without, over
the 80 phone-set digit utterances, with 28 / 31 of them read right. A whisper failure on a paired turn falls
back to the grammar's result, unsure; a grammar failure leaves whisper's, unsure.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Final, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from ari_agent.config import PocketsphinxSettings
from ari_agent.conversation.intent_map import IntentMap, SlotSpec
from ari_agent.conversation.slots import parse_digits, parse_slot
from ari_agent.conversation.slots.digits import digit_runs
from ari_agent.conversation.slots.postcode_reading import spelled_code_in
from ari_agent.conversation.slots.yes_no import first_answer, read_yes_no, unaccounted_words
from ari_agent.media.pcm import as_pcm16
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import SpeculativeRecognizer, SpeechRecognizer, Transcript
from ari_agent.uk_postcodes import spaced

log = logging.getLogger(__name__)

VALUE_KINDS: Final = frozenset({"digits", "number", "date", "time", "letters"})
NUMBER_KINDS: Final = frozenset({"digits", "number"})

ValueReader = Callable[[Expectation, str], "str | None"]
# A decode of a code turn's audio constrained to the turn's code_format (``WhisperWorkerPool.transcribe``
# with ``constraint``): the value, or '' when it made none.
CodeDecoder = Callable[[Expectation, "npt.NDArray[np.int16]"], Transcript]


class RecordCheck(NamedTuple):
    """A code turn's audio checked against the code on the caller's record (``WhisperWorkerPool.check_code``)."""

    said: bool  # the audio says that code (``speech/code_check.py``)
    check_ms: float  # how long the check took
    found: str | None  # the code its free constrained decode found (the code turn's second reading: not run again)
    ran: bool = True  # False: no check was made (an engine error, no audio), so ``said`` False rejects nothing

    @property
    def rejected(self) -> bool:
        """The check ran and the audio does not say the code on record."""
        return self.ran and not self.said


RecordChecker = Callable[[str, "npt.NDArray[np.int16]"], RecordCheck]


@dataclasses.dataclass
class _Early:
    """What ran right after an early decode of a code turn, on the same audio (used if that decode stands)."""

    heard: Transcript
    second: Transcript | None = None  # the constrained decode
    record: RecordCheck | None = None  # the check against the code on record


class WholeUtteranceRecognizer(SpeechRecognizer, SpeculativeRecognizer, Protocol):
    """What the paired recogniser needs of its whisper side (``whisper_stt.WhisperRecognizer``)."""

    def turn_audio(self) -> npt.NDArray[np.int16]:
        """The audio fed since ``start`` (a code turn's second decode reads the same buffer)."""
        ...


class SlotReader:
    """Reads a transcript as the conversation will for the turn's slot: the canonical value, or None."""

    def __init__(self, intent_map: IntentMap, today: Callable[[], date] = date.today) -> None:
        self.map = intent_map
        self.today = today

    def __call__(self, expect: Expectation, text: str) -> str | None:
        if not text.strip():
            return None
        spec: SlotSpec | None = self.map.slot(expect.slot) if expect.slot else None
        if spec is None:  # a grammar turn with no slot of the map behind it: digits, else the words themselves
            if expect.kind == "digits":
                return parse_digits(text, expect.min_digits or 1, expect.max_digits or 32)
            return " ".join(text.lower().split()) or None
        got = parse_slot(spec, text, today=self.today(), date_order=self.map.spec.date_order,
                         postcode=self.map.spec.locale.postcode)
        return got.value if got is not None else None


class PairedRecognizer:
    """:class:`~ari_agent.speech.recognizer.SpeechRecognizer` (and speculative, settling) over a whisper front
    end and a grammar recogniser for one call."""

    engine = "both"

    def __init__(self, whisper: WholeUtteranceRecognizer, grammar: SpeechRecognizer, read_value: ValueReader,
                 codes: CodeDecoder | None = None, records: RecordChecker | None = None) -> None:
        self.whisper = whisper
        self.grammar = grammar
        self.read_value = read_value
        self.codes = codes
        self.records = records
        self._expect = Expectation()
        self._paired = False
        self._coded = False  # a code turn (letters with a code_format): whisper, then its constrained decode
        # the constrained decode or record check run right after an early decode (decode())
        self._early_code: _Early | None = None

    def start(self, expect: Expectation) -> None:
        self._expect = expect
        self._coded = self.codes is not None and expect.kind == "letters" and expect.code_format is not None
        self._paired = (expect.kind in VALUE_KINDS and not self._coded) or expect.kind == "yes_no"
        self._early_code = None
        self.whisper.start(expect)
        if self._paired:
            self.grammar.start(expect)

    def feed(self, pcm8k: npt.ArrayLike) -> None:
        self.whisper.feed(pcm8k)
        if self._paired:
            self.grammar.feed(pcm8k)

    @property
    def _yes_no(self) -> bool:
        """A yes/no turn: paired, but the grammar's partials do not drive the endpointer."""
        return self._expect.kind == "yes_no"

    def partial(self) -> str:
        return self.grammar.partial() if self._paired and not self._yes_no else ""

    def finish(self) -> Transcript:
        if self._coded:
            audio = self.whisper.turn_audio()
            return self._read_code(self.whisper.finish(), audio)
        if not self._paired:
            return self.whisper.finish()
        self._paired = False
        box: list[Transcript] = []
        # the grammar's end_utt (a few ms to ~100 ms) runs while whisper decodes in its worker process
        grammar = threading.Thread(target=self._finish_grammar, args=(box,), name="grammar-finish", daemon=True)
        grammar.start()
        heard = self.whisper.finish()
        grammar.join()
        return self.combine(box[0], heard)

    def _finish_grammar(self, box: list[Transcript]) -> None:
        try:
            box.append(self.grammar.finish())
        except Exception as exc:  # the turn goes on with whisper's result alone
            box.append(Transcript(text="", engine=self.grammar.engine, error=f"grammar recogniser failed: {exc}"))

    def decode(self, pcm8k: npt.ArrayLike) -> Transcript:
        """Whisper's early decode at a pause (the grammar goes on being fed until the turn ends). On a code
        turn whose early transcript holds no code, the constrained decode of the same audio follows at once,
        so that when the early decode stands (:meth:`settle`) the turn's end waits for neither."""
        early = self.whisper.decode(pcm8k)
        if self._coded and self.codes is not None and early.ok:
            mine = self.read_value(self._expect, early.text)
            record = self._expect.on_record
            if record is not None and self.records is not None:
                if mine != record:
                    self._early_code = _Early(early, record=self._check(record, as_pcm16(pcm8k, "recogniser input")))
            elif code_verdict(mine, early.ok, early.text) == "decode_again":
                self._early_code = _Early(early, second=self.codes(self._expect, as_pcm16(pcm8k, "recogniser input")))
        return early

    def discard(self) -> None:
        self.whisper.discard()
        self._coded, self._early_code = False, None
        if self._paired:
            self._paired = False
            self._finish_quietly()

    def settle(self, early: Transcript) -> Transcript:
        """The early whisper decode stood: on a paired turn, combined with the grammar's final result."""
        if self._coded:
            audio, pre = self.whisper.turn_audio(), self._early_code
            self.whisper.discard()
            return self._read_code(early, audio, pre if pre is not None and pre.heard is early else None)
        self.whisper.discard()
        if not self._paired:
            return early
        self._paired = False
        box: list[Transcript] = []
        self._finish_grammar(box)
        return self.combine(box[0], early)

    def combine(self, grammar: Transcript, heard: Transcript) -> Transcript:
        """One transcript from the grammar's and whisper's results on the same paired turn."""
        latency = max(grammar.latency_ms, heard.latency_ms)
        if self._yes_no:
            if heard.ok and grammar.ok and grammar_answer_stands(heard.text, grammar.text):
                log.info("yes/no turn: the grammar's answer stands for whisper's unclear reading")
                return _as(grammar, latency, unsure=False, confidence=max(heard.confidence, grammar.confidence))
            return dataclasses.replace(heard, latency_ms=latency)
        if not heard.ok:
            if not grammar.ok:
                return heard
            log.warning("whisper failed on a paired turn (%s): the grammar's result is used, unsure", heard.error)
            return _as(grammar, latency, unsure=bool(grammar.text))
        if not grammar.ok:
            log.warning("%s: whisper's result is used, unsure", grammar.error)
            return _as(heard, latency, unsure=bool(heard.text))
        mine, theirs = self.read_value(self._expect, heard.text), self.read_value(self._expect, grammar.text)
        verdict = pick(self._expect.kind, mine, theirs, heard.text)
        if verdict == "agreed":
            return _as(heard, latency, unsure=False, confidence=max(heard.confidence, grammar.confidence))
        if verdict == "grammar":
            return _as(grammar, latency, unsure=True)
        return _as(heard, latency, unsure=verdict == "whisper_unsure")

    def _read_code(self, heard: Transcript, audio: npt.NDArray[np.int16], pre: _Early | None = None
                   ) -> Transcript:
        """A code turn's transcript. With a code on record: that code, as heard, when whisper read it or the
        check finds it in the audio (:meth:`_against_record`). Else whisper's value, read back; when its words
        hold none but could be a code misheard (:func:`spelled_code_in`), the constrained decode's value (run
        already when ``pre`` holds it, or as the record check's own), read back; else whisper's words as heard
        (the caller said something else: "I don't know it")."""
        self._coded, self._early_code = False, None
        expect = self._expect
        second = pre.second if pre is not None else None
        if expect.on_record is not None and self.records is not None:
            sure, heard, second, check = self._against_record(expect.on_record, heard, audio,
                                                              pre.record if pre is not None else None)
            if sure is not None:
                return sure
            assert check is not None  # a check ran whenever the record was not taken as heard
            return dataclasses.replace(self._read_unchecked(heard, audio, second), off_record=check.rejected)
        return self._read_unchecked(heard, audio, second)

    def _read_unchecked(self, heard: Transcript, audio: npt.NDArray[np.int16], second: Transcript | None
                        ) -> Transcript:
        """A code turn read as heard (no code on record, or the check did not find it): see :meth:`_read_code`."""
        expect = self._expect
        verdict = code_verdict(self.read_value(expect, heard.text) if heard.ok else None, heard.ok, heard.text)
        if verdict != "decode_again":
            return _as(heard, heard.latency_ms, unsure=verdict == "whisper_unsure")
        assert self.codes is not None
        if second is None:
            second = self.codes(expect, audio) if audio.size else Transcript(text="", engine="whisper-constrained")
        latency = heard.latency_ms + second.latency_ms  # one after the other
        if second.ok and self.read_value(expect, second.text) is not None:
            return _as(second, latency, unsure=True)
        if not second.ok:
            log.warning("constrained decode failed on a code turn (%s): whisper's words are used", second.error)
        return _as(heard, latency, unsure=False) if heard.ok else heard

    def _against_record(self, record: str, heard: Transcript, audio: npt.NDArray[np.int16],
                        checked: RecordCheck | None = None
                        ) -> tuple[Transcript | None, Transcript, Transcript | None, RecordCheck | None]:
        """The turn against the code on the caller's record (``checked``: the check, run already on the
        turn's audio after an early decode). That code, as heard (no read-back), when whisper read it or the
        check says the audio holds it; else (None, whisper's transcript with the check's time added, the
        check's own constrained reading, the check), and the turn is read as any code turn."""
        if heard.ok and self.read_value(self._expect, heard.text) == record:
            return _as(heard, heard.latency_ms, unsure=False, confidence=1.0), heard, None, None  # no check
        check = checked if checked is not None else self._check(record, audio)
        latency = heard.latency_ms + check.check_ms
        if check.said:
            return _as(dataclasses.replace(heard, text=spaced(record), engine="whisper-record"), latency, unsure=False,
                       confidence=1.0), heard, None, check
        reading = Transcript(text=spaced(check.found) if check.found else "", confidence=0.5,
                             engine="whisper-constrained")  # its time is the check's, counted once
        return None, dataclasses.replace(heard, latency_ms=latency), reading, check

    def _check(self, record: str, audio: npt.NDArray[np.int16]) -> RecordCheck:
        assert self.records is not None
        if not audio.size:
            return _NOT_CHECKED
        try:
            return self.records(record, audio)
        except Exception as exc:  # the turn goes on as any code turn
            log.warning("code check failed on a code turn: %s", type(exc).__name__)
            return _NOT_CHECKED

    def close(self) -> None:
        self.whisper.close()
        self.grammar.close()

    def _finish_quietly(self) -> None:
        try:
            self.grammar.finish()
        except Exception:  # an abandoned turn's result is not wanted
            pass


_NOT_CHECKED: Final = RecordCheck(said=False, check_ms=0.0, found=None, ran=False)

Verdict = Literal["agreed", "whisper_unsure", "grammar", "whisper"]


def paired_grammar_settings(settings: PocketsphinxSettings) -> PocketsphinxSettings:
    """The grammar side's pocketsphinx settings: the service's, without lattice posteriors."""
    return settings.model_copy(update={"posterior": False})


def pick(kind: str, mine: str | None, theirs: str | None, whisper_text: str) -> Verdict:
    """Whose reading of a paired turn stands (the rule in the module docstring), from whisper's value
    (``mine``), the grammar's (``theirs``) and whisper's words: "agreed" (used as heard), "whisper_unsure" or
    "grammar" (read back), "whisper" (its words as heard: no value, or words with no number at all)."""
    if mine is not None and mine == theirs:
        return "agreed"
    number = kind in NUMBER_KINDS
    if mine is not None and not (number and theirs is not None and same_but_repeats(mine, theirs)):
        return "whisper_unsure"
    if theirs is not None and not (number and mine is None and no_number_in(whisper_text)):
        return "grammar"
    return "whisper"


CodeVerdict = Literal["whisper_unsure", "whisper", "decode_again"]


def code_verdict(mine: str | None, whisper_ok: bool, whisper_text: str) -> CodeVerdict:
    """A code turn after whisper's free decode: its value read back ("whisper_unsure"), its words as heard
    ("whisper": no code in them and none misheard), or the audio decoded again, constrained to the code
    format ("decode_again": whisper failed, heard nothing, or wrote what may be a code misheard)."""
    if mine is not None:
        return "whisper_unsure"
    if whisper_ok and whisper_text.strip() and not spelled_code_in(whisper_text):
        return "whisper"
    return "decode_again"


def grammar_answer_stands(whisper_text: str, grammar_text: str) -> bool:
    """On a yes/no turn, the grammar's answer stands for whisper's unclear reading (module docstring): the
    grammar heard a yes and whisper a yes with exactly one word it cannot place and no hedge, no, question,
    condition or wait; or the grammar heard a no and whisper's answer begins with a no and runs on into a yes."""
    heard = read_yes_no(whisper_text)
    if not heard.unclear:
        return False
    theirs = read_yes_no(grammar_text)
    if theirs.yes:
        return heard.reason == "other" and heard.heard_yes and len(unaccounted_words(whisper_text)) == 1
    if theirs.no:
        return heard.reason == "mixed" and first_answer(whisper_text) == "no"
    return False


def same_but_repeats(a: str, b: str) -> bool:
    """``a`` and ``b`` are the same digits in the same order but not as many: a repeated digit counted more or
    fewer times (999999 / 9999, 55551 / 5551; not 4557 / 4577, which is another number of the same length)."""
    return len(a) != len(b) and [k for k, _ in itertools.groupby(a)] == [k for k, _ in itertools.groupby(b)]


def no_number_in(text: str) -> bool:
    """``text`` has words and the digits parser finds no spoken number in them (no numeral either)."""
    return any(c.isalnum() for c in text) and not digit_runs(text)


def _as(t: Transcript, latency_ms: float, *, unsure: bool, confidence: float | None = None) -> Transcript:
    return dataclasses.replace(t, latency_ms=latency_ms, engine=f"both:{t.engine}" if t.engine else "both",
                               error=None, unsure=unsure, confidence=t.confidence if confidence is None else confidence)
