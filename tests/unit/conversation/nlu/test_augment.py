"""Model-free variants of the examples the softmax head trains on."""

from __future__ import annotations

import numpy as np

from ari_agent.conversation.nlu.augment import garble_word, variants
from ari_agent.conversation.nlu.head import Augmented, calibrate_head, fit_intent_head


def test_variants_are_deterministic_distinct_and_never_the_text() -> None:
    text = "i want to transfer money to another account"
    out = variants(text, 4)
    assert out == variants(text, 4) and len(out) == 4 and len(set(out)) == 4 and text not in out
    assert variants("", 4) == []


def test_garble_word_keeps_the_sound() -> None:
    import random

    assert garble_word("balance", random.Random(1)) != "balance"
    assert garble_word("ok", random.Random(1)) == "ok"  # nothing to garble


def test_augmented_rows_train_their_example_intent_and_follow_it_out_of_cv() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)).astype(np.float32)
    owner = np.repeat(np.arange(4), 6)
    x = centres[owner] + 0.1 * rng.normal(size=(24, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    aug = Augmented(x[::2] + np.float32(0.01), np.arange(0, 24, 2))
    anchors = rng.normal(size=(8, 16)).astype(np.float32)
    head = fit_intent_head(x, owner, 4, anchors, aug)
    assert head.w.shape == (16, 5)
    assert (head.probs(x)[:, :4].argmax(axis=1) == owner).all()
    cal = calibrate_head(x, owner, 4, anchors, augmented=aug)
    assert cal.cv_accuracy_head > 0.9
