"""The ``both`` engine's rule (call/paired_recognition.py): a value both recognisers agree on is used as
heard, one they disagree on is marked unsure (the conversation reads it back), and the engine reads it
back. The recognisers are scripted stand-ins (the logic under test is the pairing, not recognition); the
values are read by the demo map's real slot parsers, and the read-back by the real conversation engine."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import numpy as np
import pytest

from ari_agent.call.paired_recognition import PairedRecognizer, RecordCheck, SlotReader
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import Transcript

ORDER = Expectation(kind="digits", min_digits=4, max_digits=4, slot="order_number", dtmf=True)


class Scripted:
    """Says what it is told to, and records what it was asked to do."""

    def __init__(self, engine: str, text: str = "", *, error: str | None = None, partial: str = "") -> None:
        self.engine = engine
        self.text = text
        self.error = error
        self._partial = partial
        self.calls: list[str] = []
        self.fed: list[np.ndarray] = []

    def start(self, expect: Expectation) -> None:
        self.calls.append(f"start:{expect.kind}")
        self.fed = []

    def feed(self, pcm8k: Any) -> None:
        self.calls.append("feed")
        if isinstance(pcm8k, np.ndarray):
            self.fed.append(pcm8k)

    def turn_audio(self) -> np.ndarray:
        return np.concatenate(self.fed) if self.fed else np.zeros(0, dtype=np.int16)

    def partial(self) -> str:
        return self._partial

    def finish(self) -> Transcript:
        self.calls.append("finish")
        if self.error == "raise":
            raise RuntimeError("decoder broke")
        return Transcript(text=self.text, confidence=0.8, engine=self.engine, error=self.error, latency_ms=10)

    def decode(self, pcm8k: Any) -> Transcript:
        self.calls.append("decode")
        return Transcript(text=self.text, confidence=0.7, engine=self.engine, latency_ms=5)

    def discard(self) -> None:
        self.calls.append("discard")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture(scope="module")
def reader() -> SlotReader:
    return SlotReader(load_intent_map(), today=lambda: date(2026, 3, 4))


def turn(reader: SlotReader, expect: Expectation, whisper: str, grammar: str, **kw: Any) -> tuple[Transcript,
                                                                                                 Scripted, Scripted]:
    wh, ps = Scripted("whisper", whisper, **{k: v for k, v in kw.items() if k == "error"}), Scripted("pocketsphinx",
                                                                                                    grammar)
    rec = PairedRecognizer(wh, ps, reader)
    rec.start(expect)
    rec.feed(b"\0\0" * 160)
    return rec.finish(), wh, ps


def test_agreement_is_used_as_heard(reader: SlotReader) -> None:
    t, wh, ps = turn(reader, ORDER, "It's 4567.", "four five six seven")
    assert (t.text, t.unsure, t.engine) == ("It's 4567.", False, "both:whisper")
    assert t.confidence == 0.8 and t.latency_ms == 10
    assert ps.calls == ["start:digits", "feed", "finish"] and wh.calls == ["start:digits", "feed", "finish"]


def test_disagreement_is_unsure_and_keeps_whispers_value(reader: SlotReader) -> None:
    t, _, _ = turn(reader, ORDER, "It's 4567.", "eight four five six")
    assert (t.text, t.unsure) == ("It's 4567.", True)


def test_only_the_grammar_has_a_value_it_is_unsure(reader: SlotReader) -> None:
    # whisper's words hold a number, not one that fits ("double four" written as words it got wrong)
    t, _, _ = turn(reader, ORDER, "Uh, type of 4 1 2.", "four four one two")
    assert (t.text, t.unsure, t.engine) == ("four four one two", True, "both:pocketsphinx")


@pytest.mark.parametrize("said", ["you're not listening, that's not what I said", "Hmm, let me find it.",
                                  "I'd like to speak to a person.", "I don't have it to hand"])
def test_words_with_no_number_are_whispers_not_the_grammars_forced_digits(reader: SlotReader, said: str) -> None:
    # the grammar cannot say "not a number": it forced these into digits on real calls
    t, _, _ = turn(reader, ORDER, said, "two eight two double five six")
    assert (t.text, t.unsure, t.engine) == (said, False, "both:whisper")


def test_the_no_number_rule_is_for_number_turns_only(reader: SlotReader) -> None:
    postcode = Expectation(kind="letters", slot="postcode")
    t, _, _ = turn(reader, postcode, "Thank you, you are here.", "s w one a one a a")
    assert (t.text, t.unsure) == ("s w one a one a a", True)


def test_neither_has_a_value_whisper_is_heard_as_is(reader: SlotReader) -> None:
    t, _, _ = turn(reader, ORDER, "What are your opening hours?", "")
    assert (t.text, t.unsure) == ("What are your opening hours?", False)


def test_values_are_read_as_the_slot_reads_them(reader: SlotReader) -> None:
    postcode = Expectation(kind="letters", slot="postcode")
    assert turn(reader, postcode, "SW1A 1AA", "s w one a one a a")[0].unsure is False
    assert turn(reader, postcode, "SW1A 1AA", "s w one a one a h")[0].unsure is True


def test_open_turns_are_whispers_alone(reader: SlotReader) -> None:
    wh, ps = Scripted("whisper", "yes please"), Scripted("pocketsphinx", "no", partial="no")
    rec = PairedRecognizer(wh, ps, reader)
    rec.start(Expectation(kind="open"))
    rec.feed(b"\0\0" * 160)
    assert rec.partial() == ""
    t = rec.finish()
    assert (t.text, t.unsure, t.engine) == ("yes please", False, "whisper")
    assert ps.calls == []


YES_NO = Expectation(kind="yes_no")


def test_a_yes_no_turn_is_heard_by_both_but_whispers_verdict_stands(reader: SlotReader) -> None:
    """The grammar decodes a yes/no turn beside whisper, its partials drive nothing, and where whisper's
    reading is clear (or a failure) it stands, whatever the grammar heard: no consent from the grammar alone."""
    for whisper, grammar in (("yes please", "no"), ("No.", "yes"), ("I'm not sure.", "sure"),
                             ("Hurry.", "yep"), ("That's interesting.", "that's correct"),
                             ("Yes, but only if it's free.", "yes"), ("I'd say my wife decides.", "yes")):
        wh, ps = Scripted("whisper", whisper), Scripted("pocketsphinx", grammar, partial=grammar)
        rec = PairedRecognizer(wh, ps, reader)
        rec.start(YES_NO)
        rec.feed(b"\0\0" * 160)
        assert rec.partial() == ""  # the endpointer waits as on any whisper turn
        t = rec.finish()
        assert (t.text, t.unsure, t.engine) == (whisper, False, "whisper"), (whisper, grammar)
        assert ps.calls == ["start:yes_no", "feed", "finish"]
    t, _, _ = turn(reader, YES_NO, "", "yes", error="worker timed out")
    assert (t.text, t.error) == ("", "worker timed out")  # the grammar's yes does not stand in


def test_a_yes_beside_one_stray_word_stands_when_the_grammar_heard_a_yes(reader: SlotReader) -> None:
    """Misreadings from the phone set: "sure, go ahead" -> "She would go ahead." (grammar "sure"), "yeah go for
    it" -> "You have to go for it." (grammar "yup"); "no it isn't" -> "No, it is." (grammar "no it isn't")."""
    for whisper, grammar in (("She would go ahead.", "sure"), ("You have to go for it.", "yup"),
                             ("No, it is.", "no it isn't")):
        t, _, _ = turn(reader, YES_NO, whisper, grammar)
        assert (t.text, t.unsure, t.engine, t.confidence) == (grammar, False, "both:pocketsphinx", 0.8), whisper
    # two words whisper cannot place, a hedge, a no against the grammar's yes, a yes against its no: whisper's
    for whisper, grammar in (("She says you can go ahead.", "sure"), ("Maybe go ahead.", "go ahead"),
                             ("No, it is.", "yes it is"), ("She would go ahead.", "no"),
                             ("Yes, no.", "no"), ("She would go ahead.", "")):
        t, _, _ = turn(reader, YES_NO, whisper, grammar)
        assert (t.text, t.engine) == (whisper, "whisper"), (whisper, grammar)


