"""Convert a CTranslate2 Whisper model (faster-whisper's ``model.bin``) to a whisper.cpp ggml model.

Why: the Whisper weights reachable here ship in CTranslate2's format (a ``WhisperSpec`` directory:
``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.*``), while the production recogniser
is whisper.cpp (pywhispercpp), which reads only its own legacy ggml file
(:mod:`ari_agent.speech.ggml_format`). Plain numpy, no ctranslate2 or torch.

CTranslate2's ``model.bin`` (binary version 6; little-endian): u32 version, string spec name,
u32 revision, u32 variable count, then per variable: string name, u8 rank, u32 x rank dims, u8 dtype
(0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16), u32 byte count, raw data; then u32 alias
count and (alias, target) string pairs. A string is a u16 length (counting a trailing NUL) + bytes.

How CTranslate2's Whisper converter lays the network out (``converters/transformers.py``,
``specs/whisper_spec.py``), and what whisper.cpp calls it:

- ``encoder/conv{1,2}/{weight,bias}`` (out, in, k) -> ``encoder.conv{1,2}.*`` (the bias as (out, 1))
- ``encoder/position_encodings/encodings`` -> ``encoder.positional_embedding`` (decoder: likewise)
- ``{en,de}coder/layer_N/self_attention/linear_0`` (fused [q; k; v] rows) ->
  ``…blocks.N.attn.{query,key,value}``, split in three (whisper has no key bias: CTranslate2 stores
  zeros there, whisper.cpp has no tensor for it)
- ``…/self_attention/linear_1`` -> ``…attn.out``; ``…/self_attention/layer_norm/{gamma,beta}`` ->
  ``…attn_ln.{weight,bias}``
- ``decoder/layer_N/attention/linear_0`` -> ``…cross_attn.query``; ``…/attention/linear_1`` (fused
  [k; v]) -> ``…cross_attn.{key,value}``; ``…/attention/linear_2`` -> ``…cross_attn.out``;
  ``…/attention/layer_norm`` -> ``…cross_attn_ln``
- ``…/ffn/linear_{0,1}`` -> ``…mlp.{0,2}``; ``…/ffn/layer_norm`` -> ``…mlp_ln``
- ``encoder/layer_norm`` -> ``encoder.ln_post``; ``decoder/layer_norm`` -> ``decoder.ln``
- ``decoder/embeddings/weight`` -> ``decoder.token_embedding.weight`` (whisper ties the output
  projection to it; CTranslate2 keeps ``decoder/projection/weight`` as an alias)

Linear weights are (out, in) in both (ggml's ne is the reverse, in first). CTranslate2 does not
pre-scale the queries (it applies 1/sqrt(d_head) at run time, as whisper.cpp does), so weights copy
as they are. int8/int16 CTranslate2 models (``weight_scale`` beside the weight) are de-quantised.

Also written: the mel filterbank (librosa's slaney-normalised mel, as in openai-whisper's
``mel_filters.npz``) and the vocabulary from ``tokenizer.json`` (GPT-2 byte-level BPE strings mapped
back to raw bytes, the ordinary tokens only: whisper.cpp names the special and timestamp tokens
itself from ``n_vocab``). The file is written next to ``out_path``, validated with
:func:`~ari_agent.speech.ggml_format.validate_whisper_model` and only then renamed into place.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

import numpy as np
import numpy.typing as npt

from ari_agent.speech.ggml_format import (
    F16,
    F32,
    MAGIC_BYTES,
    QNT_VERSION_FACTOR,
    ModelFileError,
    TensorSpec,
    WhisperHparams,
    expected_tensors,
    validate_whisper_model,
)

GgmlDtype = Literal["f32", "f16", "q8_0"]

CT2_BINARY_VERSION: Final = 6
Q8_0: Final = 8
QK8_0: Final = 32
GGML_QNT_VERSION: Final = 2
# ggml_ftype of the file for each dtype (whisper.cpp's quantize tool adds 1000 x GGML_QNT_VERSION)
_FTYPES: Final[dict[str, int]] = {"f32": 0, "f16": 1, "q8_0": GGML_QNT_VERSION * QNT_VERSION_FACTOR + 7}
_CT2_DTYPES: Final[dict[int, str]] = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bfloat16"}
_CT2_DTYPE_SIZES: Final[dict[int, int]] = {0: 4, 1: 1, 2: 2, 3: 4, 4: 2, 5: 2}
_MAX_RANK: Final = 8
SAMPLE_RATE: Final = 16000
N_FFT: Final = 400

F32Array = npt.NDArray[np.float32]


class Ct2FormatError(ModelFileError):
    """A CTranslate2 model directory the converter cannot read (or not a Whisper model)."""


# ------------------------------------------------------------------ reading CTranslate2's model.bin


@dataclass(frozen=True)
class Ct2Variable:
    name: str
    shape: tuple[int, ...]
    dtype: int  # CTranslate2 DataType id
    offset: int  # of the raw data in the file
    nbytes: int


class Ct2Model:
    """The index of a CTranslate2 ``model.bin`` (read once); tensors are read on demand."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.variables: dict[str, Ct2Variable] = {}
        self.aliases: dict[str, str] = {}
        try:
            size = self.path.stat().st_size
            fh = open(self.path, "rb")  # closed by the with block below
        except OSError as exc:
            raise Ct2FormatError(f"{self.path}: cannot read the model ({exc.strerror or exc})") from None
        with fh:
            (version,) = struct.unpack("<I", self._read(fh, 4, "header"))
            if version != CT2_BINARY_VERSION:
                raise Ct2FormatError(f"{self.path}: CTranslate2 binary version {version}, this reader knows "
                                     f"{CT2_BINARY_VERSION} (not a CTranslate2 model.bin?)")
            self.spec = self._string(fh)
            (self.revision,) = struct.unpack("<I", self._read(fh, 4, "header"))
            (count,) = struct.unpack("<I", self._read(fh, 4, "header"))
            for _ in range(count):
                name = self._string(fh)
                (rank,) = struct.unpack("<B", self._read(fh, 1, name))
                if rank > _MAX_RANK:
                    raise Ct2FormatError(f"{self.path}: variable {name!r} claims rank {rank}")
                shape = struct.unpack(f"<{rank}I", self._read(fh, 4 * rank, name))
                dtype, nbytes = struct.unpack("<BI", self._read(fh, 5, name))
                if dtype not in _CT2_DTYPES:
                    raise Ct2FormatError(f"{self.path}: variable {name!r} has unknown dtype {dtype}")
                n = 1
                for d in shape:
                    n *= d
                if n * _CT2_DTYPE_SIZES[dtype] != nbytes or fh.tell() + nbytes > size:
                    raise Ct2FormatError(f"{self.path}: variable {name!r} {list(shape)} has {nbytes} bytes "
                                         "(corrupt or truncated)")
                self.variables[name] = Ct2Variable(name, tuple(shape), dtype, fh.tell(), nbytes)
                fh.seek(nbytes, os.SEEK_CUR)
            if fh.tell() < size:
                (n_aliases,) = struct.unpack("<I", self._read(fh, 4, "aliases"))
                for _ in range(n_aliases):
                    alias = self._string(fh)
                    self.aliases[alias] = self._string(fh)
        self._fh: BinaryIO | None = None

    def _read(self, fh: BinaryIO, n: int, what: str) -> bytes:
        data = fh.read(n)
        if len(data) != n:
            raise Ct2FormatError(f"{self.path}: truncated in {what}")
        return data

    def _string(self, fh: BinaryIO) -> str:
        (length,) = struct.unpack("<H", self._read(fh, 2, "a string"))
        return self._read(fh, length, "a string").rstrip(b"\0").decode("utf-8", errors="replace")

    def resolve(self, name: str) -> str:
        seen = 0
        while name in self.aliases and name not in self.variables and seen < 16:
            name, seen = self.aliases[name], seen + 1
        return name

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) in self.variables

    def shape(self, name: str) -> tuple[int, ...]:
        return self._var(name).shape

    def _var(self, name: str) -> Ct2Variable:
        var = self.variables.get(self.resolve(name))
        if var is None:
            raise Ct2FormatError(f"{self.path}: no variable {name!r} (not a Whisper model?)")
        return var

    def raw(self, name: str) -> npt.NDArray[np.generic]:
        """The variable as stored (bfloat16 comes back as float32)."""
        var = self._var(name)
        with open(self.path, "rb") as fh:
            fh.seek(var.offset)
            data = fh.read(var.nbytes)
        if _CT2_DTYPES[var.dtype] == "bfloat16":
            bits = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
            return bits.view(np.float32).reshape(var.shape)
        return np.frombuffer(data, dtype=_CT2_DTYPES[var.dtype]).reshape(var.shape)

    def scalar(self, name: str) -> int:
        return int(self.raw(name).reshape(-1)[0])

    def tensor(self, name: str) -> F32Array:
        """The variable as float32, de-quantised when CTranslate2 stored it as int8/int16 + scale."""
        value = self.raw(name)
        if value.dtype.kind == "f":
            return value.astype(np.float32)
        scale_name = name + "_scale"
        if scale_name not in self:
            raise Ct2FormatError(f"{self.path}: {name!r} is {value.dtype} without a {scale_name!r}")
        scale = self.raw(scale_name).astype(np.float32)
        out = value.astype(np.float32)
        if scale.size == 1:
            return out / scale.reshape(())
        rows = out.reshape(out.shape[0], -1) / scale.reshape(-1, 1)  # int8: one scale per output row
        return rows.reshape(value.shape)


