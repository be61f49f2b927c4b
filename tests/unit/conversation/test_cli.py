"""``ari-agent chat`` (scripted, against the real demo backend in-process) and ``ari-agent classify``."""

from __future__ import annotations

import argparse
import io
import json
import re
import shlex
from pathlib import Path

import pytest

from ari_agent.cli import chat, classify
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.errors import AriAgentError

from .conftest import DATA

SCRIPTS = sorted((DATA / "scripts").glob("*.txt"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ari-agent")
    sub = parser.add_subparsers(dest="command")
    chat.register(sub)
    classify.register(sub)
    return parser


def _run_script(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    text = path.read_text(encoding="utf-8")
    flags = re.search(r"^# flags: (.*)$", text, re.M)
    argv = ["chat", "--script", str(path), "--today", "2026-03-04", *extra]
    argv += shlex.split(flags.group(1)) if flags else []
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_chat_script_end_to_end(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_script(path, capsys, "--lexical")
    expected = re.findall(r"^# expect: (.*)$", path.read_text(encoding="utf-8"), re.M)
    assert expected
    for line in expected:
        assert line in out, f"{path.name}: missing {line!r} in\n{out}"
    assert out.count("AGENT ") >= 1


def test_chat_with_the_default_classifier(capsys: pytest.CaptureFixture[str]) -> None:
    out = _run_script(DATA / "scripts" / "order_status.txt", capsys)
    assert "has shipped and should arrive on" in out and "[HANGUP: completed]" in out
    assert not any(line.startswith("AGENT") and "UPS" in line for line in out.splitlines())  # unverified


def test_chat_refuses_a_bad_script_line(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text("hello\n#dtmf 12x\n")
    args = _parser().parse_args(["chat", "--script", str(script)])
    with pytest.raises(AriAgentError, match=r"bad.txt:2: #dtmf needs keys"):
        args.func(args)


def test_chat_refuses_a_broken_map(tmp_path: Path) -> None:
    args = _parser().parse_args(["chat", "--map", str(DATA / "broken_maps" / "queue_missing.yaml")])
    with pytest.raises(AriAgentError, match=r"queue_missing.yaml:30: intents\[0\].escalation.queue"):
        args.func(args)


def test_classify_stream(demo_map: IntentMap) -> None:
    from datetime import date

    lines = "\n".join([
        "can you track order number four five six seven",
        "I need to move my appointment to next Tuesday at half past three",
        "what's the weather like on Mars",
        "",
        "I'd like to pay my bill",
    ])
    out = io.StringIO()
    n = classify.classify_stream(demo_map, io.StringIO(lines), out, today=date(2026, 3, 4), lexical=True)
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert n == 5 and [set(r) for r in records] == [{"text", "intent", "confidence", "slots"}] * 5
    assert records[0]["intent"] == "order_status" and records[0]["slots"] == {"order_number": "4567"}
    assert records[1]["intent"] == "appointment_reschedule"
    assert records[1]["slots"] == {"new_date": "2026-03-10", "new_time": "15:30"}
    assert records[2]["intent"] is None and records[2]["slots"] == {} and records[2]["confidence"] == 0.0
    assert records[3] == {"text": "", "intent": None, "confidence": 0.0, "slots": {}}
    assert records[4]["intent"] == "bill_payment" and 0 < records[4]["confidence"] <= 1


def test_classify_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("where is my order\n"))
    args = _parser().parse_args(["classify", "--lexical", "--today", "2026-03-04"])
    assert args.func(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "where is my order" and record["intent"] == "order_status"


def _stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_classify_writes_one_line_per_input_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _stdin_bytes(monkeypatch, b"a\n\nb\n   \r\nwhere is my order")  # blank, spaces, CRLF, no final newline
    args = _parser().parse_args(["classify", "--lexical", "--today", "2026-03-04"])
    assert args.func(args) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == ["a", "", "b", "", "where is my order"]
    assert records[1] == {"text": "", "intent": None, "confidence": 0.0, "slots": {}}
    assert records[4]["intent"] == "order_status"


def test_classify_reads_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    utterances = tmp_path / "u.txt"
    utterances.write_bytes("\ufeffwhere is my order\n\norder ٤٥٦٧ please\n".encode())  # BOM, Arabic-Indic
    args = _parser().parse_args(["classify", "--lexical", "--today", "2026-03-04", str(utterances)])
    assert args.func(args) == 0
    records = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == ["where is my order", "", "order ٤٥٦٧ please"]
    assert records[2]["slots"] == {"order_number": "4567"}


def test_classify_refuses_input_that_is_not_utf8(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = b"where is my order\n\norder 4567 caf\xe9\nlast\n"
    _stdin_bytes(monkeypatch, data)
    args = _parser().parse_args(["classify", "--lexical", "--today", "2026-03-04"])
    with pytest.raises(AriAgentError, match=r"^<stdin>:3: not valid UTF-8 \(byte 0xe9 at byte offset 33\)$"):
        args.func(args)
    assert len(capsys.readouterr().out.splitlines()) == 2  # the lines before it were answered
    bad = tmp_path / "bad.txt"
    bad.write_bytes(data)
    args = _parser().parse_args(["classify", "--lexical", str(bad)])
    with pytest.raises(AriAgentError, match=r"bad.txt:3: not valid UTF-8 \(byte 0xe9 at byte offset 33\)$"):
        args.func(args)
    args = _parser().parse_args(["classify", "--lexical", str(tmp_path / "missing.txt")])
    with pytest.raises(AriAgentError, match=r"cannot read .*missing.txt: No such file"):
        args.func(args)


def test_chat_refuses_a_script_that_is_not_utf8(tmp_path: Path) -> None:
    script = tmp_path / "latin1.txt"
    script.write_bytes("hello\nmy postcode is SW1A 1AA, café\n".encode("latin-1"))
    args = _parser().parse_args(["chat", "--script", str(script)])
    with pytest.raises(AriAgentError, match=r"latin1.txt:2: not valid UTF-8 \(byte 0xe9 at byte offset 34\)$"):
        args.func(args)


def test_cli_main_prints_one_line_for_a_bad_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ari_agent.cli import main

    script = tmp_path / "bad.txt"
    script.write_bytes(b"\xff\xfehello\n")
    assert main(["chat", "--script", str(script)]) == 2
    err = capsys.readouterr().err
    assert err == f"ari-agent: {script}:1: not valid UTF-8 (byte 0xff at byte offset 0)\n"