def test_the_grammar_partial_drives_the_endpointer_on_paired_turns(reader: SlotReader) -> None:
    rec = PairedRecognizer(Scripted("whisper"), Scripted("pocketsphinx", partial="four five"), reader)
    rec.start(ORDER)
    assert rec.partial() == "four five"


def test_a_failed_engine_leaves_the_other_unsure(reader: SlotReader) -> None:
    t, _, _ = turn(reader, ORDER, "", "four five six seven", error="worker timed out")
    assert (t.text, t.unsure, t.error) == ("four five six seven", True, None)
    wh, ps = Scripted("whisper", "It's 4567."), Scripted("pocketsphinx", "x", error="raise")
    rec = PairedRecognizer(wh, ps, reader)
    rec.start(ORDER)
    t = rec.finish()
    assert (t.text, t.unsure, t.error) == ("It's 4567.", True, None)


def test_a_speculative_result_is_settled_with_the_grammar(reader: SlotReader) -> None:
    wh, ps = Scripted("whisper", "It's 4567."), Scripted("pocketsphinx", "four five six seven")
    rec = PairedRecognizer(wh, ps, reader)
    rec.start(ORDER)
    early = rec.decode(b"\0\0" * 160)
    t = rec.settle(early)
    assert (t.text, t.unsure) == ("It's 4567.", False)
    assert wh.calls[-2:] == ["decode", "discard"] and ps.calls[-1] == "finish"
    ps.text = "one two three four"
    rec.start(ORDER)
    assert rec.settle(rec.decode(b"")).unsure is True


