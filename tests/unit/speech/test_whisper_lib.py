"""whisper.cpp's C API through ctypes (speech/whisper_lib.py): the struct layout against the library's own
defaults, a decode on the tests' generated model that writes only the tokens a filter allows, and the real
tiny.en model decoding spelled postcodes constrained to postcodes, in the worker process as a call runs it
(a valid postcode each time; whether it is the one said is the benchmark's question: ``bench stt``)."""

from __future__ import annotations

import ctypes
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from ari_agent.config import load_config
from ari_agent.devtools.ggml_tiny import write_tiny_whisper_model
from ari_agent.ops.models import prepared_whisper_model
from ari_agent.speech import whisper_lib
from ari_agent.speech.recognizer import SttError
from ari_agent.speech.whisper_lib import WhisperLib, check_layout
from ari_agent.uk_postcodes import is_postcode

pytest.importorskip("pywhispercpp")  # whisper_lib binds pywhispercpp's own libwhisper

SPEECHLIKE = (np.random.default_rng(0).normal(0, 0.1, 32000)).astype(np.float32)  # 2 s at 16 kHz


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_whisper_model(tmp_path_factory.mktemp("whisper-lib") / "ggml-tiny-random.bin")


def test_the_struct_layout_matches_the_librarys_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = ctypes.CDLL(str(whisper_lib.library_path()))
    whisper_lib._bind(lib)
    check_layout(lib)
    # a build whose struct differs reads some default back wrong: refused with a clear error
    monkeypatch.setitem(whisper_lib.EXPECTED_DEFAULTS, "entropy_thold", 2.5)
    with pytest.raises(SttError, match="entropy_thold"):
        check_layout(lib)


def test_a_decode_writes_only_the_tokens_the_filter_allows(tiny_model: Path) -> None:
    lib = WhisperLib(tiny_model, threads=1)
    try:
        texts = lib.token_texts()
        assert len(texts) == lib.n_vocab == 51864 and lib.eot == 50256
        allowed_ids = [17, 18, 19]  # three ordinary tokens of the generated vocabulary
        seen: list[list[int]] = []

        def allowed(ids: list[int]) -> np.ndarray:
            seen.append(list(ids))
            mask = np.zeros(lib.n_vocab, dtype=bool)
            mask[allowed_ids] = True
            mask[lib.eot] = len(ids) >= 3
            return mask

        got = lib.decode(SPEECHLIKE, allowed, audio_ctx=256, max_tokens=6)
        assert seen and seen[0] == []  # called from the first step, with the tokens so far
        assert got.tokens and set(got.tokens) <= set(allowed_ids), got  # random weights, yet only these
        assert len(got.tokens) >= 3  # the end of text was refused before the third token
        assert got.text == "".join(texts[t] or "" for t in got.tokens).strip()

        # the model's own log-probability of what was written, from the logits before the filter: lower than
        # the filter's renormalised one, and comparable between decodes of the same audio
        assert got.score < 0.0 and got.score <= got.logprob * (len(got.tokens) + 1)
        assert got.weakest == 0.0  # no rivals asked for

        def rivals(ids: list[int]) -> np.ndarray:
            mask = np.zeros(lib.n_vocab, dtype=bool)
            mask[allowed_ids] = True
            return mask

        again = lib.decode(SPEECHLIKE, allowed, audio_ctx=256, max_tokens=6, rivals=rivals)
        assert again.tokens == got.tokens and again.score == pytest.approx(got.score)
        assert again.weakest >= 0.0  # greedy: each written token was the best of the three where it was written
        forced = [allowed_ids[0]] * 3

        def only_first(ids: list[int]) -> np.ndarray:
            mask = np.zeros(lib.n_vocab, dtype=bool)
            if len(ids) < 3:
                mask[forced[len(ids)]] = True
            else:
                mask[lib.eot] = True
            return mask

        pinned = lib.decode(SPEECHLIKE, only_first, audio_ctx=256, max_tokens=6, rivals=rivals)
        assert pinned.tokens == forced and math.isfinite(pinned.score) and pinned.score < 0.0
        if again.tokens[0] != forced[0]:  # the first step: greedy preferred another rival to the one forced
            assert pinned.weakest < 0.0

        def broken(ids: list[int]) -> np.ndarray:
            raise ValueError("a bug in the filter")

        with pytest.raises(SttError, match="a bug in the filter"):  # raised here, never into whisper.cpp
            lib.decode(SPEECHLIKE, broken, audio_ctx=256, max_tokens=4)
    finally:
        lib.close()