# ------------------------------------------------------------------ mel filters and vocabulary


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mel = f / f_sp
    high = f >= min_log_hz
    mel[high] = min_log_mel + np.log(f[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    hz = f_sp * m
    high = m >= min_log_mel
    hz[high] = min_log_hz * np.exp(logstep * (m[high] - min_log_mel))
    return hz


def mel_filters(n_mels: int = 80, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> F32Array:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` (slaney scale and norm): (n_mels, n_fft//2+1)."""
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([sr / 2.0]))[0], n_mels + 2)
    mel_f = _mel_to_hz(mel_pts)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) + 0.0  # (+ 0.0: no negative zeros)
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: the printable stand-in character -> the raw byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


_BYTE_DECODER: Final = _byte_decoder()


def token_bytes(token: str) -> bytes:
    """A byte-level BPE token string (``Ġhello``) as the bytes it stands for (``b' hello'``)."""
    try:
        return bytes(_BYTE_DECODER[c] for c in token)
    except KeyError:  # not byte-level (should not happen in GPT-2 vocabularies): keep the UTF-8
        return token.encode("utf-8")


def read_vocabulary(model_dir: Path) -> list[bytes]:
    """The ordinary (non-special) tokens, in id order, as raw bytes.

    From ``tokenizer.json`` (HF tokenizers: ``model.vocab`` + ``added_tokens``); else from
    CTranslate2's ``vocabulary.json`` / ``vocabulary.txt``, cut at ``<|endoftext|>``.
    """
    tok_path = model_dir / "tokenizer.json"
    ordered: list[str]
    if tok_path.exists():
        try:
            data = json.loads(tok_path.read_text(encoding="utf-8"))
            vocab: dict[str, int] = data["model"]["vocab"]
            special = {int(t["id"]) for t in data.get("added_tokens", []) if t.get("special", True)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Ct2FormatError(f"{tok_path}: not a tokenizers JSON file ({exc})") from None
        by_id = {int(i): t for t, i in vocab.items()}
        vocab_special = {i for i, t in by_id.items() if t == "<|endoftext|>"}
        first_special = min(special | vocab_special) if special | vocab_special else len(by_id)
        missing = [i for i in range(first_special) if i not in by_id]
        if missing:
            raise Ct2FormatError(f"{tok_path}: token ids are not contiguous (id {missing[0]} missing)")
        ordered = [by_id[i] for i in range(first_special)]
    elif (model_dir / "vocabulary.json").exists():
        ordered = list(json.loads((model_dir / "vocabulary.json").read_text(encoding="utf-8")))
    elif (model_dir / "vocabulary.txt").exists():
        ordered = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    else:
        raise Ct2FormatError(f"{model_dir}: no tokenizer.json or vocabulary file")
    if "<|endoftext|>" in ordered:
        ordered = ordered[:ordered.index("<|endoftext|>")]
    return [token_bytes(t) for t in ordered]


# ------------------------------------------------------------------ the mapping


def _count_layers(model: Ct2Model, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    found = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    n = max(found) + 1 if found else 0
    if sorted(found) != list(range(n)):
        raise Ct2FormatError(f"{model.path}: {prefix} layers {sorted(found)} are not contiguous")
    return n


def whisper_hparams(model: Ct2Model, dtype: GgmlDtype = "f16") -> WhisperHparams:
    if model.spec != "WhisperSpec":
        raise Ct2FormatError(f"{model.path}: a {model.spec!r} model, not WhisperSpec")
    n_vocab, n_text_state = model.shape("decoder/embeddings/weight")
    n_audio_ctx, n_audio_state = model.shape("encoder/position_encodings/encodings")
    n_text_ctx = model.shape("decoder/position_encodings/encodings")[0]
    n_mels = model.shape("encoder/conv1/weight")[1]
    return WhisperHparams(
        n_vocab=n_vocab, n_audio_ctx=n_audio_ctx, n_audio_state=n_audio_state,
        n_audio_head=model.scalar("encoder/num_heads"), n_audio_layer=_count_layers(model, "encoder"),
        n_text_ctx=n_text_ctx, n_text_state=n_text_state, n_text_head=model.scalar("decoder/num_heads"),
        n_text_layer=_count_layers(model, "decoder"), n_mels=n_mels, ftype=_FTYPES[dtype],
    )


_LINEAR: Final = re.compile(r"(?P<block>(?:en|de)coder\.blocks\.\d+\.)(?P<part>[a-z_]+(?:\.[0-9a-z_]+)?)\."
                            r"(?P<kind>weight|bias)$")


def _source(model: Ct2Model, name: str) -> F32Array:
    """The data of ggml tensor ``name`` (whisper.cpp naming), cut from the CTranslate2 variables."""
    fixed = {
        "encoder.positional_embedding": "encoder/position_encodings/encodings",
        "decoder.positional_embedding": "decoder/position_encodings/encodings",
        "decoder.token_embedding.weight": "decoder/embeddings/weight",
        "encoder.ln_post.weight": "encoder/layer_norm/gamma",
        "encoder.ln_post.bias": "encoder/layer_norm/beta",
        "decoder.ln.weight": "decoder/layer_norm/gamma",
        "decoder.ln.bias": "decoder/layer_norm/beta",
    }
    if name in fixed:
        return model.tensor(fixed[name])
    if name.startswith("encoder.conv"):
        conv = name.split(".")[1]
        value = model.tensor(f"encoder/{conv}/{name.rsplit('.', 1)[1]}")
        return value.reshape(-1, 1) if name.endswith("bias") else value
    m = _LINEAR.match(name)
    if m is None:
        raise Ct2FormatError(f"no CTranslate2 source known for ggml tensor {name!r}")
    side, _, layer = m.group("block").split(".")[:3]
    base = f"{side}/layer_{layer}"
    part, kind = m.group("part"), m.group("kind")
    if part.endswith("_ln"):
        block = {"attn_ln": "self_attention", "cross_attn_ln": "attention", "mlp_ln": "ffn"}[part]
        return model.tensor(f"{base}/{block}/layer_norm/{'gamma' if kind == 'weight' else 'beta'}")
    if part in ("mlp.0", "mlp.2"):
        return model.tensor(f"{base}/ffn/linear_{0 if part == 'mlp.0' else 1}/{kind}")
    attn, proj = part.split(".")
    if attn == "attn":  # self-attention: linear_0 = fused [q; k; v], linear_1 = out
        parts: tuple[str, ...] = ("query", "key", "value")
        block, fused, out = "self_attention", "linear_0", "linear_1"
        if proj == "out":
            return model.tensor(f"{base}/{block}/{out}/{kind}")
    else:  # cross-attention: linear_0 = q, linear_1 = fused [k; v], linear_2 = out
        block, out = "attention", "linear_2"
        if proj == "out":
            return model.tensor(f"{base}/{block}/{out}/{kind}")
        if proj == "query":
            return model.tensor(f"{base}/{block}/linear_0/{kind}")
        fused, parts = "linear_1", ("key", "value")
    value = model.tensor(f"{base}/{block}/{fused}/{kind}")
    if value.shape[0] % len(parts):
        raise Ct2FormatError(f"{model.path}: {base}/{block}/{fused}/{kind} {list(value.shape)} does not split "
                             f"into {len(parts)}")
    return np.split(value, len(parts), axis=0)[parts.index(proj)]


def quantize_q8_0(values: F32Array) -> bytes:
    """ggml's Q8_0 blocks (32 values: f16 scale amax/127, then 32 x int8) along the last axis."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, QK8_0)
    amax = np.abs(flat).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    scaled = flat * inv
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)  # roundf: half away from zero
    blocks = np.empty(flat.shape[0], dtype=[("d", "<f2"), ("qs", "i1", (QK8_0,))])
    blocks["d"] = d[:, 0].astype(np.float16)
    blocks["qs"] = q
    return blocks.tobytes()


def _tensor_type(spec: TensorSpec, dtype: GgmlDtype) -> int:
    if spec.role == "f32" or dtype == "f32":
        return F32
    if spec.role == "conv" or dtype == "f16":
        return F16
    return Q8_0


def _encode(spec: TensorSpec, data: F32Array, dtype: GgmlDtype) -> tuple[int, bytes]:
    shape = tuple(reversed(spec.ne))  # numpy C order: ggml's ne[0] is the last axis
    if data.size != spec.n_elements:
        raise Ct2FormatError(f"{spec.name}: {list(data.shape)} does not fit ggml shape {list(spec.ne)}")
    arr = data.reshape(shape)
    ttype = _tensor_type(spec, dtype)
    if ttype == Q8_0 and spec.ne[0] % QK8_0:
        ttype = F16  # (does not happen for whisper's widths) whisper.cpp would refuse a mixed file anyway
    if ttype == F32:
        return ttype, np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if ttype == F16:
        return ttype, np.ascontiguousarray(arr, dtype="<f2").tobytes()
    return ttype, quantize_q8_0(arr)


def _records(model: Ct2Model, hp: WhisperHparams, dtype: GgmlDtype) -> Iterator[bytes]:
    for spec in expected_tensors(hp):
        ttype, data = _encode(spec, _source(model, spec.name), dtype)
        name = spec.name.encode()
        yield struct.pack("<3i", len(spec.ne), len(name), ttype) + struct.pack(f"<{len(spec.ne)}i", *spec.ne) + name
        yield data


def _check_projection(model: Ct2Model) -> None:
    proj = "decoder/projection/weight"
    if proj not in model or model.resolve(proj) == "decoder/embeddings/weight":
        return
    if not np.array_equal(model.raw(proj), model.raw("decoder/embeddings/weight")):
        raise Ct2FormatError(f"{model.path}: the output projection is not tied to the token embedding; "
                             "whisper.cpp cannot represent that")


# ------------------------------------------------------------------ the entry point


def convert_ct2_whisper(model_dir: Path, out_path: Path, *, dtype: str = "f16") -> Path:
    """Convert the CTranslate2 Whisper model in ``model_dir`` to a whisper.cpp ggml file at ``out_path``.

    ``dtype``: ``f16`` (as whisper.cpp's own converter writes), ``f32``, or ``q8_0`` (the 2-D weights
    as Q8_0 blocks; convolutions stay F16, biases, norms and positions F32). The file is written
    beside ``out_path``, validated in full, then renamed into place; returns ``out_path``.
    Ct2FormatError when the directory is not a readable CTranslate2 Whisper model.
    """
    if dtype not in _FTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_FTYPES)}, not {dtype!r}")
    ggml_dtype: GgmlDtype = "f32" if dtype == "f32" else "q8_0" if dtype == "q8_0" else "f16"
    model_dir, out_path = Path(model_dir), Path(out_path)
    model = Ct2Model(model_dir / "model.bin")
    hp = whisper_hparams(model, ggml_dtype)
    _check_projection(model)
    vocab = read_vocabulary(model_dir)
    if not 0 < len(vocab) <= hp.n_vocab:
        raise Ct2FormatError(f"{model_dir}: {len(vocab)} tokens for n_vocab {hp.n_vocab}")
    filters = mel_filters(hp.n_mels)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{time.monotonic_ns()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(MAGIC_BYTES)
            fh.write(hp.pack())
            fh.write(struct.pack("<2i", *filters.shape))
            fh.write(filters.astype("<f4").tobytes())
            fh.write(struct.pack("<i", len(vocab)))
            for token in vocab:
                fh.write(struct.pack("<I", len(token)))
                fh.write(token)
            for chunk in _records(model, hp, ggml_dtype):
                fh.write(chunk)
        validate_whisper_model(tmp, "full")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path
