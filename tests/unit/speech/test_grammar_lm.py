from __future__ import annotations

import logging
import math
import random
import re
from datetime import date
from pathlib import Path

import pytest
from pocketsphinx import Decoder

from ari_agent import spoken_words
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.conversation.nlu import build_classifier
from ari_agent.conversation.slots import parse_date, parse_letters, parse_number, parse_yes_no
from ari_agent.seam import CallStarted, Expectation, Listen, Utterance
from ari_agent.speech.grammar_lm import (
    COMMAND_GRAMMAR_PHRASES,
    NO_GRAMMAR_PHRASES,
    UNCLEAR_GRAMMAR_PHRASES,
    YES_GRAMMAR_PHRASES,
    ArpaModel,
    PronunciationDictionary,
    SearchCache,
    build_arpa,
    build_domain_lm,
    jsgf_for,
    jsgf_words,
    words_of,
)

from .corpus import demo_examples


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(samprate=16000, lm=None, loglevel="ERROR")


@pytest.fixture(scope="module")
def dictionary() -> PronunciationDictionary:
    return PronunciationDictionary.load()


def test_words_of_normalises_caller_text() -> None:
    assert words_of("Order #4567, please!") == ["order", "four", "five", "six", "seven", "please"]
    assert words_of("I’d like it at 9am.") == ["i'd", "like", "it", "at", "nine", "a.m."]
    assert words_of("Bits & pieces") == ["bits", "and", "pieces"]


@pytest.mark.parametrize("kind", ["yes_no", "digits", "number", "date", "time", "letters", "choice"])
def test_every_closed_grammar_loads_into_pocketsphinx(kind: str, decoder: Decoder,
                                                      dictionary: PronunciationDictionary) -> None:
    expect = Expectation(kind=kind, choices=("tuesday morning", "friday afternoon"), min_digits=4,  # type: ignore[arg-type]
                         max_digits=6)
    text = jsgf_for(expect, dictionary)
    assert text is not None
    decoder.add_jsgf_string(f"t_{kind}", text)  # raises ValueError on a grammar it cannot parse
    words = {w for w in text.replace("|", " ").replace("[", " ").replace("]", " ").replace("(", " ")
             .replace(")", " ").replace(";", " ").split() if w.isalpha() or "'" in w}
    assert all(w in dictionary for w in words if w not in ("public", "grammar", "turn"))


def test_open_and_free_text_turns_have_no_closed_grammar() -> None:
    assert jsgf_for(Expectation(kind="open", phrases=("where is my order",))) is None
    assert jsgf_for(Expectation(kind="free_text")) is None


def test_digit_grammar_bounds_the_count() -> None:
    text = jsgf_for(Expectation(kind="digits", min_digits=4, max_digits=6))
    assert text is not None
    assert "<item> <item> [<item>] [<item>] [<item>] [<item>]" in text  # 4 digits may be 2 "double" items


def test_phrases_the_dictionary_cannot_say_are_dropped_with_a_warning(caplog: pytest.LogCaptureFixture,
                                                                      dictionary: PronunciationDictionary) -> None:
    with caplog.at_level(logging.WARNING):
        text = jsgf_for(Expectation(kind="choice", choices=("the blue one", "xyzzy plugh")), dictionary)
    assert text is not None and "blue" in text and "xyzzy" not in text
    assert "xyzzy plugh" in caplog.text


def test_missing_compounds_are_spelt_from_parts(dictionary: PronunciationDictionary) -> None:
    assert not dictionary.in_cmudict("postcode")  # really missing from cmudict
    assert dictionary.pronounce("postcode") == "P OW S T K OW D"
    assert dictionary.pronounce("qwzxv") is None


def test_arpa_distributions_sum_to_one() -> None:
    sentences = [words_of(p) for p in demo_examples()]
    model = ArpaModel.parse(build_arpa(sentences))
    vocab = [w for w in model.vocabulary if w != "<s>"]
    contexts = [*random.Random(3).sample(sorted(model.bow), 25), ("<s>",), ("<s>", "where"), ("zzz", "order")]
    for ctx in contexts:
        total = sum(10 ** model.log10_prob(w, list(ctx)) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), ctx


def test_kneser_ney_prefers_seen_continuations_and_backs_off() -> None:
    model = ArpaModel.parse(build_arpa([["where", "is", "my", "order"], ["where", "is", "my", "parcel"],
                                        ["my", "order", "is", "late"]]))
    assert model.log10_prob("order", ["is", "my"]) > model.log10_prob("late", ["is", "my"])
    assert model.log10_prob("late", ["is", "my"]) > -math.inf  # backs off to the unigram


def test_domain_lm_from_the_demo_map_loads_and_reports_oov(tmp_path: Path, decoder: Decoder,
                                                           dictionary: PronunciationDictionary) -> None:
    lm = build_domain_lm([*demo_examples(), "my flibbertigibbetx is late"], dictionary)
    assert lm.oov == ("flibbertigibbetx",)
    assert ("postcode", "P OW S T K OW D") in lm.added_words
    assert {"order", "appointment", "password"} <= lm.vocabulary
    path = tmp_path / "demo.arpa"
    path.write_text(lm.arpa)
    decoder.add_word("postcode", "P OW S T K OW D", True)
    decoder.add_lm_file("demo_lm", str(path))


