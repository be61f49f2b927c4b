"""The MiniLM encoder as an ONNX graph built from its own safetensors weights, run on onnxruntime.

Why: the numpy forward pass is bound by its matrix products (~8-9 ms CPU for a short utterance on
this 2-core machine, 80 % of an open turn's engine time). onnxruntime's kernels, with its graph fusions
(attention, skip layer-norm, bias-GELU) do the same forward pass in about a third of that (measured:
CPU p50 9.3 -> 3.0 ms per utterance, embeddings equal to the numpy path's to cosine 0.999998). int8
dynamic quantisation was faster still (1.2 ms) but moved embeddings to cosine 0.88: not used. The
graph is built in memory at load time from the weights the numpy path uses (nothing downloaded, no
exported model file to trust or ship); ``onnx`` is needed only to write the graph. The numpy path
stays the reference and the fallback.

The graph takes token ids, position ids and the additive attention bias, and returns the last hidden
state; pooling and normalisation stay in numpy (cheap, shared with the reference path).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

OPSET = 17  # LayerNormalization


class GraphUnavailable(RuntimeError):
    """onnx / onnxruntime are missing or refused the graph (the numpy path is used instead)."""


def build_graph(weights: Mapping[str, FloatArray], config: Mapping[str, Any]) -> bytes:
    """Serialised ONNX model of the BERT encoder in ``weights`` (HF names), hidden state as output."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise GraphUnavailable(f"onnx is not installed: {exc}") from None

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.array(value, dtype=dtype, order="C"), name))  # 0-d stays 0-d
        return name

    def w(name: str) -> FloatArray:
        return np.asarray(weights[name], dtype=np.float32)

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def layer_norm(x: str, prefix: str, out: str) -> str:
        return node("LayerNormalization", [x, const(prefix + ".g", w(prefix + ".weight")),
                                           const(prefix + ".b", w(prefix + ".bias"))], out, axis=-1, epsilon=eps)

    def dense(x: str, prefix: str, out: str) -> str:
        mm = node("MatMul", [x, const(prefix + ".wt", w(prefix + ".weight").T)], out + ".mm")
        return node("Add", [mm, const(prefix + ".b", w(prefix + ".bias"))], out)

    word = node("Gather", [const("word", w("embeddings.word_embeddings.weight")), "input_ids"], "e.word")
    pos_table = w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    pos = node("Gather", [const("pos", pos_table), "position_ids"], "e.pos")
    x = layer_norm(node("Add", [word, pos], "e.sum"), "embeddings.LayerNorm", "e.out")
    qkv_shape = const("qkv_shape", [0, 0, 3, heads, head_dim], np.int64)
    ctx_shape = const("ctx_shape", [0, 0, hidden], np.int64)
    scale = const("scale", 1.0 / math.sqrt(head_dim))
    half, one, inv_sqrt2 = const("half", 0.5), const("one", 1.0), const("inv_sqrt2", 1.0 / math.sqrt(2.0))
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        att = p + "attention.self."
        qkv_w = np.concatenate([w(att + "query.weight"), w(att + "key.weight"), w(att + "value.weight")]).T
        qkv_b = np.concatenate([w(att + "query.bias"), w(att + "key.bias"), w(att + "value.bias")])
        qkv = node("Add", [node("MatMul", [x, const(p + "qkv.wt", qkv_w)], p + "qkv.mm"),
                           const(p + "qkv.b", qkv_b)], p + "qkv")
        split = node("Transpose", [node("Reshape", [qkv, qkv_shape], p + "qkv.r")], p + "qkv.t",
                     perm=[2, 0, 3, 1, 4])  # (3, b, heads, s, d)
        q, k, v = (node("Gather", [split, const(f"{p}idx{j}", j, np.int64)], f"{p}{n}", axis=0)
                   for j, n in enumerate("qkv"))
        scores = node("MatMul", [q, node("Transpose", [k], p + "kt", perm=[0, 1, 3, 2])], p + "scores")
        scores = node("Add", [node("Mul", [scores, scale], p + "scaled"), "attention_bias"], p + "biased")
        probs = node("Softmax", [scores], p + "probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], p + "ctx")], p + "ctx.t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, ctx_shape], p + "ctx.r")
        out = dense(ctx, p + "attention.output.dense", p + "att.out")
        x = layer_norm(node("Add", [out, x], p + "att.res"), p + "attention.output.LayerNorm", p + "ln1")
        up = dense(x, p + "intermediate.dense", p + "up")
        # GELU as BERT was trained with, x * Phi(x) (onnxruntime fuses it with the bias).
        erf = node("Erf", [node("Mul", [up, inv_sqrt2], p + "up.s")], p + "up.erf")
        gelu = node("Mul", [node("Mul", [up, half], p + "up.h"), node("Add", [erf, one], p + "up.e1")], p + "gelu")
        down = dense(gelu, p + "output.dense", p + "down")
        x = layer_norm(node("Add", [down, x], p + "down.res"), p + "output.LayerNorm", p + "ln2")
    nodes.append(helper.make_node("Identity", [x], ["hidden_state"]))
    graph = helper.make_graph(
        nodes, "minilm",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["seq"]),
         helper.make_tensor_value_info("attention_bias", TensorProto.FLOAT, ["batch", 1, 1, "seq"])],
        [helper.make_tensor_value_info("hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ari-agent")
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class GraphForward:
    """The encoder's forward pass on onnxruntime: ``(ids, mask) -> hidden state``."""

    def __init__(self, model: bytes, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise GraphUnavailable(f"onnxruntime is not installed: {exc}") from None
        opts = ort.SessionOptions()
        # One thread, like the numpy path's BLAS cap: on a shared 2-core machine a spinning pool costs
        # other calls' audio more than it saves here.
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise GraphUnavailable(f"onnxruntime refused the encoder graph: {exc}") from None

    def __call__(self, ids: npt.NDArray[np.int64], mask: FloatArray) -> FloatArray:
        seq = ids.shape[1]
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        out = self._session.run(None, {"input_ids": ids, "position_ids": np.arange(seq, dtype=np.int64),
                                       "attention_bias": bias})
        hidden: FloatArray = np.asarray(out[0], dtype=np.float32)
        return hidden


def graph_enabled() -> bool:
    """``ARI_AGENT_ENCODER=numpy`` forces the numpy reference path; anything else uses onnxruntime."""
    return os.environ.get("ARI_AGENT_ENCODER", "onnxruntime").strip().lower() != "numpy"
