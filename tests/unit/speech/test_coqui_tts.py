"""CoquiTts: validation and worker failure handling (main venv, no torch), plus one end-to-end test.

Failure tests use stand-in "interpreters": small executable scripts that speak the worker protocol
and then crash, hang or misbehave. The end-to-end test builds a tiny randomly initialised VITS with
the Coqui venv's interpreter named by ARI_AGENT_COQUI_PYTHON and synthesises through CoquiTts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ari_agent.speech.coqui_tts import CoquiTts, _worker_program
from ari_agent.speech.tts import PromptCache, TtsError

COQUI_PYTHON = os.environ.get("ARI_AGENT_COQUI_PYTHON")


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model.pth"
    model.write_bytes(b"not really a checkpoint")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "vits", "audio": {"sample_rate": 22050}}))
    return model, config


def fake_python(tmp_path: Path, body: str, name: str = "fake-python") -> str:
    """An executable that stands in for the worker's interpreter: it gets the same argv (the last
    argument is the worker's JSON arguments, with the socket's fd) and runs ``body``."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""\
        import json, os, signal, sys, time
        from multiprocessing.connection import Connection
        args = json.loads(sys.argv[-1])
        conn = Connection(args["fd"])
        def ready(rate=16000):
            conn.send(("ready", {"pid": os.getpid(), "load_ms": 1.0, "rate": rate}))
        def answer(rate=16000, n=1600):
            _, req_id, text = conn.recv()
            conn.send(("result", req_id, (np_tone(n)).tobytes(), rate, 1.0))
        def np_tone(n):
            import numpy as np
            return (np.sin(np.arange(n) / 5.0) * 10000).astype("<i2")
        """) + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


# ------------------------------------------------------------------ validation, before any worker starts


def test_missing_checkpoint(files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="model checkpoint not found"):
        CoquiTts(tmp_path / "nope.pth", files[1])


def test_model_names_are_refused(files: tuple[Path, Path]) -> None:
    with pytest.raises(TtsError, match=r"looks like a Coqui model name.*refused"):
        CoquiTts("tts_models/en/ljspeech/vits", files[1])


def test_missing_config(files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="config not found"):
        CoquiTts(files[0], tmp_path / "nope.json")


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object, not list"),
    ('{"audio": {}}', 'no "model" entry'),
    ("", "is empty"),
])
def test_bad_config(files: tuple[Path, Path], content: str, match: str) -> None:
    files[1].write_text(content)
    with pytest.raises(TtsError, match=match):
        CoquiTts(files[0], files[1])


def test_checkpoint_must_be_a_non_empty_file(files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="not a regular file"):
        CoquiTts(tmp_path, files[1])
    files[0].write_bytes(b"")
    with pytest.raises(TtsError, match="is empty"):
        CoquiTts(files[0], files[1])


def test_missing_interpreter(files: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="interpreter for the coqui worker not found"):
        CoquiTts(*files, python=str(tmp_path / "no-python"))


def test_cache_key_follows_the_model_content(files: tuple[Path, Path]) -> None:
    a = CoquiTts(*files).cache_key
    assert a == CoquiTts(*files).cache_key and a.startswith("coqui:vits:") and a.endswith(":8000")
    files[0].write_bytes(b"other weights")
    b = CoquiTts(*files).cache_key
    assert b != a
    assert CoquiTts(*files, speaker="p225").cache_key != b


def test_module_imports_without_torch_and_worker_program_compiles() -> None:
    code = ("import sys, ari_agent.speech.coqui_tts as m; compile(m._worker_program(), 'w', 'exec');"
            "assert 'torch' not in sys.modules and 'TTS' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert "import TTS" not in _worker_program().split("def _coqui_worker")[0]


def test_blank_text_needs_no_worker(files: tuple[Path, Path]) -> None:
    tts = CoquiTts(*files, python="/bin/false")
    assert tts.synthesize("  ").size == 0 and tts.worker_pid is None


# ------------------------------------------------------------------ worker failures become TtsError, never a hang


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed in this venv")
def test_real_worker_without_coqui_reports_the_import_error(files: tuple[Path, Path]) -> None:
    tts = CoquiTts(*files)  # this interpreter: no torch, no TTS
    with pytest.raises(TtsError, match=r"could not load .*ModuleNotFoundError: No module named 'torch'"):
        tts.synthesize("hello")
    assert tts.worker_pid is None


def test_worker_that_answers_is_resampled_to_8k(files: tuple[Path, Path], tmp_path: Path) -> None:
    py = fake_python(tmp_path, "ready()\nwhile True:\n    answer()\n")
    with CoquiTts(*files, python=py) as tts:
        assert tts.sample_rate == 16000
        pcm = tts.synthesize("hello")
        assert pcm.dtype == np.int16 and pcm.size == 800  # 1600 samples at 16 kHz -> 8 kHz
        assert np.abs(pcm).max() > 5000
        cache = PromptCache(tts, tmp_path / "cache")
        assert np.array_equal(cache.get("hello"), pcm) and cache.path("hello").exists()
    assert tts.worker_pid is None


def test_crash_during_synthesis_then_restart(files: tuple[Path, Path], tmp_path: Path) -> None:
    marker = tmp_path / "crashed-once"
    py = fake_python(tmp_path, f"""\
        ready()
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            conn.recv()
            print("native code went wrong", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        while True:
            answer()
        """)
    tts = CoquiTts(*files, python=py, timeout_s=20)
    t0 = time.monotonic()
    with pytest.raises(TtsError, match=r"(?s)crashed \(killed by SIGSEGV\) during synthesis.*native code went wrong"):
        tts.synthesize("hello")
    assert time.monotonic() - t0 < 10
    assert tts.worker_pid is None and tts.restarts == 1
    assert tts.synthesize("hello").size == 800  # a fresh worker on the next call
    tts.close()


def test_hung_worker_times_out_and_is_replaced(files: tuple[Path, Path], tmp_path: Path) -> None:
    marker = tmp_path / "hung-once"
    py = fake_python(tmp_path, f"""\
        ready()
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            conn.recv()
            time.sleep(3600)
        while True:
            answer()
        """)
    tts = CoquiTts(*files, python=py, timeout_s=1.0)
    tts.start()
    first = tts.worker_pid
    t0 = time.monotonic()
    with pytest.raises(TtsError, match=r"timed out after 1.0 s \(killed\)"):
        tts.synthesize("hello")
    assert time.monotonic() - t0 < 5
    assert first is not None
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    # The replacement is judged on its answer, not on the tight 1 s budget: on a loaded CI machine the
    # fresh interpreter's first answer can itself take over a second.
    tts.timeout_s = 30.0
    assert tts.synthesize("hello").size == 800 and tts.worker_pid != first
    tts.close()


def test_worker_that_never_gets_ready(files: tuple[Path, Path], tmp_path: Path) -> None:
    py = fake_python(tmp_path, "time.sleep(3600)\n")
    tts = CoquiTts(*files, python=py, start_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(TtsError, match=r"no answer within 1 s \(killed\)"):
        tts.synthesize("hello")
    assert time.monotonic() - t0 < 5


def test_worker_that_exits_at_start(files: tuple[Path, Path], tmp_path: Path) -> None:
    py = fake_python(tmp_path, "print('cannot even start', file=sys.stderr)\nsys.exit(3)\n")
    with pytest.raises(TtsError, match=r"(?s)worker exited with status 3.*cannot even start"):
        CoquiTts(*files, python=py).start()


def test_python_level_error_keeps_the_worker(files: tuple[Path, Path], tmp_path: Path) -> None:
    py = fake_python(tmp_path, """\
        ready()
        _, req_id, _ = conn.recv()
        conn.send(("error", req_id, "ValueError: bad speaker"))
        while True:
            answer()
        """)
    with CoquiTts(*files, python=py) as tts:
        pid = tts.worker_pid
        with pytest.raises(TtsError, match="coqui synthesis failed: ValueError: bad speaker"):
            tts.synthesize("hello")
        assert tts.synthesize("hello").size == 800 and tts.worker_pid == pid


def test_worker_exits_when_the_parent_closes(files: tuple[Path, Path], tmp_path: Path) -> None:
    py = fake_python(tmp_path, "ready()\nwhile True:\n    answer()\n")
    tts = CoquiTts(*files, python=py).start()
    pid = tts.worker_pid
    assert pid is not None
    tts.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ------------------------------------------------------------------ end to end: real Coqui, tiny random VITS

BUILD_TINY_VITS = """\
import os, sys, torch
from TTS.tts.configs.vits_config import VitsConfig
from TTS.tts.models.vits import Vits, VitsArgs
out = sys.argv[1]
torch.manual_seed(0)
args = VitsArgs(hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_heads_text_encoder=2,
                num_layers_text_encoder=1, num_layers_posterior_encoder=1, num_layers_flow=1,
                upsample_initial_channel_decoder=32, resblock_kernel_sizes_decoder=[3],
                resblock_dilation_sizes_decoder=[[1, 3, 5]], init_discriminator=False)
config = VitsConfig(model_args=args, use_phonemes=False, text_cleaner="basic_cleaners")
model = Vits.init_from_config(config)
torch.save({"model": model.state_dict()}, os.path.join(out, "model.pth"))
config.save_json(os.path.join(out, "config.json"))
"""


@pytest.mark.skipif(COQUI_PYTHON is None,
                    reason="set ARI_AGENT_COQUI_PYTHON to a python with coqui-tts + CPU torch (see "
                           "ari_agent/speech/COQUI.md) to run the end-to-end Coqui test")
def test_end_to_end_tiny_random_vits(tmp_path: Path) -> None:
    assert COQUI_PYTHON is not None
    subprocess.run([COQUI_PYTHON, "-I", "-c", BUILD_TINY_VITS, str(tmp_path)], check=True, timeout=240,
                   capture_output=True)
    model, config = tmp_path / "model.pth", tmp_path / "config.json"
    tts = CoquiTts(model, config, python=COQUI_PYTHON, threads=2, timeout_s=60)
    try:
        t0 = time.perf_counter()
        tts.start()
        load_s = time.perf_counter() - t0
        assert tts.sample_rate == 22050
        text = "Hello, thank you for calling. How can I help you today?"
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            pcm = tts.synthesize(text)
            timings.append(time.perf_counter() - t0)
            assert pcm.dtype == np.int16 and pcm.size > 8000 * 0.5  # random weights: length only roughly known
            assert np.abs(pcm.astype(np.int32)).max() > 0
        print(f"\ncoqui tiny VITS: worker start+load {load_s:.2f} s; synth {pcm.size / 8000:.2f} s audio in "
              + ", ".join(f"{t * 1000:.0f}" for t in timings) + " ms")
        assert tts.cache_key.startswith("coqui:vits:")
    finally:
        tts.close()
