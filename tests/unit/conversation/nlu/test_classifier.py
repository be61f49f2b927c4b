"""Classifier behaviour and accuracy floors on the demo test split (tuned only on the dev split)."""

from __future__ import annotations

import pytest

from ari_agent.conversation.nlu import (
    Classification,
    HybridIntentClassifier,
    IntentClassifier,
    IntentSpec,
    build_classifier,
    split_clauses,
)
from ari_agent.devtools.bench_nlu import LabelledUtterance, evaluate

# Measured on tests/data/nlu/demo_testset.jsonl (see the NLU report); floors sit a little below.
LEXICAL_FLOOR = {"accuracy": 0.84, "in_scope_accuracy": 0.83, "oos_handed_off_rate": 0.86}
COMBINED_FLOOR = {"accuracy": 0.90, "in_scope_accuracy": 0.90, "oos_handed_off_rate": 0.90}


def _check_floor(report: dict[str, object], floor: dict[str, float]) -> None:
    for key, minimum in floor.items():
        value = report[key]
        assert isinstance(value, float)
        assert value >= minimum, f"{key} = {value:.3f} < {minimum} (errors: {report['errors']})"


def test_lexical_path_accuracy_floor(
    lexical_classifier: HybridIntentClassifier, testset: list[LabelledUtterance]
) -> None:
    assert not lexical_classifier.uses_embeddings
    _check_floor(evaluate(lexical_classifier, testset), LEXICAL_FLOOR)


def test_combined_path_accuracy(combined_classifier: HybridIntentClassifier, testset: list[LabelledUtterance]) -> None:
    assert combined_classifier.uses_embeddings
    report = evaluate(combined_classifier, testset)
    _check_floor(report, COMBINED_FLOOR)
    assert report["also_mentioned_recall"] is not None and report["also_mentioned_recall"] >= 0.8


@pytest.mark.parametrize("path", ["lexical", "combined"])
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "um uh",
        "???",
        "\x00\x01",
        "🙂🙂",
        "ñandú çà",
        "a" * 5000,
        "where is my order " * 300,
        "acc",
        "appoint",
    ],
)
def test_garbage_is_out_of_scope_and_never_raises(path: str, text: str, request: pytest.FixtureRequest) -> None:
    classifier: IntentClassifier = request.getfixturevalue(f"{path}_classifier")
    result = classifier.classify(text)
    assert isinstance(result, Classification)
    if "where is my order" not in text:
        assert result.intent is None
    assert 0.0 <= result.confidence <= 1.0


@pytest.mark.parametrize("path", ["lexical", "combined"])
def test_non_string_input_is_out_of_scope(path: str, request: pytest.FixtureRequest) -> None:
    classifier: IntentClassifier = request.getfixturevalue(f"{path}_classifier")
    assert classifier.classify(None).intent is None  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["lexical", "combined"])
@pytest.mark.parametrize(
    ("text", "intent", "also"),
    [
        ("can you check my order and also I want to pay my bill", "order_status", ("bill_payment",)),
        ("what time do you shut tonight and where are you", "faq_hours", ("faq_address",)),
        ("um my account is locked, and then can I talk to a real person", "account_unlock", ("speak_to_human",)),
    ],
)
def test_multi_intent(path: str, text: str, intent: str, also: tuple[str, ...], request: pytest.FixtureRequest) -> None:
    classifier: IntentClassifier = request.getfixturevalue(f"{path}_classifier")
    result = classifier.classify(text)
    assert result.intent == intent
    assert result.also_mentioned == also
    assert result.ranked[0][0] == intent


@pytest.mark.parametrize("path", ["lexical", "combined"])
def test_single_request_has_nothing_also_mentioned(path: str, request: pytest.FixtureRequest) -> None:
    classifier: IntentClassifier = request.getfixturevalue(f"{path}_classifier")
    result = classifier.classify("I got locked out and I can't log in to the website")
    assert result.intent == "account_unlock"
    assert result.also_mentioned == ()


def test_ranked_lists_every_intent_best_first(combined_classifier: HybridIntentClassifier) -> None:
    result = combined_classifier.classify("uh yeah hi, is the technician still coming on Friday")
    assert result.intent == "appointment_confirm"
    assert {name for name, _ in result.ranked} == set(combined_classifier.names)
    scores = [score for _, score in result.ranked]
    assert scores == sorted(scores, reverse=True)
    assert result.confidence == pytest.approx(result.ranked[0][1])


def test_one_word_requests(lexical_classifier: HybridIntentClassifier) -> None:
    assert lexical_classifier.classify("Operator!").intent == "speak_to_human"
    assert lexical_classifier.classify("agent, agent, agent").intent == "speak_to_human"
    assert lexical_classifier.classify("resched").intent is None  # a fragment, not a word the map lists


def test_out_of_scope_examples(combined_classifier: HybridIntentClassifier) -> None:
    for text in ("tell me a joke", "what's the weather like tomorrow", "when does the post office open"):
        assert combined_classifier.classify(text).intent is None, text


def test_build_without_encoder_and_custom_threshold() -> None:
    specs = [
        IntentSpec("faq_hours", ("when are you open", "what are your hours")),
        IntentSpec("speak_to_human", ("let me talk to a person",), keywords=("agent",)),
    ]
    lexical = build_classifier(specs, embeddings=False)
    assert lexical.classify("um what time are you open on sunday").intent == "faq_hours"
    strict = build_classifier(specs, embeddings=False, threshold=0.99)
    assert strict.classify("um what time are you open on sunday").intent is None
    with pytest.raises(ValueError):
        build_classifier(specs, threshold=1.5)
    with pytest.raises(ValueError):
        build_classifier([])


def test_split_clauses() -> None:
    assert split_clauses("check my order and also pay my bill") == ["check my order", "pay my bill"]
    assert split_clauses("i want to check and see") == ["i want to check and see"]  # one-word tail merged
    assert split_clauses("where is my order") == ["where is my order"]


def test_falls_back_to_lexical_without_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from ari_agent.conversation.nlu import classifier as classifier_module
    from ari_agent.conversation.nlu.encoder import EncoderUnavailable

    def unavailable() -> None:
        raise EncoderUnavailable("no weights here")

    monkeypatch.setattr(classifier_module, "load_encoder", unavailable)
    specs = [IntentSpec("faq_hours", ("when are you open",)), IntentSpec("faq_address", ("where are you",))]
    fallback = build_classifier(specs)
    assert not fallback.uses_embeddings
    assert fallback.classify("what time do you open").intent == "faq_hours"
    with pytest.raises(EncoderUnavailable):
        build_classifier(specs, embeddings=True)
