from __future__ import annotations

import asyncio
import importlib
import os
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from ari_agent.config import SttConfig, WhisperSettings
from ari_agent.devtools.ggml_tiny import TINY_HPARAMS, write_tiny_whisper_model
from ari_agent.seam import Expectation
from ari_agent.speech.ggml_format import MAGIC_BYTES, ModelFileError, validate_whisper_model
from ari_agent.speech.recognizer import SpeechRecognizer, SttError
from ari_agent.speech.stt import create_recognizer
from ari_agent.speech.whisper_stt import WhisperRecognizer, WhisperWorkerPool, create_whisper_pool, prompt_for

# By its full dotted name: the spawned worker process imports the target function's module again.
fake_workers = importlib.import_module("tests.unit.speech.fake_workers")

pytest.importorskip("pywhispercpp")

SPEECHLIKE = (np.random.default_rng(0).normal(0, 3000, 16000)).astype(np.int16)  # 2 s at 8 kHz


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_whisper_model(tmp_path_factory.mktemp("whisper") / "ggml-tiny-random.bin")


def truncated(model: Path, tmp_path: Path, size: int) -> Path:
    out = tmp_path / "truncated.bin"
    out.write_bytes(model.read_bytes()[:size])
    return out


def test_the_generated_model_is_a_valid_ggml_whisper_file(tiny_model: Path) -> None:
    info = validate_whisper_model(tiny_model)
    assert info.hparams == TINY_HPARAMS and info.checked == "full"
    assert info.n_tensors == 5 + 15 + 2 + 2 + 24 + 2
    assert tiny_model.read_bytes()[:4] == MAGIC_BYTES == b"lmgg"


def test_real_worker_loads_the_tiny_model_and_transcribes(tiny_model: Path) -> None:
    pool = create_whisper_pool(WhisperSettings(model_path=tiny_model, threads=2, timeout_s=30))
    try:
        rec = create_recognizer(SttConfig(engine="whisper"), whisper_pool=pool)
        assert isinstance(rec, WhisperRecognizer) and isinstance(rec, SpeechRecognizer)
        rec.start(Expectation(kind="open", phrases=("where is my order",)))
        for i in range(0, SPEECHLIKE.size, 160):
            rec.feed(SPEECHLIKE[i : i + 160])
        assert rec.partial() == ""
        got = rec.finish()
        assert got.ok, got.error
        assert got.engine == "whisper" and got.audio_ms == 2000 and got.latency_ms > 0
        assert isinstance(got.text, str)  # random weights: garbage text, but whisper.cpp ran end to end
        assert 0.0 <= got.confidence <= 1.0
        pid = pool.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)  # dies while idle: the next request gets a fresh worker
        time.sleep(0.1)
        again = pool.transcribe(SPEECHLIKE)
        assert again.ok, again.error
        assert pool.worker_pids() != [pid] and pool.stats.restarts == 1
    finally:
        pool.close()


def test_a_truncated_model_that_passes_the_magic_check_crashes_a_worker_not_the_service(
        tiny_model: Path, tmp_path: Path) -> None:
    bad = truncated(tiny_model, tmp_path, 3_000_000)
    with pytest.raises(ModelFileError, match=r"truncated|cut short|at least"):
        validate_whisper_model(bad, "header")
    with WhisperWorkerPool(bad, validate="magic", timeout_s=20, max_restarts=0) as pool:
        t0 = time.monotonic()
        got = pool.transcribe(SPEECHLIKE)
        assert time.monotonic() - t0 < 10
        assert not got.ok and got.text == "" and "SIGSEGV" in (got.error or "")
        assert pool.stats.crashes == 1


@pytest.mark.parametrize("damage", ["bad_magic", "gguf", "empty", "header_only", "cut_in_tensors", "missing_tensor",
                                    "bad_hparams"])
