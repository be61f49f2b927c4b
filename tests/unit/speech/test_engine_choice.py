"""``auto`` for stt.engine / tts.engine: the pure decision (the probes are plain functions here)."""

from __future__ import annotations

import pytest

from ari_agent.speech.engine_choice import (
    AUTO,
    Probe,
    ProbeFn,
    choose_stt,
    choose_tts,
    summary,
    unresolved,
)

OK_RT = Probe(True, "pywhispercpp 1.5.1 imports")
OK_MODEL = Probe(True, "whisper-tiny.en prepared, sha256 verified")


def never() -> Probe:
    raise AssertionError("this probe must not run")


def const(p: Probe) -> ProbeFn:
    return lambda: p


def test_auto_with_runtime_and_model_present_picks_the_neural_engines() -> None:
    stt = choose_stt(AUTO, runtime=const(OK_RT), model=const(OK_MODEL))
    assert (stt.engine, stt.auto, stt.fell_back) == ("both", True, False)
    assert stt.reason == "whisper-tiny.en prepared, sha256 verified; pywhispercpp 1.5.1 imports"
    tts = choose_tts(AUTO, runtime=const(Probe(True, "onnxruntime 1.32.0 imports")),
                     model=const(Probe(True, "piper voice prepared")))
    assert tts.engine == "piper" and not tts.fell_back
    assert tts.describe() == "tts.engine auto -> piper (piper voice prepared; onnxruntime 1.32.0 imports)"


def test_auto_with_the_model_missing_falls_back_and_says_why() -> None:
    missing = Probe(False, "whisper-tiny.en: not prepared in /m/whisper-tiny.en: run `ari-agent models prepare`")
    stt = choose_stt(AUTO, runtime=const(OK_RT), model=const(missing))
    assert stt.engine == "pocketsphinx" and stt.fell_back
    assert stt.reason == f"fallback: {missing.detail}"
    tts = choose_tts(AUTO, runtime=const(OK_RT), model=const(Probe(False, "no voice")))
    assert tts.engine == "espeak-ng" and tts.fell_back and tts.describe().startswith("tts.engine auto -> espeak-ng (")


def test_auto_with_the_runtime_missing_falls_back_without_checking_the_model() -> None:
    no_rt = Probe(False, "pywhispercpp.model does not import (ModuleNotFoundError: ...): install the whisper extra")
    stt = choose_stt(AUTO, runtime=const(no_rt), model=never)
    assert stt.engine == "pocketsphinx" and stt.fell_back and "install the whisper extra" in stt.reason
    tts = choose_tts(AUTO, runtime=const(Probe(False, "onnxruntime does not import")), model=never)
    assert tts.engine == "espeak-ng" and "onnxruntime does not import" in tts.reason


@pytest.mark.parametrize("value", ["pocketsphinx", "whisper", "both"])
def test_an_explicit_stt_value_is_kept_and_nothing_is_probed(value: str) -> None:
    c = choose_stt(value, runtime=never, model=never)
    assert (c.engine, c.auto, c.fell_back, c.reason) == (value, False, False, "configured")
    assert c.describe() == f"stt.engine {value} (configured)"


@pytest.mark.parametrize("value", ["espeak-ng", "espeak", "piper"])
def test_an_explicit_tts_value_is_kept_and_nothing_is_probed(value: str) -> None:
    c = choose_tts(value, runtime=never, model=never)
    assert (c.engine, c.fell_back) == (value, False)


def test_an_explicit_embedded_engine_is_not_a_fallback() -> None:
    c = choose_stt("pocketsphinx", runtime=never, model=never)
    assert not c.fell_back  # chosen, not fallen back to


def test_summary_is_one_line_and_unresolved_names_what_is_still_auto() -> None:
    stt = choose_stt(AUTO, runtime=const(OK_RT), model=const(OK_MODEL))
    tts = choose_tts("espeak-ng", runtime=never, model=never)
    line = summary((stt, tts))
    assert line.startswith("speech engines: stt.engine auto -> both (")
    assert line.endswith("; tts.engine espeak-ng (configured)")
    assert "\n" not in line
    assert unresolved("auto", "auto") == ["stt.engine", "tts.engine"]
    assert unresolved("both", "auto") == ["tts.engine"]
    assert unresolved("pocketsphinx", "espeak-ng") == []
