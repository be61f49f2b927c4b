"""The pure-numpy all-MiniLM-L6-v2 encoder against the published reference and basic sanity."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ari_agent.conversation.nlu.encoder import (
    EncoderUnavailable,
    MiniLmEncoder,
    default_model_dir,
    gelu_exact,
    gelu_tanh,
    limit_blas_threads,
    load_encoder,
)

from .conftest import needs_encoder

# sentence-transformers' README, all-MiniLM-L6-v2: model.similarity(embeddings, embeddings).
REFERENCE_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
REFERENCE_SIMILARITY = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])


@needs_encoder
def test_exact_gelu_reproduces_reference_similarities() -> None:
    model_dir = default_model_dir()
    assert model_dir is not None
    encoder = MiniLmEncoder(model_dir, exact_gelu=True)
    emb = encoder.encode(REFERENCE_SENTENCES)
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(emb @ emb.T, REFERENCE_SIMILARITY, atol=2e-4)


@needs_encoder
def test_default_encoder_matches_reference_closely() -> None:
    emb = load_encoder().encode(REFERENCE_SENTENCES)
    np.testing.assert_allclose(emb @ emb.T, REFERENCE_SIMILARITY, atol=1e-3)


@needs_encoder
def test_embeddings_are_unit_length_and_deterministic() -> None:
    encoder = load_encoder()
    texts = ["where is my order", "operator", "a considerably longer sentence about rescheduling a visit"]
    first = encoder.encode_fresh(texts)
    second = encoder.encode_fresh(texts)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    # Batching (and so padding) does not change an embedding.
    for i, text in enumerate(texts):
        np.testing.assert_allclose(encoder.encode_fresh([text])[0], first[i], atol=1e-5)


@needs_encoder
@pytest.mark.parametrize(
    ("anchor", "similar", "dissimilar"),
    [
        ("where is my parcel", "my delivery has not arrived", "what are your opening hours"),
        ("I want to pay my bill", "can I settle my invoice", "my account is locked"),
        ("let me talk to a real person", "can I speak to a human agent", "what is the weather tomorrow"),
        ("I need to reschedule my appointment", "can we move my visit to another day", "where is your store"),
    ],
)
def test_similar_sentences_are_closer_than_dissimilar(anchor: str, similar: str, dissimilar: str) -> None:
    a, s, d = load_encoder().encode([anchor, similar, dissimilar])
    assert float(a @ s) > float(a @ d) + 0.1


def test_gelu_approximation_is_close() -> None:
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    assert float(np.abs(gelu_exact(x) - gelu_tanh(x.copy())).max()) < 1e-3


def test_missing_model_dir_raises_encoder_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable):
        MiniLmEncoder(tmp_path)


def test_corrupt_model_files_raise_encoder_unavailable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 384}')
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(EncoderUnavailable):
        MiniLmEncoder(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_blas_thread_cap_reaches_numpys_blas() -> None:
    np.ones((4, 4)) @ np.ones((4, 4))  # make sure the BLAS library is loaded
    assert limit_blas_threads(1) is True


@needs_encoder
def test_onnxruntime_graph_matches_the_numpy_reference() -> None:
    """The default forward pass (an ONNX graph built from the same weights) against numpy's, on short
    and long inputs, batched with padding: same embeddings to float precision."""
    model_dir = default_model_dir()
    assert model_dir is not None
    graph = MiniLmEncoder(model_dir, onnxruntime=True)
    reference = MiniLmEncoder(model_dir, exact_gelu=True, onnxruntime=False)
    assert (graph.backend, reference.backend) == ("onnxruntime", "numpy")
    texts = ["ok", "where is my order", "I need to move my appointment to next Tuesday at half past three, please",
             *REFERENCE_SENTENCES]
    np.testing.assert_allclose(graph.encode_fresh(texts), reference.encode_fresh(texts), atol=2e-5)
    emb = graph.encode(REFERENCE_SENTENCES)
    np.testing.assert_allclose(emb @ emb.T, REFERENCE_SIMILARITY, atol=2e-4)


def test_graph_refused_without_onnx_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No onnx package: a clear GraphUnavailable, which the encoder turns into the numpy path."""
    import builtins

    from ari_agent.conversation.nlu.encoder_graph import GraphUnavailable, build_graph

    real_import = builtins.__import__

    def no_onnx(name: str, *args: object, **kwargs: object) -> object:
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(GraphUnavailable, match="onnx is not installed"):
        build_graph({}, {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 1})
    model_dir = default_model_dir()
    if model_dir is not None:
        assert MiniLmEncoder(model_dir).backend == "numpy"
