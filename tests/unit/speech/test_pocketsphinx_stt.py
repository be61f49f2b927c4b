from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ari_agent.config import PocketsphinxSettings, SttConfig
from ari_agent.conversation.slots.yes_no import read_yes_no
from ari_agent.seam import Expectation
from ari_agent.speech.pocketsphinx_stt import PocketsphinxRecognizer
from ari_agent.speech.recognizer import SpeechRecognizer, SttError
from ari_agent.speech.stt import create_recognizer

from .corpus import caller_audio, demo_examples

YES_NO = Expectation(kind="yes_no")
DIGITS = Expectation(kind="digits", min_digits=4, max_digits=4)


@pytest.fixture(scope="module")
def rec() -> PocketsphinxRecognizer:
    r = create_recognizer(SttConfig(engine="pocketsphinx"))
    assert isinstance(r, PocketsphinxRecognizer)
    return r


def test_factory_gives_a_protocol_conforming_recogniser(rec: PocketsphinxRecognizer) -> None:
    assert isinstance(rec, SpeechRecognizer)
    assert rec.engine == "pocketsphinx"
    with pytest.raises(SttError):
        create_recognizer(SttConfig(engine="whisper"))  # no pool given
    with pytest.raises(SttError, match="'auto' is resolved when the service starts"):
        create_recognizer(SttConfig())  # the default: decided once at start (ops/engines.py), never per call


def test_yes_no_then_digits_then_open_on_one_decoder(rec: PocketsphinxRecognizer) -> None:
    got = rec.recognise(YES_NO, caller_audio("yes please", "flite:rms"))
    assert got.text == "yes please" and got.ok and 0.0 < got.confidence <= 1.0
    got = rec.recognise(DIGITS, caller_audio("four five six seven", "flite:rms"))
    assert got.text == "four five six seven"
    assert [w.text for w in got.words] == ["four", "five", "six", "seven"]
    assert all(0 <= w.start_ms < w.end_ms for w in got.words)
    assert got.words[0].start_ms >= 300  # the 400 ms lead-in is silence
    got = rec.recognise(Expectation(kind="open", phrases=demo_examples()),
                        caller_audio("I need to pay my bill", "flite:rms"))
    assert got.text == "i need to pay my bill"
    assert rec.search is not None and rec.search.kind == "lm"


def test_partial_results_while_feeding(rec: PocketsphinxRecognizer) -> None:
    audio = caller_audio("one two three four", "flite:rms", trail_ms=300)
    rec.start(DIGITS)
    partials = []
    for i in range(0, audio.size, 160):
        rec.feed(audio[i : i + 160])
        if i % 1600 == 0:
            partials.append(rec.partial())
    final = rec.finish()
    assert final.text == "one two three four"
    assert any(p and p != final.text for p in partials)  # something before the end


def test_silence_is_a_no_match(rec: PocketsphinxRecognizer) -> None:
    got = rec.recognise(YES_NO, np.zeros(8000, dtype=np.int16))
    assert got.no_match and got.confidence == 0.0 and got.ok
    assert rec.finish().error == "no turn in progress"


def test_an_abandoned_turn_does_not_leak_into_the_next(rec: PocketsphinxRecognizer) -> None:
    rec.start(DIGITS)
    rec.feed(caller_audio("eight one six three", "flite:rms")[:8000])
    got = rec.recognise(YES_NO, caller_audio("no thanks", "flite:rms"))
    assert got.text == "no thanks"


def test_soxr_upsampling_is_available() -> None:
    """The soxr path runs (``upsample: LQ``). It reads phone audio worse than the default "fold" (its
    band-limited 16 kHz leaves the model's upper bands empty): rms's "yes" came out as nothing, and only
    soxr's int16 dither (random; now rounded instead, media/pcm.py) made that pass in most runs."""
    r = PocketsphinxRecognizer(PocketsphinxSettings(upsample="LQ"))
    got = r.recognise(YES_NO, caller_audio("no thanks", "flite:kal16"))
    assert got.text in ("no", "nope", "no thanks", "no thank you")
    r.close()
    with pytest.raises(SttError):
        r.start(YES_NO)


def test_a_new_call_sets_up_its_searches_fast() -> None:
    """Each call's decoder starts from a tiny dictionary and learns only its searches' words
    (with the full dictionary, adding the open-turn LM took ~750 ms per call)."""
    import time

    PocketsphinxRecognizer().start(Expectation(kind="open", phrases=demo_examples()))  # build + cache the LM
    t0 = time.perf_counter()
    rec = PocketsphinxRecognizer()
    rec.start(Expectation(kind="open", phrases=demo_examples()))
    rec.start(YES_NO)
    rec.start(DIGITS)
    assert time.perf_counter() - t0 < 1.0  # measured ~25 ms; uncached it was ~750 ms per LM (generous: busy CI)
    got = rec.recognise(YES_NO, caller_audio("no", "flite:rms"))
    assert got.text in ("no", "nope")


