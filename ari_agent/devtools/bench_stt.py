"""``ari-agent bench stt``: which recogniser to use per turn kind, measured on the generated phone test set.

Each utterance of :mod:`~ari_agent.devtools.phone_set` (caller voices, G.711, line noise, packet loss) is
recognised the way a call does it (:func:`~ari_agent.speech.utterance.recognise_utterance`: the turn's
Expectation, 20 ms frames, ``finish``) and the transcript is judged the way the conversation engine
would read it:

- open / out_of_scope: as a call reads the open turn, a request for a person first (the commands heard
  before any intent, ``conversation/commands.py``: "Stop the agent, please." is a transfer to a person on a
  call, whatever the classifier makes of it), then the demo map's router (patterns, then the real
  classifier); right when the intent matches (a request for a person: :data:`PERSON_INTENT`), and an
  out-of-scope request is right only when no intent is taken (clarified, or handed to a person);
- digits: the ``customer_number`` slot parser (exactly 4 digits); postcode: the ``postcode`` slot
  (UK shape, the map's ``locale.postcode``); yes_no: ``read_yes_no``'s verdict (yes / no / unclear),
  with every non-yes answer *heard as yes* counted apart (the dangerous error: it consents for the
  caller); date / time: the slot parsers' value against ``today`` of the set.

Engines: ``pocketsphinx`` (in process, the turn's grammar or domain LM), ``whisper`` (the worker pool
on the prepared ggml model, prompted per expectation) + the same parsers, ``both`` (both run on the
turn; see :func:`combine`), and always ``text``: the reference text through the same parsers, no
recogniser (the ceiling: what the parsers and the classifier make of perfect hearing).

Figures per kind x engine: accuracy, WER (lower-cased, punctuation dropped, numerals spelt digit by
digit, fillers "uh"/"um"/"er" dropped on both sides), latency p50/p95 of ``finish`` (the wait after
the audio ended; pocketsphinx decodes while the caller speaks), and CPU seconds per second of audio:
this process's ``time.process_time()`` around the decode plus the whisper worker's on-CPU time
(``/proc/PID/schedstat``), so it holds when others load the machine; wall latencies do not.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Final

from ari_agent.call.paired_recognition import code_verdict, grammar_answer_stands, paired_grammar_settings, pick
from ari_agent.config import PocketsphinxSettings
from ari_agent.conversation.commands import Command, detect_command
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.conversation.routing import IntentRouter
from ari_agent.conversation.slots import parse_slot
from ari_agent.conversation.slots.yes_no import read_yes_no
from ari_agent.devtools.phone_set import DEFAULT_CACHE, KINDS, PhoneItem, PhoneUtterance, Renderer, load_phone_set
from ari_agent.media.pcm import Pcm
from ari_agent.seam import Expectation
from ari_agent.speech.code_check import CheckLimits, matches
from ari_agent.speech.grammar_lm import words_of
from ari_agent.speech.recognizer import SpeechRecognizer
from ari_agent.speech.utterance import recognise_utterance
from ari_agent.uk_postcodes import INWARD, is_postcode

ENGINES: Final = ("pocketsphinx", "whisper", "both")
# Turn kinds answered with a slot value (a read-back can confirm it; a wrong one used as heard is a wrong order).
SLOT_KINDS: Final = frozenset({"digits", "postcode", "date", "time"})
PAIRED_KINDS: Final = SLOT_KINDS | {"yes_no"}  # the kinds the "both" engine hears with the grammar as well
FILLERS: Final = frozenset("uh um umm er erm hmm mm ah".split())
# The phone set's label (and the demo map's intent) for a caller asking for a person: a call takes such words as
# the command before any intent and transfers (``engine._on_command``), so the bench reads them the same way.
PERSON_INTENT: Final = "speak_to_human"


# ------------------------------------------------------------------ judging a transcript


@dataclass(frozen=True)
class Reading:
    """What the engine makes of a transcript for a turn kind: the value, None when nothing fits.
    ``confirm``: the value is to be read back before it is used (the "both" engine, where the two
    recognisers disagreed)."""

    value: str | None
    confirm: bool = False


class Judge:
    """Reads transcripts as the conversation engine would, for the demo map's slots and router."""

    def __init__(self, intent_map: IntentMap, today: date, classifier: Any | None = None) -> None:
        from ari_agent.conversation.nlu import build_classifier

        self.map = intent_map
        self.today = today
        self.router = IntentRouter(intent_map, classifier or build_classifier(intent_map.nlu_intents()))
        self.slots = {s.name: s for s in intent_map.slots()}
        self.open = intent_map.open_expectation()

    def expectation(self, item: PhoneItem) -> Expectation:
        """The Listen the engine would issue for this turn (``IntentMap.slot_expectation``, as the engine asks)."""
        if item.kind in ("open", "out_of_scope"):
            return self.open
        if item.kind == "yes_no":
            return Expectation(kind="yes_no", dtmf=True)
        return self.map.slot_expectation(self.slots[item.slot or ""])

    def read(self, item: PhoneItem, text: str) -> Reading:
        if item.kind in ("open", "out_of_scope"):
            if not text.strip():
                return Reading(None)
            return Reading(PERSON_INTENT if detect_command(text) is Command.HUMAN else self.router.route(text).intent)
        if item.kind == "yes_no":
            return Reading(read_yes_no(text).verdict)
        spec = self.slots[item.slot or ""]
        got = parse_slot(spec, text, today=self.today, date_order=self.map.spec.date_order,
                         postcode=self.map.spec.locale.postcode)
        return Reading(got.value if got is not None else None)


