"""Write a tiny whisper.cpp model with random weights: for tests of the real loading and inference path.

No weights are downloaded: the file holds whisper's full vocabulary size (the special-token ids are
fixed by it) but a 1-layer, 64-wide network, about 7 MB. whisper.cpp loads it and ``transcribe()``
runs the whole pipeline (mel, encoder, decoder, sampling) and returns garbage text.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ari_agent.speech.ggml_format import F16, F32, MAGIC_BYTES, WhisperHparams, expected_tensors

TINY_HPARAMS = WhisperHparams(
    n_vocab=51864,  # English-only size: token ids of <|endoftext|>, <|notimestamps|>, ... depend on it
    n_audio_ctx=1500,  # 30 s of 10 ms mel frames after the stride-2 convolution
    n_audio_state=64,
    n_audio_head=2,
    n_audio_layer=1,
    n_text_ctx=448,
    n_text_state=64,
    n_text_head=2,
    n_text_layer=1,
    n_mels=80,
    ftype=1,  # F16 matrices, like the published models
)
N_FFT_BINS = 201  # whisper: n_fft 400 -> 201 bins


def _mel_filters(n_mel: int, n_bins: int) -> np.ndarray:
    """Triangular filters spread linearly over the bins (shape only matters, not accuracy)."""
    edges = np.linspace(0, n_bins - 1, n_mel + 2)
    bins = np.arange(n_bins, dtype=np.float64)
    out = np.zeros((n_mel, n_bins), dtype=np.float32)
    for m in range(n_mel):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / max(mid - lo, 1e-6)
        down = (hi - bins) / max(hi - mid, 1e-6)
        out[m] = np.clip(np.minimum(up, down), 0.0, None)
    return out


def _vocab(n_text_tokens: int) -> list[bytes]:
    letters = "etaoinshrdlucmfwypvbgkqjxz"
    out: list[bytes] = []
    for i in range(n_text_tokens):
        word = letters[i % 26] + letters[(i // 26) % 26] + (letters[(i // 676) % 26] if i >= 676 else "")
        out.append((" " + word).encode())
    if n_text_tokens > 220:
        out[220] = b" "  # as in GPT-2's vocabulary; whisper.cpp looks " " up (suppress_blank)
    return out


def write_tiny_whisper_model(
    path: str | os.PathLike[str], hparams: WhisperHparams = TINY_HPARAMS, seed: int = 0, n_text_tokens: int = 50256
) -> Path:
    """Write a loadable ggml whisper model with random weights to ``path``; returns the path."""
    rng = np.random.default_rng(seed)
    p = Path(path)
    weight_type = F32 if hparams.ftype == 0 else F16
    if hparams.ftype not in (0, 1):
        raise ValueError("only ftype 0 (F32) and 1 (F16) can be generated")
    with open(p, "wb") as fh:
        fh.write(MAGIC_BYTES)
        fh.write(hparams.pack())
        filters = _mel_filters(hparams.n_mels, N_FFT_BINS)
        fh.write(struct.pack("<2i", hparams.n_mels, N_FFT_BINS))
        fh.write(filters.astype("<f4").tobytes())
        vocab = _vocab(n_text_tokens)
        fh.write(struct.pack("<i", len(vocab)))
        for token in vocab:
            fh.write(struct.pack("<I", len(token)))
            fh.write(token)
        for spec in expected_tensors(hparams):
            ttype = F32 if spec.role == "f32" else weight_type
            shape = tuple(reversed(spec.ne))  # numpy C order: slowest axis first
            if spec.name.endswith(("ln.weight", "ln_post.weight")):
                data = np.ones(shape)
            elif spec.role == "f32" and not spec.name.endswith("positional_embedding"):
                data = np.zeros(shape)
            else:
                data = rng.normal(0.0, 0.02, size=shape)
            dtype = "<f4" if ttype == F32 else "<f2"
            name = spec.name.encode()
            fh.write(struct.pack("<3i", len(spec.ne), len(name), ttype))
            fh.write(struct.pack(f"<{len(spec.ne)}i", *spec.ne))
            fh.write(name)
            fh.write(np.ascontiguousarray(data, dtype=dtype).tobytes())
    return p
