"""JSGF export of expectations: structure, and (when pocketsphinx is installed) that the decoder
accepts every grammar with every word in its dictionary."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.grammar import (
    JsgfError,
    check_jsgf,
    expectation_to_jsgf,
    vocabulary_from_dictionary,
)
from ari_agent.seam import CallStarted, Expectation, Listen, Utterance

EXPECTATIONS = {
    "digits": Expectation(kind="digits", min_digits=4, max_digits=8),
    "number": Expectation(kind="number"),
    "yes_no": Expectation(kind="yes_no"),
    "date": Expectation(kind="date"),
    "time": Expectation(kind="time"),
    "choice": Expectation(kind="choice", choices=("morning", "late morning", "afternoon")),
    "letters": Expectation(kind="letters"),
    "open": Expectation(kind="open", phrases=("where is my order", "I'd like to pay my bill", "track order 4567")),
}


@pytest.mark.parametrize("kind", list(EXPECTATIONS))
def test_grammar_is_structurally_valid(kind: str) -> None:
    text = expectation_to_jsgf(EXPECTATIONS[kind])
    assert text is not None
    rules = check_jsgf(text)
    assert rules[0] == "turn" and "answer" in rules and "command" in rules
    assert text.startswith("#JSGF V1.0;\ngrammar turn;\npublic <turn> = <answer> | <command>;")


def test_digits_grammar_counts_digits() -> None:
    text = expectation_to_jsgf(Expectation(kind="digits", min_digits=4, max_digits=6))
    assert text is not None
    digits_rule = next(line for line in text.splitlines() if line.startswith("<digits>"))
    assert digits_rule.count("<digit_item>") == 6 and digits_rule.count("[<digit_item>]") == 2


def test_open_grammar_lists_phrases_with_numerals_spelled() -> None:
    text = expectation_to_jsgf(EXPECTATIONS["open"])
    assert text is not None
    assert "where is my order | i'd like to pay my bill | track order four five six seven" in text


def test_free_text_has_no_grammar() -> None:
    assert expectation_to_jsgf(Expectation(kind="free_text")) is None
    assert expectation_to_jsgf(Expectation(kind="open")) is None


def test_vocabulary_drops_unknown_phrases() -> None:
    vocab = {"where", "is", "my", "order"}
    text = expectation_to_jsgf(Expectation(kind="open", phrases=("where is my order", "blorp my order")),
                               vocabulary=vocab)
    assert text is not None and "blorp" not in text and "where is my order" in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("grammar x;\npublic <a> = b;\n", "header"),
        ("#JSGF V1.0;\npublic <a> = b;\n", "grammar"),
        ("#JSGF V1.0;\ngrammar x;\n<a> = b;\n", "no public rule"),
        ("#JSGF V1.0;\ngrammar x;\npublic <a> = <b>;\n", "undefined <b>"),
        ("#JSGF V1.0;\ngrammar x;\npublic <a> = (b | c;\n", "unclosed"),
        ("#JSGF V1.0;\ngrammar x;\npublic <a> = b | | c;\n", "empty alternative"),
        ("#JSGF V1.0;\ngrammar x;\npublic <a> = b;\n<a> = c;\n", "defined twice"),
    ],
)
def test_check_jsgf_finds_problems(text: str, problem: str) -> None:
    with pytest.raises(JsgfError, match=problem):
        check_jsgf(text)


def test_every_listen_of_a_call_exports(make_engine: Callable[..., ConversationEngine]) -> None:
    engine = make_engine()
    listens: list[Listen] = []
    for event in (CallStarted(), Utterance("I want to move my appointment"), Utterance("1001"),
                  Utterance("SW1A 1AA")):
        listens += [a for a in engine.handle(event) if isinstance(a, Listen)]
    assert [listen.expect.kind for listen in listens] == ["open", "digits", "letters"]
    for listen in listens:
        text = expectation_to_jsgf(listen.expect)
        assert text is not None
        check_jsgf(text)


@pytest.fixture(scope="module")
def decoder_and_vocab() -> tuple[object, set[str]]:
    pocketsphinx = pytest.importorskip("pocketsphinx")
    path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
    with open(path, encoding="utf-8") as f:
        vocab = vocabulary_from_dictionary(f)
    pocketsphinx.set_loglevel("FATAL")
    return pocketsphinx.Decoder(), vocab


@pytest.mark.parametrize("kind", list(EXPECTATIONS))
def test_pocketsphinx_accepts_grammar(kind: str, decoder_and_vocab: tuple[object, set[str]]) -> None:
    decoder, vocab = decoder_and_vocab
    text = expectation_to_jsgf(EXPECTATIONS[kind], vocabulary=vocab)
    assert text is not None
    decoder.add_jsgf_string(f"g_{kind}", text)  # type: ignore[attr-defined]  # raises if a word is unknown


def test_pocketsphinx_accepts_the_demo_open_turn(decoder_and_vocab: tuple[object, set[str]],
                                                 make_engine: Callable[..., ConversationEngine]) -> None:
    decoder, vocab = decoder_and_vocab
    listen = next(a for a in make_engine().handle(CallStarted()) if isinstance(a, Listen))
    text = expectation_to_jsgf(listen.expect, vocabulary=vocab)
    assert text is not None and text.count("|") > 40  # most example phrasings survive the dictionary
    decoder.add_jsgf_string("demo_open", text)  # type: ignore[attr-defined]