def test_corrupt_files_are_refused_before_loading(tiny_model: Path, tmp_path: Path, damage: str) -> None:
    data = tiny_model.read_bytes()
    path = tmp_path / f"{damage}.bin"
    if damage == "bad_magic":
        path.write_bytes(b"RIFF" + data[4:])
    elif damage == "gguf":
        path.write_bytes(b"GGUF" + data[4:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "header_only":
        path.write_bytes(data[:48])
    elif damage == "cut_in_tensors":
        path.write_bytes(data[: len(data) - 100])
    elif damage == "missing_tensor":
        last = data.rfind(b"decoder.ln.bias") - 4 * 4  # n_dims, name length, type, ne[0]
        path.write_bytes(data[:last])
    else:
        path.write_bytes(data[:4] + struct.pack("<i", -5) + data[8:])
    with pytest.raises(ModelFileError):
        validate_whisper_model(path)
    with pytest.raises(SttError):  # the pool refuses before any worker starts
        WhisperWorkerPool(path)


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read"):
        WhisperWorkerPool(tmp_path / "nope.bin")
    with pytest.raises(SttError, match="model_path"):
        create_whisper_pool(WhisperSettings())


def test_a_hanging_worker_times_out_and_is_replaced(tiny_model: Path) -> None:
    with WhisperWorkerPool(tiny_model, timeout_s=0.5, target=fake_workers.hangs_on_request) as pool:
        first = pool.worker_pids()
        t0 = time.monotonic()
        got = pool.transcribe(SPEECHLIKE)
        assert 0.5 <= time.monotonic() - t0 < 3.0
        assert not got.ok and "timed out" in (got.error or "")
        deadline = time.monotonic() + 10
        while pool.worker_pids() in ([], first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.worker_pids() and pool.worker_pids() != first
        assert pool.stats.timeouts == 1


def test_a_worker_crash_mid_utterance_is_an_error_result_and_service_continues(tiny_model: Path) -> None:
    with WhisperWorkerPool(tiny_model, timeout_s=10, target=fake_workers.answers_then_crashes) as pool:
        ok = pool.transcribe(SPEECHLIKE)
        assert ok.ok and ok.text == "hello" and ok.confidence == pytest.approx(0.9)
        crashed = pool.transcribe(SPEECHLIKE)
        assert not crashed.ok and "crashed" in (crashed.error or "")
        again = pool.transcribe(SPEECHLIKE, timeout_s=10)  # waits for the replacement worker
        assert again.ok and again.text == "hello"


async def test_async_transcribe_and_a_pool_that_gives_up(tiny_model: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    await asyncio.to_thread(model.write_bytes, tiny_model.read_bytes())  # noqa: ASYNC240
    with WhisperWorkerPool(model, timeout_s=10, max_restarts=1, target=fake_workers.loads_once_then_crashes) as pool:
        got = await pool.transcribe_async(SPEECHLIKE)
        assert not got.ok and "crashed" in (got.error or "")
        deadline = time.monotonic() + 10
        while pool.broken is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "cannot start again" in (pool.broken or "")
        t0 = time.monotonic()
        got = await pool.transcribe_async(SPEECHLIKE)
        assert "broken" in (got.error or "") and time.monotonic() - t0 < 3.0  # at once, not the 15 s timeout


def test_a_worker_that_cannot_load_fails_the_start(tiny_model: Path) -> None:
    pool = WhisperWorkerPool(tiny_model, target=fake_workers.never_loads)
    with pytest.raises(SttError, match="no model today"):
        pool.start()


def test_prompts_follow_the_expectation() -> None:
    assert prompt_for(Expectation(kind="yes_no")) == "Yes. No."
    assert prompt_for(Expectation(kind="open", phrases=("where is my order", "pay my bill"))) == \
        "where is my order. pay my bill."
    # the map's descriptions, when the turn carries them, instead of the examples
    assert prompt_for(Expectation(kind="open", phrases=("where is my order",), context="Order status.")) == \
        "Order status."
    assert prompt_for(Expectation(kind="free_text")) is None
    # a date or time turn: the question asked, then the answer's form
    assert prompt_for(Expectation(kind="time", context="What time suits you?")) == \
        "What time suits you? At 7:50 am. Or 4:05 pm."
    assert prompt_for(Expectation(kind="date")) == "On Saturday the 8th. The 27th of September 1963."


def test_the_encoder_window_is_sized_to_the_utterance() -> None:
    from ari_agent.speech.whisper_stt import audio_context

    assert audio_context(2.0, 256, 1500) == 256  # short turns: the floor
    assert audio_context(8.0, 256, 1500) == 432  # 50 a second + 32: never shorter than the audio
    assert audio_context(40.0, 256, 1500) == 1500  # never past the model's window
    assert audio_context(2.0, 0, 1500) == 0  # floor 0: the full window


def test_the_token_cap_grows_with_the_audio_and_stops_a_loop_early() -> None:
    from ari_agent.speech.whisper_stt import token_cap

    # every real turn measured fits (about 3-4 tokens a second; eleven digits 12 tokens in 3.5 s) ...
    assert token_cap(3.5) >= 2 * 12 and token_cap(2.0) >= 2 * 8
    # ... and a repetition loop on a 2 s turn stops at 22 tokens (~15 ms each), not 32
    assert token_cap(2.0) == 22 and token_cap(4.0) == 34
    assert token_cap(8.0) > token_cap(4.0) > token_cap(2.0)


def test_the_pool_sends_the_cap_and_window_with_each_decode(tiny_model: Path) -> None:
    from ari_agent.speech.whisper_stt import token_cap

    with WhisperWorkerPool(tiny_model, timeout_s=10, target=fake_workers.echoes_params) as pool:
        for seconds in (2, 5):
            got = pool.transcribe(np.zeros(8000 * seconds, dtype=np.int16))
            assert got.ok, got.error
            assert f"max_tokens={token_cap(seconds)}" in got.text.split(), got.text


def test_a_digits_turn_caps_the_decode_by_the_digits_it_expects(tiny_model: Path) -> None:
    from ari_agent.speech.whisper_stt import expected_tokens, token_cap

    four = Expectation(kind="digits", min_digits=4, max_digits=4)
    assert expected_tokens(four) == 16 and token_cap(2.4, expected_tokens(four)) == 16
    assert token_cap(1.0, 16) == 16 and token_cap(0.5, 16) == 13  # never above the audio's own cap
    assert expected_tokens(Expectation(kind="open")) is None and expected_tokens(Expectation(kind="digits")) is None
    with WhisperWorkerPool(tiny_model, timeout_s=10, target=fake_workers.echoes_params) as pool:
        rec = WhisperRecognizer(pool)
        rec.start(four)
        assert "max_tokens=16" in rec.decode(np.zeros(8000 * 3, dtype=np.int16)).text.split()
        rec.start(Expectation(kind="open"))
        assert f"max_tokens={token_cap(3)}" in rec.decode(np.zeros(8000 * 3, dtype=np.int16)).text.split()