def test_the_engine_reads_back_an_unsure_value_and_uses_a_sure_one() -> None:
    from ari_agent.conversation.engine import ConversationEngine
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.seam import CallStarted, CallTool, Say, Utterance

    intent_map = load_intent_map()
    classifier = build_classifier(intent_map.nlu_intents())

    def order_turn(unsure: bool) -> list[Any]:
        engine = ConversationEngine(intent_map, classifier, call_id="c-1")
        engine.handle(CallStarted(caller_id="100"))
        engine.handle(Utterance("I'd like to check the status of my order"))
        return engine.handle(Utterance("It's 4567.", 0.9, unsure=unsure))

    sure = order_turn(False)
    assert any(isinstance(a, CallTool) and a.args == {"order_number": "4567"} for a in sure), sure
    unsure = order_turn(True)
    assert not any(isinstance(a, CallTool) for a in unsure), unsure
    assert any(isinstance(a, Say) and "4 5 6 7" in a.text and "right" in a.text for a in unsure), unsure


@pytest.mark.parametrize(("whisper", "grammar"), [("999 999", "nine nine nine nine"),
                                                  ("8 8 8 8 8.", "eight eight eight eight"),
                                                  ("That's 5 5 5 5 1.", "five five five one")])
def test_a_repeated_digit_miscounted_by_whisper_reads_back_the_grammars_count(reader: SlotReader, whisper: str,
                                                                               grammar: str) -> None:
    t, _, _ = turn(reader, ORDER, whisper, grammar)
    assert (t.text, t.unsure, t.engine) == (grammar, True, "both:pocketsphinx")


def test_other_disagreements_keep_whispers_value() -> None:
    from ari_agent.call.paired_recognition import pick

    assert pick("digits", "4567", "4568", "It's 4567.") == "whisper_unsure"
    assert pick("digits", "4557", "4577", "4 5 5 7") == "whisper_unsure"  # same digits, a different one repeated
    assert pick("letters", "SW1A1AA", "SW1AA1A", "SW1A 1AA") == "whisper_unsure"
    assert pick("digits", None, "4567", "") == "grammar"  # whisper heard nothing: the grammar's, read back


def test_the_both_engine_pairs_a_grammar_without_lattice_posteriors() -> None:
    # the posteriors were most of a digit turn's wait (finish p50 377 ms) and decide nothing when paired
    from typing import cast

    from ari_agent.call.services import call_recognizer
    from ari_agent.config import SttConfig
    from ari_agent.speech.pocketsphinx_stt import PocketsphinxRecognizer

    pool = cast(Any, object())  # a pool is only used when a turn is decoded; none is here
    rec = call_recognizer(SttConfig(engine="both"), load_intent_map(), whisper_pool=pool)
    assert isinstance(rec, PairedRecognizer) and isinstance(rec.grammar, PocketsphinxRecognizer)
    assert rec.grammar.settings.posterior is False
    alone = call_recognizer(SttConfig(engine="pocketsphinx"), load_intent_map())
    assert isinstance(alone, PocketsphinxRecognizer) and alone.settings.posterior is True  # its confidence decides
    rec.close()
    alone.close()


# ------------------------------------------------------------------ code turns (a UK postcode)

POSTCODE = Expectation(kind="letters", slot="postcode", code_format="uk_postcode")
FRAME = np.zeros(160, dtype=np.int16)  # 20 ms of line audio