def test_search_cache_builds_once_per_content(tmp_path: Path, dictionary: PronunciationDictionary) -> None:
    cache = SearchCache(dictionary, directory=tmp_path)
    a = cache.spec_for(Expectation(kind="open", phrases=demo_examples()))
    b = cache.spec_for(Expectation(kind="open", phrases=demo_examples(), slot="x", dtmf=True))
    assert a is b and a.kind == "lm"
    path = cache.lm_path(a)
    assert path.name == f"{a.name}.arpa" and path.read_text() == a.text
    mtime = path.stat().st_mtime_ns
    assert cache.lm_path(a) == path and path.stat().st_mtime_ns == mtime
    other = cache.spec_for(Expectation(kind="open", phrases=("where is my order",)))
    assert other.name != a.name
    assert cache.spec_for(Expectation(kind="free_text")).kind == "generic"
    assert cache.spec_for(Expectation(kind="yes_no")).kind == "jsgf"


KINDS = ("yes_no", "digits", "number", "date", "time", "letters", "choice")


def closed(kind: str) -> Expectation:
    return Expectation(kind=kind, choices=("tuesday morning", "friday afternoon"), min_digits=4,  # type: ignore[arg-type]
                       max_digits=6)


@pytest.mark.parametrize("kind", KINDS)
def test_every_closed_grammar_has_the_turn_answer_command_shape(kind: str) -> None:
    text = jsgf_for(closed(kind), name="turn")
    assert text is not None
    assert text.startswith("#JSGF V1.0;\ngrammar turn;\npublic <turn> = <answer> | <command>;\n<answer> = ")
    defined = [line.split(">", 1)[0][1:] for line in text.splitlines() if line.startswith("<")]
    assert len(defined) == len(set(defined)), "a rule defined twice"
    referenced = {ref for line in text.splitlines()[2:] for ref in re.findall(r"<([a-z_]+)>", line.split("=", 1)[1])}
    assert referenced <= {*defined, "turn"}, "a rule referenced but not defined"
    assert text.count("(") == text.count(")") and text.count("[") == text.count("]")


def test_grammars_list_only_canonical_spellings() -> None:
    """Slots read transcript variants ("fourty", "xray", "juliett"); a grammar word is what the
    recogniser writes, so grammars list the dictionary's spellings only."""
    words = {w for kind in KINDS for w in jsgf_words(jsgf_for(closed(kind)) or "")}
    assert not words & {"fourty", "xray", "alfa", "juliett", "whisky", "tues", "sept"}
    assert {"forty", "x-ray", "juliet", "whiskey"} <= words
    assert {*spoken_words.TEENS, *spoken_words.TENS, *spoken_words.WEEKDAYS, *spoken_words.MONTHS} <= words


def test_what_the_grammars_accept_the_slot_parsers_read() -> None:
    """The shared vocabularies keep recogniser output and slot parsing in step."""
    for phrase in YES_GRAMMAR_PHRASES:
        assert parse_yes_no(phrase) is True, phrase
    misread = [phrase for phrase in NO_GRAMMAR_PHRASES if parse_yes_no(phrase) is not False]
    assert misread == []  # "that's not right" is a no: a negated yes is not a yes
    # a hedge the yes/no grammar can hear is never read as an answer
    assert [phrase for phrase in UNCLEAR_GRAMMAR_PHRASES if parse_yes_no(phrase) is not None] == []
    for value, word in enumerate(spoken_words.TENS, start=2):
        assert parse_number(f"{word} {spoken_words.UNITS[value % 9]}") == value * 10 + 1 + value % 9
    for i, word in enumerate(spoken_words.NATO_ALPHABET):
        assert parse_letters(word) == chr(ord("A") + i)
    today = date(2026, 3, 2)  # a Monday
    for i, month in enumerate(spoken_words.MONTHS, start=1):
        assert parse_date(f"the fifth of {month}", today, direction="any") == date(2026, i, 5)
    assert set(COMMAND_GRAMMAR_PHRASES) >= set(spoken_words.PERSON_TITLES)


def test_every_listen_of_a_demo_call_loads_into_pocketsphinx(decoder: Decoder,
                                                            dictionary: PronunciationDictionary) -> None:
    intent_map = load_intent_map()
    engine = ConversationEngine(intent_map, build_classifier(intent_map.nlu_intents(), embeddings=False),
                                call_id="grammar-test", today=date(2026, 3, 2))
    listens: list[Listen] = []
    for event in (CallStarted(), Utterance("I want to move my appointment"), Utterance("1001"),
                  Utterance("SW1A 1AA")):
        listens += [a for a in engine.handle(event) if isinstance(a, Listen)]
    assert [listen.expect.kind for listen in listens] == ["open", "digits", "letters"]
    cache = SearchCache(dictionary)
    for n, listen in enumerate(listens):
        spec = cache.spec_for(listen.expect)
        if listen.expect.kind == "open":
            assert spec.kind == "lm"  # the open turn gets a language model, not a grammar
            continue
        assert spec.kind == "jsgf"
        decoder.add_jsgf_string(f"demo_{n}", spec.text)
