"""The legacy ggml whisper model file (what whisper.cpp's ``whisper_model_load`` reads), and a validator.

Layout, little-endian throughout:

1. magic: uint32 ``0x67676d6c`` (the bytes ``lmgg`` on disk). whisper.cpp accepts nothing else:
   ``ggjt``/``ggmf`` (llama.cpp's old formats) and GGUF are refused by its loader.
2. hparams: 11 x int32 - n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
   n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (+ 1000 x quantisation version).
3. mel filters: int32 n_mel, int32 n_fft, then n_mel * n_fft float32.
4. vocabulary: int32 count, then per token uint32 length + bytes (whisper.cpp invents the special
   tokens up to n_vocab when the file lists fewer).
5. tensors until end of file: int32 n_dims, int32 name length, int32 ggml type, n_dims x int32 ne
   (ggml order: ne[0] is the fastest-varying axis), the name, then the raw data (no padding).

whisper.cpp segfaults (later, in ``transcribe()``) on files it cannot load, so
:func:`validate_whisper_model` walks the whole file first - header, every tensor's name, shape, type
and extent, and that all expected tensors are there - without reading the weights.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

from ari_agent.speech.recognizer import SttError

GGML_FILE_MAGIC: Final = 0x67676D6C
MAGIC_BYTES: Final = struct.pack("<I", GGML_FILE_MAGIC)  # b"lmgg"
QNT_VERSION_FACTOR: Final = 1000

# ggml type id -> (bytes per block, elements per block)
GGML_TYPES: Final[dict[int, tuple[int, int]]] = {
    0: (4, 1),  # F32
    1: (2, 1),  # F16
    2: (18, 32),  # Q4_0
    3: (20, 32),  # Q4_1
    6: (22, 32),  # Q5_0
    7: (24, 32),  # Q5_1
    8: (34, 32),  # Q8_0
    10: (84, 256),  # Q2_K
    11: (110, 256),  # Q3_K
    12: (144, 256),  # Q4_K
    13: (176, 256),  # Q5_K
    14: (210, 256),  # Q6_K
}
F32: Final = 0
F16: Final = 1
_MAX_DIM: Final = 1 << 20
_MAX_TOKEN_BYTES: Final = 1 << 16


class ModelFileError(SttError):
    """A model file whisper.cpp would not load (and would crash on): refused before loading."""


@dataclass(frozen=True)
class WhisperHparams:
    n_vocab: int = 51864
    n_audio_ctx: int = 1500
    n_audio_state: int = 384
    n_audio_head: int = 6
    n_audio_layer: int = 4
    n_text_ctx: int = 448
    n_text_state: int = 384
    n_text_head: int = 6
    n_text_layer: int = 4
    n_mels: int = 80
    ftype: int = 1

    def pack(self) -> bytes:
        return struct.pack("<11i", *(getattr(self, f) for f in HPARAM_FIELDS))


HPARAM_FIELDS: Final = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
                        "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")


TensorRole = Literal["f32", "weight", "conv"]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    ne: tuple[int, ...]  # ggml order
    role: TensorRole  # f32: always F32; weight: the file's weight type; conv: F16 unless all-F32

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.ne:
            n *= d
        return n


def expected_tensors(hp: WhisperHparams) -> list[TensorSpec]:
    """Every tensor whisper.cpp's loader creates for ``hp``, in the order the converter writes them."""
    a, t = hp.n_audio_state, hp.n_text_state
    out = [
        TensorSpec("encoder.positional_embedding", (a, hp.n_audio_ctx), "f32"),
        TensorSpec("encoder.conv1.weight", (3, hp.n_mels, a), "conv"),
        TensorSpec("encoder.conv1.bias", (1, a), "f32"),
        TensorSpec("encoder.conv2.weight", (3, a, a), "conv"),
        TensorSpec("encoder.conv2.bias", (1, a), "f32"),
    ]
    for i in range(hp.n_audio_layer):
        p = f"encoder.blocks.{i}."
        out += [
            TensorSpec(p + "attn_ln.weight", (a,), "f32"),
            TensorSpec(p + "attn_ln.bias", (a,), "f32"),
            TensorSpec(p + "attn.query.weight", (a, a), "weight"),
            TensorSpec(p + "attn.query.bias", (a,), "f32"),
            TensorSpec(p + "attn.key.weight", (a, a), "weight"),
            TensorSpec(p + "attn.value.weight", (a, a), "weight"),
            TensorSpec(p + "attn.value.bias", (a,), "f32"),
            TensorSpec(p + "attn.out.weight", (a, a), "weight"),
            TensorSpec(p + "attn.out.bias", (a,), "f32"),
            TensorSpec(p + "mlp_ln.weight", (a,), "f32"),
            TensorSpec(p + "mlp_ln.bias", (a,), "f32"),
            TensorSpec(p + "mlp.0.weight", (a, 4 * a), "weight"),
            TensorSpec(p + "mlp.0.bias", (4 * a,), "f32"),
            TensorSpec(p + "mlp.2.weight", (4 * a, a), "weight"),
            TensorSpec(p + "mlp.2.bias", (a,), "f32"),
        ]
    out += [
        TensorSpec("encoder.ln_post.weight", (a,), "f32"),
        TensorSpec("encoder.ln_post.bias", (a,), "f32"),
        TensorSpec("decoder.positional_embedding", (t, hp.n_text_ctx), "f32"),
        TensorSpec("decoder.token_embedding.weight", (t, hp.n_vocab), "weight"),
    ]
    for i in range(hp.n_text_layer):
        p = f"decoder.blocks.{i}."
        for attn in ("attn", "cross_attn"):
            out += [
                TensorSpec(p + f"{attn}_ln.weight", (t,), "f32"),
                TensorSpec(p + f"{attn}_ln.bias", (t,), "f32"),
                TensorSpec(p + f"{attn}.query.weight", (t, t), "weight"),
                TensorSpec(p + f"{attn}.query.bias", (t,), "f32"),
                TensorSpec(p + f"{attn}.key.weight", (t, t), "weight"),
                TensorSpec(p + f"{attn}.value.weight", (t, t), "weight"),
                TensorSpec(p + f"{attn}.value.bias", (t,), "f32"),
                TensorSpec(p + f"{attn}.out.weight", (t, t), "weight"),
                TensorSpec(p + f"{attn}.out.bias", (t,), "f32"),
            ]
        out += [
            TensorSpec(p + "mlp_ln.weight", (t,), "f32"),
            TensorSpec(p + "mlp_ln.bias", (t,), "f32"),
            TensorSpec(p + "mlp.0.weight", (t, 4 * t), "weight"),
            TensorSpec(p + "mlp.0.bias", (4 * t,), "f32"),
            TensorSpec(p + "mlp.2.weight", (4 * t, t), "weight"),
            TensorSpec(p + "mlp.2.bias", (t,), "f32"),
        ]
    out += [
        TensorSpec("decoder.ln.weight", (t,), "f32"),
        TensorSpec("decoder.ln.bias", (t,), "f32"),
    ]
    return out