def real_model() -> Path:
    path = prepared_whisper_model(load_config(None, env={}).models.dir)
    if not path.is_file():
        pytest.fail(f"no prepared whisper model at {path}: run `ari-agent models prepare` (scripts/test.sh does)")
    if shutil.which("flite") is None:
        pytest.fail("flite is not installed (scripts/install.sh installs it)")
    return path


def test_the_real_model_decodes_spelled_postcodes_to_postcodes_in_the_worker(tmp_path: Path) -> None:
    from ari_agent.conversation.slots.letters import parse_postcode
    from ari_agent.devtools.phone_set import line
    from ari_agent.devtools.voices import synthesize_caller
    from ari_agent.media.pcm import wav_to_line_rate
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

    pool = WhisperWorkerPool(real_model(), workers=1, threads=2, timeout_s=60).start()
    try:
        pool.warm("uk_postcode")  # the worker's second context, loaded at start-up rather than on a turn
        assert pool.stats.errors == 0
        free_values = []
        for said, voice in (("S W one A, one A A", "flite:awb"), ("my postcode is E C one A, one B B", "flite:slt"),
                            ("S W one A, one A A", "flite:kal16")):
            pcm = line(wav_to_line_rate(synthesize_caller(said, voice, tmp_path).read_bytes()), "clean", 0.0, 1)
            free = pool.transcribe(pcm)
            got = pool.transcribe(pcm, constraint="uk_postcode")
            assert got.ok and got.engine == "whisper-constrained", got
            code = parse_postcode(got.text, "uk")
            print(f"{voice} {said!r}: free {free.text!r}, constrained {got.text!r} ({got.confidence:.2f})")
            assert code is not None and is_postcode(code) and got.text == f"{code[:-3]} {code[-3:]}"
            assert 0.0 < got.confidence <= 1.0
            free_values.append(parse_postcode(free.text, "uk"))
        # kal16's spelling: whisper's free transcript ("S-tubel, he won a...") holds no postcode at all,
        # the constrained decode still gives one to read back (the phone set: 22 -> 27 of 80 right)
        assert free_values[2] is None
        unknown = pool.transcribe(np.zeros(8000, dtype=np.int16), constraint="bogus")
        assert unknown.error is not None and "unknown constraint" in unknown.error
        assert pool.transcribe(pcm).ok  # the worker goes on serving
    finally:
        pool.close()


def test_the_real_model_checks_a_spelled_postcode_against_the_record(tmp_path: Path) -> None:
    from ari_agent.devtools.phone_set import line
    from ari_agent.devtools.voices import synthesize_caller
    from ari_agent.media.pcm import wav_to_line_rate
    from ari_agent.speech.code_check import matches
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

    pool = WhisperWorkerPool(real_model(), workers=1, threads=2, timeout_s=60).start()
    try:
        pcm = line(wav_to_line_rate(synthesize_caller("S W one A, one A A", "flite:slt", tmp_path).read_bytes()),
                   "clean", 0.0, 1)
        genuine = pool.check_code(pcm, "SW1A 1AA")
        other = pool.check_code(pcm, "M1 1AE")
        print(f"genuine {genuine}\nother {other}")
        assert genuine.error is None and genuine.record == "SW1A1AA" and math.isfinite(genuine.record_score)
        assert genuine.heard is not None and is_postcode(genuine.heard)  # the free constrained decode's own code
        assert genuine.record_score > other.record_score + 20.0  # another code explains the audio far worse
        assert matches(genuine) and not matches(other)
        quiet = pool.check_code(np.zeros(8000, dtype=np.int16), "SW1A1AA")
        assert quiet.error is None and not matches(quiet)  # a second of silence says no postcode
        bogus = pool.check_code(pcm, "SW1A1AA", constraint="bogus")
        assert bogus.error is not None and "unknown constraint" in bogus.error and not matches(bogus)
        assert pool.transcribe(pcm).ok  # the worker goes on serving
    finally:
        pool.close()