class Codes:
    """The constrained decode's stand-in: answers ``text`` and records the audio it was given."""

    def __init__(self, text: str, error: str | None = None) -> None:
        self.text, self.error = text, error
        self.audio: list[int] = []

    def __call__(self, expect: Expectation, audio: Any) -> Transcript:
        assert expect.code_format == "uk_postcode"
        self.audio.append(int(audio.size))
        return Transcript(text=self.text, confidence=0.6, engine="whisper-constrained", error=self.error,
                          latency_ms=150)


def code_turn(reader: SlotReader, whisper: str, codes: Codes, *, early: bool = False) -> tuple[Transcript, Scripted]:
    wh, ps = Scripted("whisper", whisper), Scripted("pocketsphinx", "S W one A one A A")
    rec = PairedRecognizer(wh, ps, reader, codes)
    rec.start(POSTCODE)
    for _ in range(3):
        rec.feed(FRAME)
    got = rec.settle(rec.decode(FRAME)) if early else rec.finish()
    assert ps.calls == []  # a code turn is not paired with the grammar
    return got, wh


def test_a_postcode_whisper_heard_is_read_back_without_a_second_decode(reader: SlotReader) -> None:
    codes = Codes("ST18 1AS")
    t, _ = code_turn(reader, "SW1A 1AA.", codes)
    assert (t.text, t.unsure, t.engine) == ("SW1A 1AA.", True, "both:whisper")
    assert codes.audio == []


@pytest.mark.parametrize("early", [False, True])
def test_a_misheard_code_is_decoded_again_constrained_and_read_back(reader: SlotReader, early: bool) -> None:
    codes = Codes("SW1A 1AA")
    t, _ = code_turn(reader, "S-tubel, he won a...", codes, early=early)  # no postcode in it, but a letter, "one"
    assert (t.text, t.unsure, t.engine) == ("SW1A 1AA", True, "both:whisper-constrained")
    # at the end of the turn on the whole turn's audio (3 frames of 160 samples); or, with an early decode,
    # right after it on the same audio (one frame here), so the settled turn waits for neither
    assert codes.audio == ([160] if early else [480])
    assert t.latency_ms == (5 if early else 10) + 150  # one decode after the other


def test_an_early_decode_that_does_not_stand_is_not_used(reader: SlotReader) -> None:
    codes = Codes("SW1A 1AA")
    wh, ps = Scripted("whisper", "S-tubel, he won a..."), Scripted("pocketsphinx", "")
    rec = PairedRecognizer(wh, ps, reader, codes)
    rec.start(POSTCODE)
    rec.feed(FRAME)
    rec.decode(FRAME)  # a pause: early decode + constrained decode of that audio
    rec.feed(FRAME)  # the caller went on: the turn ends with finish(), on all of it
    t = rec.finish()
    assert codes.audio == [160, 320] and t.text == "SW1A 1AA"


def test_words_that_are_no_code_stand_as_heard(reader: SlotReader) -> None:
    codes = Codes("SW1A 1AA")
    t, _ = code_turn(reader, "I don't know it, sorry.", codes)
    assert (t.text, t.unsure) == ("I don't know it, sorry.", False)
    assert codes.audio == []  # the constrained decode would have forced a postcode onto these words


def test_no_constrained_value_or_a_failed_decode_leaves_whispers_words(reader: SlotReader) -> None:
    for codes in (Codes(""), Codes("", error="worker died")):
        t, _ = code_turn(reader, "The h11 yz", codes)  # H is no postcode area
        assert (t.text, t.unsure, t.engine) == ("The h11 yz", False, "both:whisper")
        assert codes.audio == [480]


def test_without_a_code_decoder_a_postcode_turn_is_paired_as_before(reader: SlotReader) -> None:
    wh, ps = Scripted("whisper", "S-t-a-b-a."), Scripted("pocketsphinx", "S W one A one A A")
    rec = PairedRecognizer(wh, ps, reader)
    rec.start(POSTCODE)
    rec.feed(FRAME)
    t = rec.finish()
    assert ps.calls == ["start:letters", "feed", "finish"] and (t.unsure, t.engine) == (True, "both:pocketsphinx")


# ------------------------------------------------------------------ a code on record (verification.record)

