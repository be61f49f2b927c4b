"""The NLU test set is honest: right shape, and no phrase lifted from the intent map's examples."""

from __future__ import annotations

import re
from collections import Counter

import yaml

from ari_agent.conversation.nlu import normalise_transcript
from ari_agent.conversation.nlu.anchors import OUT_OF_DOMAIN_ANCHORS
from ari_agent.devtools.bench_nlu import LabelledUtterance

from .conftest import DEMO_MAP

KINDS = {"clean", "disfluent", "asr_garbled", "multi", "oos"}


def _four_grams(text: str) -> set[tuple[str, ...]]:
    """4-word sequences of the text as written and as normalised (contractions expanded etc.)."""
    grams: set[tuple[str, ...]] = set()
    for words in (re.findall(r"[a-z0-9']+", text.lower()), normalise_transcript(text).split()):
        grams |= {tuple(words[i : i + 4]) for i in range(len(words) - 3)}
    return grams


def _map_intents() -> list[dict[str, object]]:
    data = yaml.safe_load(DEMO_MAP.read_text(encoding="utf-8"))
    intents: list[dict[str, object]] = data["intents"]
    return intents


def test_testset_shape(testset: list[LabelledUtterance]) -> None:
    names = {str(i["name"]) for i in _map_intents()}
    kinds = Counter(item.kind for item in testset)
    assert len(testset) >= 180
    assert set(kinds) == KINDS
    assert kinds["oos"] >= 40
    assert kinds["asr_garbled"] >= 30 and kinds["multi"] >= 10
    for item in testset:
        assert (item.intent is None) == (item.kind == "oos"), item
        assert item.intent is None or item.intent in names, item
        assert set(item.also) <= names, item
        assert (len(item.also) > 0) == (item.kind == "multi"), item
    per_intent = Counter(item.intent for item in testset if item.intent)
    assert all(per_intent[name] >= 12 for name in names), per_intent


def test_map_examples_within_limit() -> None:
    for intent in _map_intents():
        examples = intent.get("examples") or []
        assert isinstance(examples, list)
        assert 1 <= len(examples) <= 10, intent["name"]


def test_no_four_word_sequence_shared_with_map_examples(testset: list[LabelledUtterance]) -> None:
    example_grams: set[tuple[str, ...]] = set()
    for intent in _map_intents():
        for example in intent.get("examples") or []:  # type: ignore[attr-defined]
            example_grams |= _four_grams(str(example))
    shared = {item.text: sorted(_four_grams(item.text) & example_grams) for item in testset}
    assert {t: g for t, g in shared.items() if g} == {}


def test_no_four_word_sequence_shared_with_builtin_anchors(testset: list[LabelledUtterance]) -> None:
    anchor_grams: set[tuple[str, ...]] = set()
    for anchor in OUT_OF_DOMAIN_ANCHORS:
        anchor_grams |= _four_grams(anchor)
    shared = {item.text: sorted(_four_grams(item.text) & anchor_grams) for item in testset}
    assert {t: g for t, g in shared.items() if g} == {}


def test_dev_and_test_splits_are_disjoint(testset: list[LabelledUtterance], devset: list[LabelledUtterance]) -> None:
    test_texts = {i.text.lower() for i in testset}
    dev_texts = {i.text.lower() for i in devset}
    assert not test_texts & dev_texts
    assert len(test_texts) == len(testset)  # no duplicates within the test split
