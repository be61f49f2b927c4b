"""``ari-agent transcribe``: one JSON line per file, in order, with the real embedded recogniser."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from ari_agent.cli import main

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite (Debian package) synthesises the caller")


@pytest.fixture(autouse=True)
def embedded_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded recogniser unless a test says otherwise (stt.engine auto would pick whisper where prepared)."""
    monkeypatch.setenv("ARI_AGENT__STT__ENGINE", "pocketsphinx")


def say(tmp_path: Path, name: str, text: str, voice: str = "rms") -> Path:
    out = tmp_path / f"{name}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True, timeout=30)
    return out


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_one_line_per_file_in_order_and_bad_files_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = say(tmp_path, "order", "hi, where is my order please")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    stereo = tmp_path / "stereo16k.wav"
    with wave.open(str(stereo), "wb") as w:  # 16 kHz stereo silence: resampled and mixed down, not refused
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(16000 * 2, dtype="<i2").tobytes())
    rc = main(["transcribe", str(good), str(junk), str(tmp_path / "missing.wav"), str(stereo)])
    out = lines(capsys)
    assert rc == 1
    assert [o["file"] for o in out] == [str(good), str(junk), str(tmp_path / "missing.wav"), str(stereo)]
    assert out[0]["error"] is None and "order" in str(out[0]["text"]) and out[0]["engine"] == "pocketsphinx"
    assert isinstance(out[0]["audio_ms"], int) and out[0]["audio_ms"] > 1000
    assert "not a readable WAV" in str(out[1]["error"]) and "cannot read" in str(out[2]["error"])
    assert out[3]["error"] is None and out[3]["audio_ms"] == 1000


def test_the_turn_kind_biases_the_recogniser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yes = say(tmp_path, "yes", "yes please")
    assert main(["transcribe", "--expect", "yes_no", str(yes)]) == 0
    assert lines(capsys)[0]["text"] == "yes please"
    assert main(["transcribe", "--expect", "digits", "--digits", "x-y", str(yes)]) == 2  # a plain one-line error
    assert "--digits" in capsys.readouterr().err


def test_auto_falls_back_to_the_embedded_recogniser_where_no_model_is_prepared(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARI_AGENT__STT__ENGINE")  # the default: auto
    monkeypatch.setenv("ARI_AGENT__MODELS__DIR", str(tmp_path / "no-models"))
    assert main(["transcribe", str(say(tmp_path, "order", "where is my order please"))]) == 0
    [out] = lines(capsys)
    assert out["engine"] == "pocketsphinx" and "order" in str(out["text"])


def test_the_both_engine_transcribes_as_on_a_call(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """stt.engine both (what auto picks where whisper is prepared): whisper on the open turn, and on a digits
    turn the grammar beside it (before, transcribe refused both: "unknown speech engine")."""
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")
    from ari_agent.config import DEFAULT_MODELS_DIR
    from ari_agent.ops.models import WHISPER_TINY_EN, model_status

    if not model_status(WHISPER_TINY_EN, DEFAULT_MODELS_DIR, verify=False).ok:
        pytest.fail(f"whisper tiny.en is not prepared in {DEFAULT_MODELS_DIR}: scripts/install.sh prepares it")
    monkeypatch.setenv("ARI_AGENT__STT__ENGINE", "both")
    open_turn = say(tmp_path, "order", "where is my order please")
    digits = say(tmp_path, "digits", "four five six seven")
    assert main(["transcribe", str(open_turn)]) == 0
    assert main(["transcribe", "--expect", "digits", "--digits", "4-4", str(digits)]) == 0
    heard_open, heard_digits = lines(capsys)
    assert str(heard_open["engine"]).startswith("whisper") and "order" in str(heard_open["text"]).lower()
    assert str(heard_digits["engine"]).startswith("both") and heard_digits["error"] is None, heard_digits


def test_recordings_checked_against_a_code_on_record(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``--against``: each recording also checked against a postcode as the one on record."""
    pytest.importorskip("pywhispercpp", reason="the whisper extra (scripts/test.sh installs it)")
    from ari_agent.config import DEFAULT_MODELS_DIR
    from ari_agent.ops.models import WHISPER_TINY_EN, model_status

    if not model_status(WHISPER_TINY_EN, DEFAULT_MODELS_DIR, verify=False).ok:
        pytest.fail(f"whisper tiny.en is not prepared in {DEFAULT_MODELS_DIR}: scripts/install.sh prepares it")
    monkeypatch.setenv("ARI_AGENT__STT__WHISPER__TIMEOUT_S", "120")  # a busy machine is slow, not wrong
    spelled = say(tmp_path, "postcode", "E H one, one Y Z", voice="awb")
    assert main(["transcribe", "--expect", "letters", "--against", "EH1 1YZ", str(spelled)]) == 2  # pocketsphinx
    assert "--against needs the whisper or both engine" in capsys.readouterr().err
    monkeypatch.setenv("ARI_AGENT__STT__ENGINE", "both")
    assert main(["transcribe", "--against", "not a code", str(spelled)]) == 2
    assert "not a UK postcode" in capsys.readouterr().err
    assert main(["transcribe", "--expect", "letters", "--against", "eh1 1yz", str(spelled)]) == 0
    assert main(["transcribe", "--expect", "letters", "--against", "M1 1AE", str(spelled)]) == 0
    own, other = lines(capsys)
    print(own, other)
    for line in (own, other):
        check = line["record_check"]
        assert isinstance(check, dict) and check["error"] is None and isinstance(check["check_ms"], float)
    assert own["record_check"]["matches"] is True  # type: ignore[index]
    assert other["record_check"]["matches"] is False  # type: ignore[index]
