"""Resolves ``stt.engine`` / ``tts.engine`` = ``auto`` for a service starting on this host.

The facts (:mod:`ari_agent.speech.engine_choice` decides on them):

- the runtime imports: ``pywhispercpp.model`` (the whisper extra) / ``onnxruntime`` (a base dependency);
- the model is present and valid: the one ``ari-agent models prepare`` wrote, its manifest matching the
  pinned source and every output re-hashed (``ops.models.model_status``, ~0.2 s for both on 2 cores), or
  the file ``stt.whisper.model_path`` / ``tts.piper.model_path`` names (checked as the engine will:
  whisper's ggml walk at ``stt.whisper.validation``; the Piper voice and its ``.onnx.json`` present).

Used by every command that starts the engines (``run``, ``bench``, ``eval --mode audio``, ``transcribe``)
and by ``doctor``; the call layer only accepts a resolved config (``call.app.build_call_manager``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path

from ari_agent.config import Config
from ari_agent.ops.models import PIPER_JOE, WHISPER_TINY_EN, ModelSpec, model_status, prepared_whisper_model
from ari_agent.speech.engine_choice import EngineChoice, Probe, choose_stt, choose_tts, summary
from ari_agent.speech.ggml_format import ModelFileError, validate_whisper_model
from ari_agent.speech.tts_factory import prepared_piper_voice

log = logging.getLogger("ari_agent.engines")

WHISPER_RUNTIME = "pywhispercpp.model"
WHISPER_DISTRIBUTION = "pywhispercpp"
PIPER_RUNTIME = "onnxruntime"
INSTALL_WHISPER_HINT = "install the whisper extra: ARI_AGENT_EXTRAS=whisper bash scripts/install.sh"


@dataclass(frozen=True)
class ResolvedEngines:
    config: Config  # the config with both engines concrete
    stt: EngineChoice
    tts: EngineChoice

    def summary(self) -> str:
        return summary((self.stt, self.tts))

    @property
    def fell_back(self) -> bool:
        return self.stt.fell_back or self.tts.fell_back


def runtime_probe(module: str, distribution: str, hint: str) -> Probe:
    """Does ``module`` import here (native libraries included)?"""
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a native library that fails to load: one plain line
        return Probe(False, f"{module} does not import ({exc.__class__.__name__}: {exc}): {hint}")
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return Probe(True, f"{distribution} {version} imports")


def _prepared_probe(spec: ModelSpec, models_dir: Path) -> Probe:
    st = model_status(spec, models_dir, verify=True)
    if st.ok:
        return Probe(True, f"{spec.name} prepared, sha256 verified")
    return Probe(False, f"{spec.name}: {st.detail}")


def whisper_model_probe(cfg: Config) -> Probe:
    """The prepared model (manifest and sha256) or the configured file, and either way the ggml check the
    worker pool makes before loading it (so that ``auto`` never picks a model the pool would refuse)."""
    s = cfg.stt.whisper
    prepared = prepared_whisper_model(cfg.models.dir)
    if s.model_path is None or Path(s.model_path) == prepared:
        found = _prepared_probe(WHISPER_TINY_EN, cfg.models.dir)
        if not found.ok:
            return found
        path, what = prepared, found.detail
    else:
        path, what = Path(s.model_path), f"whisper model {s.model_path}"
    try:
        validate_whisper_model(path, s.validation)
    except ModelFileError as exc:
        return Probe(False, f"{'stt.whisper.model_path' if path != prepared else WHISPER_TINY_EN.name}: {exc}")
    return Probe(True, f"{what}, ggml {s.validation} check passed")


def piper_model_probe(cfg: Config) -> Probe:
    path = cfg.tts.piper.model_path
    if path is None or Path(path) == prepared_piper_voice(cfg.models.dir):
        return _prepared_probe(PIPER_JOE, cfg.models.dir)
    for p in (Path(path), Path(f"{path}.json")):
        if not p.is_file():
            return Probe(False, f"tts.piper.model_path: {p} is missing")
    return Probe(True, f"Piper voice {path} present")


def resolve_engines(cfg: Config, *, announce: bool = True) -> ResolvedEngines:
    """The engines ``cfg`` stands for on this host, and ``cfg`` with them in place of ``auto``.

    ``announce``: one log line naming each engine and why (a WARNING when ``auto`` fell back)."""
    stt = choose_stt(cfg.stt.engine, model=lambda: whisper_model_probe(cfg),
                     runtime=lambda: runtime_probe(WHISPER_RUNTIME, WHISPER_DISTRIBUTION, INSTALL_WHISPER_HINT))
    tts = choose_tts(cfg.tts.engine, model=lambda: piper_model_probe(cfg),
                     runtime=lambda: runtime_probe(PIPER_RUNTIME, PIPER_RUNTIME,
                                                   "reinstall ari-agent (onnxruntime is a base dependency)"))
    resolved = cfg.model_copy(update={"stt": cfg.stt.model_copy(update={"engine": stt.engine}),
                                      "tts": cfg.tts.model_copy(update={"engine": tts.engine})})
    result = ResolvedEngines(resolved, stt, tts)
    if announce:
        log.log(logging.WARNING if result.fell_back else logging.INFO, "%s", result.summary())
    return result