def tensor_nbytes(ne: tuple[int, ...], ggml_type: int) -> int:
    block_bytes, block = GGML_TYPES[ggml_type]
    n = 1
    for d in ne:
        n *= d
    return n * block_bytes // block


@dataclass(frozen=True)
class WhisperModelInfo:
    path: Path
    size: int
    hparams: WhisperHparams
    n_tensors: int
    multilingual: bool
    checked: Literal["magic", "header", "full"]


def _read(fh: BinaryIO, n: int, what: str, path: Path) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ModelFileError(f"{path}: truncated in the {what} (wanted {n} bytes, got {len(data)})")
    return data


ValidationLevel = Literal["magic", "header", "full"]


def validate_whisper_model(path: str | os.PathLike[str], level: ValidationLevel = "full") -> WhisperModelInfo:
    """Check that ``path`` is a whisper.cpp ggml model the library will load; ModelFileError if not.

    ``magic``: only the magic and the hyper-parameters (what a quick check would do; a file cut
    short passes it and then crashes whisper.cpp - kept for tests of the crash handling).
    ``header``: magic, hyper-parameters, filters, vocabulary, and that the file is at least as large
    as the tensors those parameters imply. ``full`` also walks every tensor record (names, shapes,
    types, extents) without reading the weights: a file cut short anywhere is caught.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        fh = open(p, "rb")  # closed by the with block below
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot read the model file ({exc.strerror or exc})") from None
    with fh:
        magic = fh.read(4)
        if magic != MAGIC_BYTES:
            what = {b"GGUF": "a GGUF file", b"tjgg": "a ggjt (llama.cpp) file", b"fmgg": "a ggmf file"}.get(
                magic, f"magic {magic!r}")
            raise ModelFileError(f"{p}: not a whisper.cpp ggml model ({what}; expected {MAGIC_BYTES!r})")
        values = struct.unpack("<11i", _read(fh, 44, "hyper-parameters", p))
        hp = WhisperHparams(**dict(zip(HPARAM_FIELDS, values, strict=True)))
        _check_hparams(hp, p)
        if level == "magic":
            return WhisperModelInfo(p, size, hp, 0, hp.n_vocab >= 51865, "magic")
        n_mel, n_fft = struct.unpack("<2i", _read(fh, 8, "mel filters", p))
        if n_mel != hp.n_mels or not 1 <= n_fft <= 4096:
            raise ModelFileError(f"{p}: mel filters {n_mel}x{n_fft} do not fit n_mels={hp.n_mels}")
        fh.seek(n_mel * n_fft * 4, os.SEEK_CUR)
        (n_tokens,) = struct.unpack("<i", _read(fh, 4, "vocabulary", p))
        if not 0 <= n_tokens <= hp.n_vocab:
            raise ModelFileError(f"{p}: vocabulary of {n_tokens} tokens (n_vocab={hp.n_vocab})")
        for i in range(n_tokens):
            (length,) = struct.unpack("<I", _read(fh, 4, f"vocabulary (token {i})", p))
            if length > _MAX_TOKEN_BYTES:
                raise ModelFileError(f"{p}: vocabulary token {i} claims {length} bytes")
            _read(fh, length, f"vocabulary (token {i})", p)
        specs = {s.name: s for s in expected_tensors(hp)}
        weight_type = _weight_type(hp.ftype % QNT_VERSION_FACTOR)
        minimum = fh.tell() + sum(
            tensor_nbytes(s.ne, _type_for(s.role, weight_type)) for s in specs.values())
        if size < minimum:
            raise ModelFileError(f"{p}: {size} bytes, but these hyper-parameters need at least {minimum} "
                                 "(truncated?)")
        if level == "header":
            return WhisperModelInfo(p, size, hp, len(specs), hp.n_vocab >= 51865, "header")
        seen: set[str] = set()
        while fh.tell() < size:
            head = _read(fh, 12, "tensor header", p)
            n_dims, name_len, ttype = struct.unpack("<3i", head)
            if not 1 <= n_dims <= 4 or not 1 <= name_len <= 256:
                raise ModelFileError(f"{p}: corrupt tensor header at byte {fh.tell() - 12}")
            ne = struct.unpack(f"<{n_dims}i", _read(fh, 4 * n_dims, "tensor shape", p))
            name = _read(fh, name_len, "tensor name", p).decode("utf-8", errors="replace")
            spec = specs.get(name)
            if spec is None:
                raise ModelFileError(f"{p}: unknown tensor {name!r}")
            if name in seen:
                raise ModelFileError(f"{p}: tensor {name!r} appears twice")
            if _padded(ne) != _padded(spec.ne):
                raise ModelFileError(f"{p}: tensor {name!r} has shape {list(ne)}, expected {list(spec.ne)}")
            if ttype not in GGML_TYPES:
                raise ModelFileError(f"{p}: tensor {name!r} has unknown ggml type {ttype}")
            if spec.role == "f32" and ttype != F32:
                raise ModelFileError(f"{p}: tensor {name!r} must be F32, is type {ttype}")
            if any(d <= 0 or d > _MAX_DIM * 64 for d in ne):
                raise ModelFileError(f"{p}: tensor {name!r} has a bad dimension {list(ne)}")
            nbytes = tensor_nbytes(spec.ne, ttype)
            if fh.tell() + nbytes > size:
                raise ModelFileError(f"{p}: tensor {name!r} is cut short (file truncated)")
            fh.seek(nbytes, os.SEEK_CUR)
            seen.add(name)
        missing = [n for n in specs if n not in seen]
        if missing:
            raise ModelFileError(f"{p}: {len(missing)} tensor(s) missing, first {missing[0]!r}")
    return WhisperModelInfo(p, size, hp, len(seen), hp.n_vocab >= 51865, "full")


def _padded(ne: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(ne) + (1,) * (4 - len(ne))


def _weight_type(ftype: int) -> int:
    # ggml_ftype -> ggml_type for the big matrices (whisper.cpp: ggml_ftype_to_ggml_type)
    mapping = {0: 0, 1: 1, 2: 2, 3: 3, 4: 3, 7: 8, 8: 6, 9: 7, 10: 10, 11: 11, 12: 12, 13: 13, 14: 14}
    return mapping.get(ftype, 1)


def _type_for(role: TensorRole, weight_type: int) -> int:
    if role == "f32":
        return F32
    if role == "conv":
        return F32 if weight_type == F32 else F16
    return weight_type


def _check_hparams(hp: WhisperHparams, p: Path) -> None:
    fields = {f: getattr(hp, f) for f in HPARAM_FIELDS if f != "ftype"}
    bad = [f"{k}={v}" for k, v in fields.items() if not 1 <= v <= _MAX_DIM]
    if bad:
        raise ModelFileError(f"{p}: implausible hyper-parameters ({', '.join(bad)})")
    if hp.n_audio_state != hp.n_text_state:
        raise ModelFileError(f"{p}: n_audio_state {hp.n_audio_state} != n_text_state {hp.n_text_state}")
    if hp.n_audio_state % hp.n_audio_head or hp.n_text_state % hp.n_text_head:
        raise ModelFileError(f"{p}: state size not divisible by the number of heads")
    if hp.n_vocab < 51864:
        raise ModelFileError(f"{p}: n_vocab {hp.n_vocab} is smaller than whisper's special tokens need (51864)")
    ftype = hp.ftype % QNT_VERSION_FACTOR
    if hp.ftype < 0 or ftype not in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14):
        raise ModelFileError(f"{p}: unknown ftype {hp.ftype}")
