"""The generated phone test set: its size and labels, and the line it is rendered through (G.711, noise, loss)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, time
from pathlib import Path

import numpy as np
import pytest

from ari_agent.conversation.intent_map import IntentMap
from ari_agent.devtools.phone_set import (
    DATA_FILE,
    KINDS,
    PhoneItem,
    PhoneSetError,
    PhoneUtterance,
    Renderer,
    line,
    load_phone_set,
    lost_packets,
)
from ari_agent.media.g711 import ULAW_DECODE_TABLE

SET = load_phone_set()


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def test_at_least_400_utterances_in_five_voices_all_kinds_and_conditions() -> None:
    utts = SET.utterances()
    assert len(utts) >= 400
    assert len({u.voice for u in utts}) >= 5
    assert set(Counter(u.item.kind for u in utts)) == set(KINDS)
    conditions = Counter(u.condition for u in utts)
    assert conditions["clean"] and conditions["noise"] and conditions["noise+loss"]
    assert {u.loss_rate for u in utts if u.condition == "noise+loss"} == {0.01, 0.02, 0.03}
    for item in SET.items:  # each line in two different voices
        assert len({u.voice for u in utts if u.item is item}) == 2


def test_lines_are_not_the_maps_examples_and_labels_are_well_formed(demo_map: IntentMap) -> None:
    examples = {_norm(e) for i in demo_map.intents for e in i.examples}
    intents = {i.name for i in demo_map.intents}
    for item in SET.items:
        assert _norm(item.text) not in examples, item.text
        if item.kind == "open":
            assert item.label in intents
        elif item.kind == "out_of_scope":
            assert item.label is None
        elif item.kind == "digits":
            assert item.label is not None and re.fullmatch(r"[0-9]{4}", item.label)
        elif item.kind == "postcode":  # the demo map's locale.postcode: uk, sent without the space
            assert item.label is not None and re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}", item.label)
        elif item.kind == "yes_no":
            assert item.label in ("yes", "no", "unclear")
        elif item.kind == "date":
            assert item.label is not None and date.fromisoformat(item.label)
        else:
            assert item.label is not None and time.fromisoformat(item.label)


def test_the_held_out_yes_no_set_is_yes_no_only_and_shares_no_line_with_the_phone_set(tmp_path: Path) -> None:
    held = load_phone_set(DATA_FILE.with_name("yes_no_heldout.yaml"))
    assert {i.kind for i in held.items} == {"yes_no"} and len(held.items) >= 50
    assert not {_norm(i.text) for i in held.items} & {_norm(i.text) for i in SET.items}
    assert sum(i.label != "yes" for i in held.items) > len(held.items) / 2  # mostly not a consent
    empty = tmp_path / "empty.yaml"
    empty.write_text('today: "2026-03-04"\nvoices: ["flite:rms"]\n')
    with pytest.raises(PhoneSetError, match="no utterances"):
        load_phone_set(empty)


def test_limit_takes_n_per_kind_spread_over_the_kind() -> None:
    utts = SET.utterances(limit=2)
    assert Counter(u.item.kind for u in utts) == dict.fromkeys(KINDS, 2)
    opens = [u for u in utts if u.item.kind == "open"]
    assert opens[0].item.label != opens[1].item.label  # not the first two lines of one intent


def _speechlike(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(8000 * seconds)) / 8000
    return (3000 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 500, t.size)).astype(np.int16)


def test_the_line_is_g711_deterministic_and_loses_the_packets_it_says() -> None:
    speech = _speechlike()
    a = line(speech, "noise+loss", 0.03, seed=7)
    assert np.array_equal(a, line(speech, "noise+loss", 0.03, seed=7))
    assert not np.array_equal(a, line(speech, "noise+loss", 0.03, seed=8))
    assert set(np.unique(a)) <= set(ULAW_DECODE_TABLE.tolist())  # only µ-law levels survive
    packets = a.size // 160
    assert 0.01 * packets <= lost_packets(a) <= 0.06 * packets
    assert lost_packets(line(speech, "noise", 0.0, seed=7)) == 0
    assert lost_packets(line(speech, "clean", 0.0, seed=7)) == 0


def test_rendering_is_cached_by_content(tmp_path: Path) -> None:
    renderer = Renderer(tmp_path)
    utt = PhoneUtterance(PhoneItem("yes_no", "yes please", "yes"), "flite:rms", "noise", 0.0, seed=3)
    first = renderer.render(utt)
    again = Renderer(tmp_path).render(utt)
    assert renderer.rendered == 1 and np.array_equal(first, again)
    other = PhoneUtterance(utt.item, "flite:slt", "noise", 0.0, seed=3)
    assert other.key != utt.key


def test_a_missing_piper_voice_is_a_clear_error(tmp_path: Path) -> None:
    from ari_agent.devtools.phone_set import PhoneSetError

    utt = PhoneUtterance(PhoneItem("yes_no", "yes", "yes"), "piper:joe", "clean", 0.0, seed=1)
    with pytest.raises(PhoneSetError, match="models prepare"):
        Renderer(tmp_path, piper_model=tmp_path / "absent.onnx").render(utt)


def test_noise_snr_sets_the_noise_that_far_below_the_speech() -> None:
    speech = _speechlike()
    quiet = line(speech, "clean", 0.0, seed=7)
    for snr in (10.0, 30.0):
        noisy = line(speech, "clean", 0.0, seed=7, snr_db=snr)
        lead = noisy[: 250 * 8].astype(np.float64)  # the lead-in before the speech: noise only
        noise_dbfs = 20 * np.log10(np.sqrt(np.mean(lead**2)) / 32768.0)
        assert abs(noise_dbfs - (-20.0 - snr)) < 1.5, (snr, noise_dbfs)
    clean_dbfs = 20 * np.log10(np.sqrt(np.mean(quiet[: 250 * 8].astype(np.float64) ** 2)) / 32768.0)
    assert abs(clean_dbfs - (-60.0)) < 1.5  # no SNR given: the clean line's own floor


@pytest.mark.parametrize("voice", ["flite:rms", "espeak:en-us"])
def test_a_speaking_rate_makes_the_same_words_longer_or_shorter(tmp_path: Path, voice: str) -> None:
    renderer = Renderer(tmp_path)
    normal = renderer.speech("please check the status of my order", voice).size
    slow = renderer.speech("please check the status of my order", voice, rate=0.7).size
    fast = renderer.speech("please check the status of my order", voice, rate=1.5).size
    assert slow > 1.2 * normal and fast < 0.85 * normal, (slow, normal, fast)


def test_a_rate_for_the_piper_caller_voice_is_a_clear_error(tmp_path: Path) -> None:
    from ari_agent.devtools.phone_set import PhoneSetError

    with pytest.raises(PhoneSetError, match="speaking rate"):
        Renderer(tmp_path).speech("yes", "piper:joe", rate=1.2)


def test_the_held_out_voice_suite_shares_no_line_with_the_map_the_phone_set_or_the_other_suites(
        demo_map: IntentMap) -> None:
    from ari_agent.evaluation.scenario import load_suite, resolve_suite_path, shipped_suites

    def lines(path: Path) -> set[str]:
        return {_norm(t.say) for s in load_suite(path).spec.scenarios for t in s.turns if t.say}

    held = lines(resolve_suite_path("voice-heldout"))
    assert len(held) >= 20
    others = {_norm(e) for i in demo_map.intents for e in i.examples} | {_norm(i.text) for i in SET.items}
    for name in ("voice", "voice-phrasings", "voice-smoke"):
        others |= lines(resolve_suite_path(name))
    for path in shipped_suites():
        others |= lines(path)
    # replies any call ends with, and the demo backend's customer C-1001 reading its number and postcode
    generic = {"no thank you", "no", "one zero zero one", "s w one a one a a"}
    assert not (held - generic) & others, (held - generic) & others