def test_free_text_uses_the_generic_model() -> None:
    rec = PocketsphinxRecognizer()
    rec.recognise(Expectation(kind="open", phrases=("where is my postcode",)), caller_audio("hello", "flite:rms"))
    got = rec.recognise(Expectation(kind="free_text"), caller_audio("thank you very much", "flite:rms"))
    assert rec.search is not None and rec.search.kind == "generic"
    assert got.ok and got.text  # the generic LM runs (and is poor on phone audio: 63-82 % WER measured)
    got = rec.recognise(Expectation(kind="open", phrases=("where is my postcode",)),
                        caller_audio("where is my postcode", "flite:rms"))
    assert got.text == "where is my postcode"  # the compound added before the full dictionary survived
    # grammars after the full dictionary: their words are CMUdict words the decoder already holds
    got = rec.recognise(Expectation(kind="digits", min_digits=4, max_digits=4),
                        caller_audio("my account number is one two three four", "flite:rms"))
    assert got.ok and rec.search is not None and rec.search.kind == "jsgf"
    assert rec.recognise(YES_NO, caller_audio("yes", "flite:rms")).text in ("yes", "yeah", "yep")


def test_a_hedge_to_a_yes_no_question_is_heard_as_a_hedge(rec: PocketsphinxRecognizer) -> None:
    """The yes/no grammar has room for answers that are neither: "perhaps" is not forced into "yep"."""
    for text, heard in (("perhaps", "perhaps"), ("I'm not sure", "i'm not sure")):
        got = rec.recognise(YES_NO, caller_audio(text, "flite:rms"))
        assert got.text == heard and read_yes_no(got.text).verdict == "unclear"
    assert rec.recognise(YES_NO, caller_audio("yes please", "flite:rms")).text == "yes please"


def test_close_releases_the_decoder_at_once() -> None:
    """A call's decoder (its own acoustic model, ~10 MB native) goes with close(), not with the last reference
    to the recogniser: under load, anything still holding ended calls' recognisers kept every decoder."""
    rec = PocketsphinxRecognizer()
    rec.start(Expectation(kind="yes_no"))
    rec.feed(np.zeros(1600, dtype=np.int16))
    rec.close()
    assert not hasattr(rec, "_decoder")  # dropped: freed although `rec` is still referenced here
    rec.close()  # twice: fine
    assert rec.partial() == "" and rec.finish().error == "no turn in progress"
    rec.feed(np.zeros(160, dtype=np.int16))
    with pytest.raises(SttError, match="closed"):
        rec.start(Expectation(kind="yes_no"))


def test_number_turns_get_lattice_posteriors_only_when_asked_and_yes_no_and_open_turns_always() -> None:
    from ari_agent.speech.pocketsphinx_stt import NO_POSTERIOR_CONFIDENCE

    number = Expectation(kind="digits", min_digits=4, max_digits=8)
    audio = caller_audio("four five six seven", "flite:rms")
    plain = PocketsphinxRecognizer(PocketsphinxSettings())
    try:
        got = plain.recognise(number, audio)
        assert got.text == "four five six seven"
        # no posterior on the grammar: the fixed confidence (computing it cost ~0.6 s a number turn)
        assert got.confidence == NO_POSTERIOR_CONFIDENCE and {w.confidence for w in got.words} == {0.5}
        got = plain.recognise(Expectation(kind="open", phrases=demo_examples()),
                              caller_audio("I need to pay my bill", "flite:rms"))
        assert len({round(w.confidence, 3) for w in got.words}) > 1  # the open turn's LM search still has them
        got = plain.recognise(YES_NO, caller_audio("yes please", "flite:rms"))
        assert got.text == "yes please" and got.confidence != NO_POSTERIOR_CONFIDENCE  # consent keeps its lattice
    finally:
        plain.close()
    asked = PocketsphinxRecognizer(PocketsphinxSettings(grammar_posterior=True))
    try:
        got = asked.recognise(number, audio)
        assert got.text == "four five six seven" and len({round(w.confidence, 3) for w in got.words}) > 1
    finally:
        asked.close()


def test_calls_ask_for_grammar_posteriors_where_the_map_reads_values_by_confidence() -> None:
    from ari_agent.call.services import call_recognizer
    from ari_agent.conversation.intent_map import load_intent_map

    demo = load_intent_map()
    assert demo.spec.limits.read_back_below == 0 and demo.spec.limits.min_confidence == 0
    stt = SttConfig(engine="pocketsphinx")
    for update, wanted in (({}, False), ({"read_back_below": 0.6}, True), ({"min_confidence": 0.2}, True)):
        limits = demo.spec.limits.model_copy(update=update)
        spec = demo.spec.model_copy(update={"limits": limits})
        rec = call_recognizer(stt, dataclasses.replace(demo, spec=spec))
        assert isinstance(rec, PocketsphinxRecognizer)
        assert rec.settings.grammar_posterior is wanted, update
        rec.close()