class Records:
    """The record check's stand-in: answers ``said`` (and ``found``: its free constrained decode's code) and
    records the codes and audio it was asked about."""

    def __init__(self, said: bool | None, found: str | None = None) -> None:
        self.said = said  # None: the check breaks
        self.found = found
        self.asked: list[tuple[str, int]] = []

    def __call__(self, record: str, audio: Any) -> RecordCheck:
        self.asked.append((record, int(audio.size)))
        if self.said is None:
            raise RuntimeError("worker pipe closed")
        return RecordCheck(self.said, 300.0, self.found)


def record_turn(reader: SlotReader, whisper: str, records: Records, codes: Codes,
                on_record: str | None = "SW1A1AA", *, early: bool = False) -> Transcript:
    wh, ps = Scripted("whisper", whisper), Scripted("pocketsphinx", "")
    rec = PairedRecognizer(wh, ps, reader, codes, records)
    rec.start(dataclasses.replace(POSTCODE, on_record=on_record))
    for _ in range(3):
        rec.feed(FRAME)
    return rec.settle(rec.decode(FRAME)) if early else rec.finish()


def test_the_code_on_record_heard_by_whisper_is_used_as_heard_without_a_check(reader: SlotReader) -> None:
    records, codes = Records(True), Codes("")
    t = record_turn(reader, "SW1A 1AA.", records, codes)
    assert (t.text, t.unsure, t.confidence, t.off_record) == ("SW1A 1AA.", False, 1.0, False)  # not read back
    assert records.asked == [] and codes.audio == []


@pytest.mark.parametrize("early", [False, True])
def test_audio_the_check_finds_the_record_in_is_the_record_as_heard(reader: SlotReader, early: bool) -> None:
    records, codes = Records(True), Codes("ST18 1AS")
    t = record_turn(reader, "S-tubel, he won a...", records, codes, early=early)
    assert (t.text, t.unsure, t.confidence, t.engine) == ("SW1A 1AA", False, 1.0, "both:whisper-record")
    assert not t.off_record
    # on the whole turn's audio, or right after an early decode on its audio (so the settled turn waits for
    # neither); no second reading
    assert records.asked == [("SW1A1AA", 160 if early else 480)] and codes.audio == []
    assert t.latency_ms == (5 if early else 10) + 300  # whisper, then the check


@pytest.mark.parametrize("early", [False, True])
def test_a_failed_check_reads_back_its_own_constrained_reading(reader: SlotReader, early: bool) -> None:
    records, codes = Records(False, found="SW1A1AB"), Codes("ST18 1AS")
    t = record_turn(reader, "S-tubel, he won a...", records, codes, early=early)
    assert (t.text, t.unsure, t.engine) == ("SW1A 1AB", True, "both:whisper-constrained")  # read back
    assert t.off_record  # and known not to be the code on record, whatever the caller says to the read-back
    assert len(records.asked) == 1 and codes.audio == []  # the check's free decode is the second reading
    # a broken check: the turn goes on with whisper's words (nothing read back), and nothing is known of the record
    records = Records(None)
    t = record_turn(reader, "S-tubel, he won a...", records, Codes("SW1A 1AB"))
    assert (t.text, t.unsure) == ("S-tubel, he won a...", False) and records.asked == [("SW1A1AA", 480)]
    assert not t.off_record

def test_whisper_reading_another_code_is_checked_then_read_back_as_heard(reader: SlotReader) -> None:
    records = Records(False)
    t = record_turn(reader, "M1 1AE.", records, Codes(""))
    assert (t.text, t.unsure, t.off_record) == ("M1 1AE.", True, True) and records.asked == [("SW1A1AA", 480)]


def test_a_check_that_could_not_run_rejects_nothing() -> None:
    no_check = RecordCheck(False, 0.0, None, ran=False)  # an engine error or an unwritable record
    assert not no_check.rejected and RecordCheck(False, 300.0, "M11AE").rejected
    assert not RecordCheck(True, 300.0, None).rejected


def test_without_a_code_on_record_no_answer_is_off_the_record(reader: SlotReader) -> None:
    t = record_turn(reader, "M1 1AE.", Records(False), Codes(""), on_record=None)
    assert (t.text, t.unsure, t.off_record) == ("M1 1AE.", True, False)


def test_without_a_code_on_record_nothing_is_checked(reader: SlotReader) -> None:
    records = Records(True)
    t = record_turn(reader, "SW1A 1AA.", records, Codes(""), on_record=None)
    assert (t.text, t.unsure) == ("SW1A 1AA.", True) and records.asked == []
    assert "SW1A1AA" not in repr(dataclasses.replace(POSTCODE, on_record="SW1A1AA"))  # personal data: not in logs