def combine(kind: str, ps: Reading, wh: Reading, wh_text: str = "") -> Reading:
    """The "both" engine as calls run it (``call/paired_recognition.py``) on verdicts alone: open,
    out-of-scope and yes/no turns are whisper's (``run_one`` applies ``grammar_answer_stands`` on yes/no
    turns' words); a slot value follows the production rule, :func:`ari_agent.call.paired_recognition.pick`:
    the value both agree on, used as heard; otherwise whisper's, or pocketsphinx's (when whisper's transcript
    gave none, or on a number turn differed only in the count of a repeated digit), with ``confirm`` set: it
    is read back before it is used; none when whisper's words hold no number at all.
    """
    if kind not in SLOT_KINDS:
        return Reading(wh.value)
    verdict = pick(kind, wh.value, ps.value, wh_text)
    if verdict == "agreed":
        return Reading(wh.value)
    if verdict == "grammar":
        return Reading(ps.value, confirm=True)
    return Reading(wh.value, confirm=verdict == "whisper_unsure")


# ------------------------------------------------------------------ word error rate


def wer_words(text: str) -> list[str]:
    """Words for WER: lower case, numerals digit by digit, hyphens split, fillers dropped."""
    return [w for w in words_of(text.replace("-", " ")) if w not in FILLERS]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(word edit distance, reference length)."""
    r, h = wer_words(ref), wer_words(hyp)
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, row = row, [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return row[len(h)], len(r)


# ------------------------------------------------------------------ measuring


def _cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    """On-CPU seconds of each process so far (``/proc/PID/schedstat``, ns; absent where unreadable)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat", encoding="ascii") as fh:
                out[pid] = int(fh.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return out


def _worker_cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the workers spent between two readings; a worker replaced meanwhile (killed after an overrun)
    counts with what its successor spent (the killed one's last share is lost: such a turn is an error)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass
class Heard:
    """One engine on one utterance."""

    text: str
    confidence: float
    value: str | None
    finish_ms: float
    cpu_s: float
    error: str | None = None
    confirm: bool = False


@dataclass(frozen=True)
class RecordChecks:
    """A postcode turn checked against codes on record (``speech/code_check.py``), as a verification turn
    with a known record would be: the code said, codes one character off it, and another code of the set.
    Accepted: whisper's free reading is the record, or the check matches."""

    genuine: bool
    one_off: tuple[tuple[str, bool], ...]
    other: tuple[str, bool]
    check_ms: tuple[float, ...]
    cpu_s: float


@dataclass
class Outcome:
    utt: PhoneUtterance
    audio_s: float
    heard: dict[str, Heard] = field(default_factory=dict)
    records: RecordChecks | None = None

    def record(self) -> dict[str, Any]:
        u = self.utt
        return {"kind": u.item.kind, "text": u.item.text, "label": u.item.label, "slot": u.item.slot,
                "voice": u.voice, "condition": u.condition, "loss": u.loss_rate, "audio_s": round(self.audio_s, 3),
                "heard": {e: {"text": h.text, "value": h.value, "confidence": round(h.confidence, 3),
                              "finish_ms": round(h.finish_ms, 1), "cpu_s": round(h.cpu_s, 4), "error": h.error,
                              "confirm": h.confirm}
                          for e, h in self.heard.items()},
                "record_checks": None if self.records is None else {
                    "genuine": self.records.genuine, "one_off": [list(x) for x in self.records.one_off],
                    "other": list(self.records.other)}}


class SttBench:
    """Runs the engines over utterances. ``whisper_pool``: a started
    :class:`~ari_agent.speech.whisper_stt.WhisperWorkerPool` (needed for the whisper and both engines)."""

    def __init__(self, judge: Judge, renderer: Renderer, engines: Sequence[str], whisper_pool: Any | None = None,
                 pocketsphinx: PocketsphinxSettings | None = None, check_limits: CheckLimits | None = None) -> None:
        self.judge = judge
        self.renderer = renderer
        self.engines = tuple(engines)
        self.run_ps = any(e in ("pocketsphinx", "both") for e in self.engines)
        self.run_wh = any(e in ("whisper", "both") for e in self.engines)
        self.pool = whisper_pool
        self.ps_settings = pocketsphinx or PocketsphinxSettings()
        self._ps: dict[str, SpeechRecognizer] = {}  # one "call" per caller voice (pocketsphinx adapts to the line)
        self._grammar: dict[str, SpeechRecognizer] = {}  # the "both" engine's grammar side (its own settings)
        self._wh: SpeechRecognizer | None = None
        if self.run_wh and whisper_pool is None:
            raise ValueError("the whisper and both engines need a whisper pool")
        self.check_limits = check_limits  # None: postcode turns are not checked against records
        self.other_codes: list[str] = []

    def _pocketsphinx(self, voice: str, *, paired: bool = False) -> SpeechRecognizer:
        recs = self._grammar if paired else self._ps
        rec = recs.get(voice)
        if rec is None:
            from ari_agent.speech.pocketsphinx_stt import PocketsphinxRecognizer

            rec = PocketsphinxRecognizer(paired_grammar_settings(self.ps_settings) if paired else self.ps_settings)
            recs[voice] = rec
        return rec

    def _whisper(self) -> SpeechRecognizer:
        if self._wh is None:
            from ari_agent.speech.whisper_stt import WhisperRecognizer

            self._wh = WhisperRecognizer(self.pool)  # type: ignore[arg-type]  # checked in __init__
        return self._wh

    def warm_up(self, utts: Sequence[PhoneUtterance]) -> None:
        """Build each search once per recogniser (a first-use cost no call pays per turn) and wake the worker."""
        import numpy as np

        silence: Pcm = np.zeros(4000, dtype=np.int16)
        seen: set[tuple[str, str]] = set()
        for u in utts:
            expect = self.judge.expectation(u.item)
            key = (u.voice, repr(expect))
            if key in seen:
                continue
            seen.add(key)
            if self.run_ps:
                recognise_utterance(self._pocketsphinx(u.voice), expect, silence)
            if "both" in self.engines and u.item.kind in PAIRED_KINDS and expect.code_format is None:
                recognise_utterance(self._pocketsphinx(u.voice, paired=True), expect, silence)
        if self.run_wh:
            recognise_utterance(self._whisper(), Expectation(kind="yes_no"), silence)
        if "both" in self.engines and self.pool is not None and any(
                self.judge.expectation(u.item).code_format for u in utts):
            self.pool.transcribe(silence, None, constraint="uk_postcode")  # loads the worker's second context

    def _hear(self, rec: SpeechRecognizer, item: PhoneItem, pcm: Pcm, pids: Callable[[], Sequence[int]]) -> Heard:
        expect = self.judge.expectation(item)
        c0, w0 = time.process_time(), _cpu_by_pid(pids())
        got = recognise_utterance(rec, expect, pcm)
        cpu = time.process_time() - c0 + _worker_cpu_delta(w0, _cpu_by_pid(pids()))
        t = got.transcript
        return Heard(t.text, t.confidence, self.judge.read(item, t.text).value, got.finish_ms, cpu, t.error)

    def _hear_code(self, item: PhoneItem, expect: Expectation, pcm: Pcm, wh: Heard) -> Heard:
        """A code turn as ``PairedRecognizer`` hears it (``code_verdict``): whisper's value read back, its words
        as heard, or the constrained decode's value read back (its time and CPU added to whisper's)."""
        assert self.pool is not None
        verdict = code_verdict(wh.value, wh.error is None, wh.text)
        if verdict != "decode_again":
            return replace(wh, confirm=verdict == "whisper_unsure")
        c0, w0 = time.process_time(), _cpu_by_pid(self.pool.worker_pids())
        t = self.pool.transcribe(pcm, None, constraint=expect.code_format)
        cpu = time.process_time() - c0 + _worker_cpu_delta(w0, _cpu_by_pid(self.pool.worker_pids()))
        value = self.judge.read(item, t.text).value if t.ok else None
        if value is None:
            return replace(wh, finish_ms=wh.finish_ms + t.latency_ms, cpu_s=wh.cpu_s + cpu)
        return Heard(t.text, t.confidence, value, wh.finish_ms + t.latency_ms, wh.cpu_s + cpu, None, True)

    def _check_records(self, utt: PhoneUtterance, pcm: Pcm, heard: str | None) -> RecordChecks:
        """The turn against its own code, codes one character off, and another code of the set."""
        assert self.pool is not None and utt.item.label is not None and self.check_limits is not None
        truth = utt.item.label
        rng = random.Random(utt.key)
        one_off = one_character_off(truth, rng)
        other = rng.choice(sorted(c for c in self.other_codes if c != truth))
        c0, w0 = time.process_time(), _cpu_by_pid(self.pool.worker_pids())
        verdicts: dict[str, bool] = {}
        times: list[float] = []
        for record in (truth, *one_off, other):
            check = self.pool.check_code(pcm, record)
            times.append(check.latency_ms)
            verdicts[record] = heard == record or matches(check, self.check_limits)
        cpu = time.process_time() - c0 + _worker_cpu_delta(w0, _cpu_by_pid(self.pool.worker_pids()))
        return RecordChecks(verdicts[truth], tuple((c, verdicts[c]) for c in one_off), (other, verdicts[other]),
                            tuple(times), cpu)

    def run_one(self, utt: PhoneUtterance) -> Outcome:
        pcm = self.renderer.render(utt)
        out = Outcome(utt, pcm.size / 8000)
        item = utt.item
        ref = self.judge.read(item, item.text)
        out.heard["text"] = Heard(item.text, 1.0, ref.value, 0.0, 0.0)
        if self.run_ps:
            out.heard["pocketsphinx"] = self._hear(self._pocketsphinx(utt.voice), item, pcm, tuple)
        if self.run_wh:
            out.heard["whisper"] = self._hear(self._whisper(), item, pcm, self.pool.worker_pids)  # type: ignore[union-attr]
            if item.kind == "postcode" and self.check_limits is not None and item.label:
                out.records = self._check_records(utt, pcm, out.heard["whisper"].value)
        if "both" in self.engines:
            wh = out.heard["whisper"]
            if item.kind not in PAIRED_KINDS:  # whisper's alone, as on a call
                out.heard["both"] = wh
                return out
            expect = self.judge.expectation(item)
            if item.kind == "yes_no":  # whisper's verdict, unless the grammar's answer stands for its unclear one
                ps = self._hear(self._pocketsphinx(utt.voice, paired=True), item, pcm, tuple)
                took = wh.error is None and ps.error is None and grammar_answer_stands(wh.text, ps.text)
                out.heard["both"] = replace(ps if took else wh, finish_ms=max(ps.finish_ms, wh.finish_ms),
                                            cpu_s=ps.cpu_s + wh.cpu_s,
                                            confidence=max(ps.confidence, wh.confidence) if took else wh.confidence)
                return out
            if expect.code_format is not None:  # a code turn: no grammar; the constrained decode when needed
                out.heard["both"] = self._hear_code(item, expect, pcm, wh)
                return out
            # the grammar side as a call pairs it (its own settings: no lattice posteriors)
            ps = self._hear(self._pocketsphinx(utt.voice, paired=True), item, pcm, tuple)
            both = combine(item.kind, Reading(ps.value), Reading(wh.value), wh.text)
            text = wh.text if both.value == wh.value or both.value is None else ps.text
            # both run on the turn: the caller waits for the slower, the machine pays for both
            out.heard["both"] = Heard(text, max(ps.confidence, wh.confidence), both.value,
                                      max(ps.finish_ms, wh.finish_ms), ps.cpu_s + wh.cpu_s, wh.error or ps.error,
                                      both.confirm)
        return out

    def run(self, utts: Sequence[PhoneUtterance], progress: Callable[[int, int], None] | None = None) -> list[Outcome]:
        self.other_codes = sorted({u.item.label for u in utts if u.item.kind == "postcode" and u.item.label})
        self.warm_up(utts)
        outcomes: list[Outcome] = []
        for k, u in enumerate(utts):
            outcomes.append(self.run_one(u))
            if progress is not None:
                progress(k + 1, len(utts))
        return outcomes

    def close(self) -> None:
        for rec in (*self._ps.values(), *self._grammar.values()):
            rec.close()
        if self._wh is not None:
            self._wh.close()


# ------------------------------------------------------------------ the table


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    s = sorted(values)
    if not s:
        return 0.0
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def correct(kind: str, label: str | None, value: str | None) -> bool:
    """Right: the value labelled; an out-of-scope request also when it goes to a person (no intent is taken)."""
    return value == label or (kind == "out_of_scope" and value == PERSON_INTENT)


def summarise(outcomes: Sequence[Outcome], engines: Sequence[str]) -> list[dict[str, Any]]:
    """One row per kind x engine (``text`` first: the parsers' ceiling)."""
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        of_kind = [o for o in outcomes if o.utt.item.kind == kind]
        if not of_kind:
            continue
        for engine in ("text", *engines):
            hs = [(o, o.heard[engine]) for o in of_kind if engine in o.heard]
            if not hs:
                continue
            n = len(hs)
            right = sum(correct(kind, o.utt.item.label, h.value) for o, h in hs)
            errs = words = 0
            for o, h in hs:
                e, w = word_errors(o.utt.item.text, h.text)
                errs += e
                words += w
            # CPU over the turns the engine finished: a worker killed after an overrun takes its CPU with it
            done = [(o, h) for o, h in hs if h.error is None]
            audio = sum(o.audio_s for o, _ in done)
            row: dict[str, Any] = {"kind": kind, "engine": engine, "n": n, "accuracy": round(right / n, 4),
                                   "right": right}
            if engine != "text":
                row.update(wer=round(errs / words, 4) if words else 0.0,
                           p50_ms=round(percentile([h.finish_ms for _, h in hs], 0.5), 1),
                           p95_ms=round(percentile([h.finish_ms for _, h in hs], 0.95), 1),
                           cpu_per_audio_s=round(sum(h.cpu_s for _, h in done) / audio, 4) if audio else 0.0,
                           errors=sum(h.error is not None for _, h in hs))
            if kind in SLOT_KINDS:
                # a wrong value used as heard: what a read-back would have caught (none: the turn is re-asked)
                row["wrong_used"] = sum(h.value is not None and not h.confirm and not correct(kind, o.utt.item.label,
                                                                                               h.value)
                                        for o, h in hs)
                row["read_back"] = sum(h.confirm for _, h in hs)
            if kind == "yes_no":
                non_yes = [(o, h) for o, h in hs if o.utt.item.label != "yes"]
                row["non_yes"] = len(non_yes)
                row["false_yes"] = sum(h.value == "yes" for _, h in non_yes)
            if engine == "both" and kind != "postcode":  # postcodes are not paired with the grammar
                ps = [o.heard["pocketsphinx"].value == o.heard["whisper"].value for o, _ in hs]
                agreed = [ok for ok, (o, h) in zip(ps, hs, strict=True) if ok]
                right_agreed = sum(correct(kind, o.utt.item.label, h.value)
                                   for ok, (o, h) in zip(ps, hs, strict=True) if ok)
                row["agree"] = round(len(agreed) / n, 4)
                row["right_when_agreed"] = round(right_agreed / len(agreed), 4) if agreed else None
            rows.append(row)
    return rows


def one_character_off(code: str, rng: random.Random) -> tuple[str, ...]:
    """Real-shaped codes that differ from ``code`` in one character: the last letter, the one before it and
    the sector digit (a caller with the right area and district and a near guess: the hardest impostor)."""
    out: list[str] = []
    for pos in (len(code) - 1, len(code) - 2, len(code) - 3):
        pool = "0123456789" if code[pos].isdigit() else "".join(sorted(INWARD))
        alternatives = [c for c in pool if c != code[pos] and is_postcode(code[:pos] + c + code[pos + 1:])]
        if alternatives:
            out.append(code[:pos] + rng.choice(alternatives) + code[pos + 1:])
    return tuple(out)


def summarise_records(outcomes: Sequence[Outcome]) -> dict[str, Any] | None:
    """Acceptance of the record check: the code said (genuine), codes one character off, other codes."""
    checked = [o.records for o in outcomes if o.records is not None]
    if not checked:
        return None
    one_off = [ok for r in checked for _, ok in r.one_off]
    times = [t for r in checked for t in r.check_ms]
    audio = sum(o.audio_s * len(o.records.check_ms) for o in outcomes if o.records is not None)
    return {"n": len(checked), "genuine_accepted": sum(r.genuine for r in checked),
            "one_off_n": len(one_off), "one_off_accepted": sum(one_off),
            "other_n": len(checked), "other_accepted": sum(r.other[1] for r in checked),
            "check_p50_ms": round(percentile(times, 0.5), 1), "check_p95_ms": round(percentile(times, 0.95), 1),
            "cpu_per_audio_s": round(sum(r.cpu_s for r in checked) / audio, 4) if audio else 0.0}


def format_records(summary: dict[str, Any]) -> str:
    s = summary
    return (f"postcode checked against the record (whisper's reading is the record, or the code check matches): "
            f"genuine accepted {s['genuine_accepted']}/{s['n']} ({100 * s['genuine_accepted'] / s['n']:.1f} %); "
            f"one character off accepted {s['one_off_accepted']}/{s['one_off_n']} "
            f"({100 * s['one_off_accepted'] / max(1, s['one_off_n']):.1f} %); "
            f"another code accepted {s['other_accepted']}/{s['other_n']}; "
            f"check p50 / p95 {s['check_p50_ms']:.0f} / {s['check_p95_ms']:.0f} ms, "
            f"CPU {s['cpu_per_audio_s']:.3f} s / audio s")


def per_voice(outcomes: Sequence[Outcome], engines: Sequence[str]) -> list[dict[str, Any]]:
    """Accuracy per caller voice and engine over all kinds."""
    out: list[dict[str, Any]] = []
    voices = sorted({o.utt.voice for o in outcomes})
    for voice in voices:
        mine = [o for o in outcomes if o.utt.voice == voice]
        row: dict[str, Any] = {"voice": voice, "n": len(mine)}
        for engine in ("text", *engines):
            hs = [(o, o.heard[engine]) for o in mine if engine in o.heard]
            row[engine] = round(sum(correct(o.utt.item.kind, o.utt.item.label, h.value) for o, h in hs) / len(hs), 4)
        out.append(row)
    return out


def failures(outcomes: Sequence[Outcome], engine: str, limit: int = 12) -> dict[str, list[dict[str, Any]]]:
    """Up to ``limit`` wrong readings per kind for ``engine``: what was said, heard and read."""
    out: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        h = o.heard.get(engine)
        if h is None or correct(o.utt.item.kind, o.utt.item.label, h.value):
            continue
        bucket = out.setdefault(o.utt.item.kind, [])
        if len(bucket) < limit:
            bucket.append({"said": o.utt.item.text, "label": o.utt.item.label, "heard": h.text, "read": h.value,
                           "voice": o.utt.voice, "condition": o.utt.condition})
    return out


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| kind | engine | n | accuracy | WER | p50 ms | p95 ms | CPU s / audio s | notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        notes: list[str] = []
        if r["kind"] == "out_of_scope":
            notes.append(f"handed off {r['right']}/{r['n']}")
        if "false_yes" in r:
            notes.append(f"non-yes heard as yes {r['false_yes']}/{r['non_yes']}")
        if "agree" in r:
            notes.append(f"agree {_pct(r['agree'])}, right when agreed {_pct(r['right_when_agreed'])}")
        if r.get("wrong_used") is not None and r["engine"] != "text":
            notes.append(f"wrong value used as heard {r['wrong_used']}/{r['n']}"
                         + (f", read back {r['read_back']}" if r.get("read_back") else ""))
        if r.get("errors"):
            notes.append(f"engine errors {r['errors']}")
        if r["engine"] == "text":
            lines.append(f"| {r['kind']} | text (ceiling) | {r['n']} | {_pct(r['accuracy'])} | — | — | — | — | "
                         f"{'; '.join(notes)} |")
            continue
        lines.append(f"| {r['kind']} | {r['engine']} | {r['n']} | {_pct(r['accuracy'])} | {_pct(r['wer'])} | "
                     f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['cpu_per_audio_s']:.3f} | {'; '.join(notes)} |")
    return "\n".join(lines)


def run_stt_bench(*, engines: Sequence[str], kinds: Sequence[str] | None, limit: int | None,
                  whisper_model: Path | None, piper_model: Path | None, voices: Sequence[str] | None = None,
                  cache_dir: Path = DEFAULT_CACHE, map_path: Path = DEMO_MAP_PATH, whisper_threads: int = 2,
                  whisper_audio_ctx_floor: int = 384, progress: Callable[[int, int], None] | None = None,
                  check_limits: CheckLimits | None = None, set_path: Path | None = None) -> dict[str, Any]:
    """Render (or reuse) the set (``set_path``: another file in the phone set's format, e.g. a held-out one),
    run the engines, return rows, per-voice accuracy and failure examples."""
    for e in engines:
        if e not in ENGINES:
            raise ValueError(f"unknown engine {e!r} (pocketsphinx, whisper, both)")
    for k in kinds or ():
        if k not in KINDS:
            raise ValueError(f"unknown kind {k!r} ({', '.join(KINDS)})")
    phone_set = load_phone_set(set_path) if set_path is not None else load_phone_set()
    utts = phone_set.utterances(voices, kinds, limit)
    judge = Judge(load_intent_map(map_path), phone_set.today)
    renderer = Renderer(cache_dir, piper_model)
    pool = None
    needs_whisper = any(e in ("whisper", "both") for e in engines)
    if needs_whisper:
        from ari_agent.speech.whisper_stt import WhisperWorkerPool

        if whisper_model is None:
            raise ValueError("the whisper engine needs the prepared model (ari-agent models prepare)")
        # a generous timeout: on a machine others load, an overrun would count as a miss, not a mishearing
        pool = WhisperWorkerPool(whisper_model, workers=1, threads=whisper_threads, timeout_s=60.0,
                                 audio_ctx_floor=whisper_audio_ctx_floor).start()
    bench = SttBench(judge, renderer, engines, pool, check_limits=check_limits if needs_whisper else None)
    t0 = time.perf_counter()
    try:
        outcomes = bench.run(utts, progress)
    finally:
        bench.close()
        if pool is not None:
            pool.close()
    rows = summarise(outcomes, engines)
    records = summarise_records(outcomes)
    return {
        "utterances": len(outcomes),
        "voices": sorted({u.voice for u in utts}),
        "conditions": {c: sum(u.condition == c for u in utts) for c in ("clean", "noise", "noise+loss")},
        "rendered_now": renderer.rendered,
        "wall_s": round(time.perf_counter() - t0, 1),
        "cpus": os.cpu_count(),
        "rows": rows,
        "table": format_table(rows) + ("\n\n" + format_records(records) if records else ""),
        "record_check": records,
        "per_voice": per_voice(outcomes, engines),
        "failures": {e: failures(outcomes, e) for e in ("text", *engines)},
        "records": [o.record() for o in outcomes],
    }
