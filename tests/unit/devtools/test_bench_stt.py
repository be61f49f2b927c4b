"""``ari-agent bench stt``: judging transcripts, the "both" rule, and the table's shape on a tiny subset
(pocketsphinx only, real decoding of generated phone audio; no timing assertions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.config import DEFAULT_MODELS_DIR
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.devtools.bench_stt import (
    Judge,
    Reading,
    SttBench,
    combine,
    correct,
    format_table,
    summarise,
    word_errors,
)
from ari_agent.devtools.phone_set import KINDS, PhoneItem, PhoneUtterance, Renderer, load_phone_set
from ari_agent.ops.models import prepared_whisper_model

SET = load_phone_set()


@pytest.fixture(scope="module")
def judge(demo_map: IntentMap, classifier: IntentClassifier) -> Judge:
    return Judge(demo_map, SET.today, classifier=classifier)


def test_transcripts_are_read_as_the_engine_reads_them(judge: Judge) -> None:
    def read(kind: str, text: str, slot: str | None = None) -> str | None:
        return judge.read(PhoneItem(kind, text, None, slot), text).value  # type: ignore[arg-type]

    assert read("digits", "It's 1 2 3 4.", "customer_number") == "1234"
    assert read("digits", "my number is forty five sixty seven", "customer_number") == "4567"
    assert read("postcode", "S W one A, one A A", "postcode") == "SW1A1AA"
    assert read("yes_no", "yes please") == "yes"
    assert read("yes_no", "I'm not sure") == "unclear"
    assert read("date", "tomorrow", "new_date") == "2026-03-05"
    assert read("time", "half past two in the afternoon", "new_time") == "14:30"
    assert read("open", "where has my parcel got to") == "order_status"
    assert read("out_of_scope", "") is None
    # a request for a person is the command a call hears before any intent (whisper's "uh, agent please")
    assert read("open", "Stop the agent, please.") == "speak_to_human"
    assert correct("open", "speak_to_human", read("open", "Stop the agent, please."))
    assert correct("out_of_scope", None, read("out_of_scope", "can I talk to someone who knows about pizza"))
    assert not correct("out_of_scope", None, read("out_of_scope", "where has my parcel got to"))


def test_both_takes_whisper_on_yes_no_and_open_and_reads_back_slot_values_it_disagrees_on() -> None:
    yes, no, unclear = Reading("yes"), Reading("no"), Reading("unclear")
    assert combine("yes_no", yes, unclear) == unclear  # pocketsphinx never turns an answer into a yes
    assert combine("yes_no", no, yes) == yes
    assert combine("yes_no", yes, no) == no
    assert combine("digits", Reading("1234"), Reading("1234")) == Reading("1234")  # agreed: used as heard
    assert combine("digits", Reading("1234"), Reading("1284"), "1 2 8 4") == Reading("1284", confirm=True)
    assert combine("digits", Reading("1234"), Reading(None), "1 2 3") == Reading("1234", confirm=True)
    assert combine("digits", Reading("1234"), Reading(None), "I'm not sure") == Reading(None)  # no number said
    assert combine("digits", Reading("9999"), Reading("999999"), "999 999") == Reading("9999", confirm=True)
    assert combine("digits", Reading(None), Reading(None)) == Reading(None)
    # open turns are whisper's alone on a call: the grammar does not run there
    assert combine("open", Reading("faq_hours"), Reading("order_status")) == Reading("order_status")
    assert combine("out_of_scope", Reading("faq_hours"), Reading(None)) == Reading(None)


def test_wer_normalises_numerals_punctuation_and_fillers() -> None:
    assert word_errors("uh, it's one two three four", "It's 1-2-3-4.") == (0, 5)
    assert word_errors("one two", "one three") == (1, 2)


def test_tiny_subset_table_with_pocketsphinx(judge: Judge, tmp_path: Path) -> None:
    utts = SET.utterances(voices=["flite:rms", "flite:awb"], limit=2)
    bench = SttBench(judge, Renderer(tmp_path), ["pocketsphinx"])
    try:
        outcomes = bench.run(utts)
        known = PhoneUtterance(PhoneItem("digits", "one two three four", "1234", "customer_number"),
                               "flite:rms", "clean", 0.0, seed=5)
        good = bench.run_one(known)
    finally:
        bench.close()
    assert good.heard["text"].value == "1234"
    assert good.heard["pocketsphinx"].value == "1234"  # flite rms, clean line: the grammar hears it
    rows = summarise(outcomes, ["pocketsphinx"])
    assert [(r["kind"], r["engine"]) for r in rows] == [(k, e) for k in KINDS for e in ("text", "pocketsphinx")]
    for r in rows:
        assert r["n"] == 2 and 0.0 <= r["accuracy"] <= 1.0
        if r["engine"] == "pocketsphinx":
            assert {"wer", "p50_ms", "p95_ms", "cpu_per_audio_s"} <= set(r)
            assert r["p50_ms"] <= r["p95_ms"] and r["cpu_per_audio_s"] > 0
    yes_no = next(r for r in rows if r["kind"] == "yes_no" and r["engine"] == "pocketsphinx")
    assert "false_yes" in yes_no and yes_no["false_yes"] <= yes_no["non_yes"]
    digits = next(r for r in rows if r["kind"] == "digits" and r["engine"] == "pocketsphinx")
    assert digits["read_back"] == 0 and 0 <= digits["wrong_used"] <= digits["n"] - digits["right"]
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| postcode | pocketsphinx | 2 |" in table


@pytest.mark.skipif(not prepared_whisper_model(DEFAULT_MODELS_DIR).is_file(), reason="whisper model not prepared")
def test_both_engines_on_one_known_utterance(judge: Judge, tmp_path: Path) -> None:
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

    # a generous per-utterance limit: a busy machine slows the worker, it does not make it wrong
    with WhisperWorkerPool(prepared_whisper_model(DEFAULT_MODELS_DIR), timeout_s=120.0) as pool:
        bench = SttBench(judge, Renderer(tmp_path), ["pocketsphinx", "whisper", "both"], whisper_pool=pool)
        try:
            got = bench.run_one(PhoneUtterance(PhoneItem("yes_no", "yes please", "yes"), "flite:rms", "clean",
                                               0.0, seed=2))
        finally:
            bench.close()
    assert got.heard["whisper"].error is None
    assert got.heard["whisper"].value == "yes" and got.heard["both"].value == "yes"
    assert got.heard["whisper"].cpu_s > 0  # the worker's CPU is counted


def test_impostor_codes_are_real_postcodes_one_character_off() -> None:
    import random

    from ari_agent.devtools.bench_stt import one_character_off
    from ari_agent.uk_postcodes import is_postcode

    for code in ("SW1A1AA", "M11AE", "TN91AA", "GU214XJ"):
        off = one_character_off(code, random.Random(code))
        assert len(off) == 3 and len(set(off)) == 3
        for other in off:
            assert is_postcode(other) and other != code and len(other) == len(code)
            assert sum(a != b for a, b in zip(code, other, strict=True)) == 1
        assert one_character_off(code, random.Random(code)) == off  # a rerun checks the same impostors


def test_a_postcode_turn_is_checked_against_its_code_and_impostors(judge: Judge, tmp_path: Path) -> None:
    from ari_agent.devtools.bench_stt import format_records, summarise_records
    from ari_agent.speech.code_check import CheckLimits
    from ari_agent.speech.whisper_stt import WhisperWorkerPool

    with WhisperWorkerPool(prepared_whisper_model(DEFAULT_MODELS_DIR), timeout_s=120.0) as pool:
        bench = SttBench(judge, Renderer(tmp_path), ["whisper"], whisper_pool=pool, check_limits=CheckLimits())
        bench.other_codes = ["M11AE", "SW1A1AA"]
        try:
            got = bench.run_one(PhoneUtterance(PhoneItem("postcode", "E H one, one Y Z", "EH11YZ", "postcode"),
                                               "flite:awb", "clean", 0.0, seed=2))
        finally:
            bench.close()
    assert got.records is not None
    assert got.records.other == ("M11AE", False) or got.records.other == ("SW1A1AA", False)  # another code: refused
    assert [c for c, _ in got.records.one_off] and len(got.records.check_ms) == 5
    summary = summarise_records([got])
    assert summary is not None and summary["n"] == 1 and summary["other_accepted"] == 0
    assert summary["one_off_n"] == 3 and summary["cpu_per_audio_s"] > 0
    assert "genuine accepted" in format_records(summary)
    assert got.record()["record_checks"]["other"][1] is False
