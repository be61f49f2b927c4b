"""Stored call logs (governance/call_logs.py, ``CallLog.store``): redacted before they are written, sealed
with ``storage.encrypt_at_rest``, read back by ``ari-agent storage show-log``, deleted by retention."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from ari_agent.call.call_log import CallLog
from ari_agent.cli import main
from ari_agent.config import Config, load_config
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.governance.at_rest import AtRestError, generate_key_line
from ari_agent.governance.call_logs import (
    CallLogError,
    config_redactor,
    find_call_log,
    read_call_log,
    redact_entries,
    storage_sealer,
)
from ari_agent.ops.retention import DAY_S, run_from_config

CARD = "4111 1111 1111 1111"


def a_call(call_id: str = "call-7f3a") -> CallLog:
    """What a verified call leaves in its event log: the identity answers, a card said in passing, an
    email in the handoff summary, the verification tool's arguments."""
    log = CallLog(call_id, time.monotonic())
    log.mark_sensitive(load_intent_map())
    log.add("say", text="Thanks for calling. How can I help you today?")
    log.add("listen", expect="open", detail="open, keypad ok", timeout_s=6.0)
    log.add("heard", text=f"I want to confirm my appointment, my card is {CARD}", confidence=0.91)
    log.add("listen", expect="digits", detail="digits, slot customer_number, 4 digits, keypad ok", timeout_s=8.0)
    log.add("dtmf", digits="1001")
    log.add("listen", expect="letters", detail="letters, slot postcode, 5-8 letters", timeout_s=6.0)
    log.add("heard", text="S W one A one A A", confidence=0.8)
    log.add("say", text="I have S W 1 A 1 A A. Is that right?")  # the recogniser was unsure: read back
    log.add("listen", expect="yes_no", detail="yes_no, slot postcode, keypad ok", timeout_s=6.0)
    log.add("heard", text="yes it is", confidence=0.9)
    log.add("tool", name="verify_identity", args={"customer_id": "C-1001", "postcode": "SW1A1AA"},
            key="appointment_confirm-0123456789abcdef0123456789")
    log.add("tool_result", ok=True, error="", submitted=False)
    log.add("listen", expect="digits", detail="digits, slot order_number, 4-8 digits, keypad ok", timeout_s=8.0)
    log.add("dtmf", digits="4567")
    log.add("tool", name="lookup_order", args={"order_number": "4567"}, key="order_status-99")
    log.add("transfer", queue="support", reason="caller_request",
            context={"summary": "caller asked to email jo.smith@example.com", "date_of_birth": "1985-04-12",
                     "intent": "appointment_confirm"})
    return log


def entries_of(log: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in log if e["kind"] == kind]


def test_redaction_before_storage() -> None:
    log = a_call()
    before = json.dumps(list(log))
    out = redact_entries(log, config_redactor(Config()), sensitive_slots=log.sensitive_slots,
                         sensitive_tools=log.sensitive_tools)
    text = json.dumps(out)
    assert json.dumps(list(log)) == before  # the live log is not changed
    for secret in (CARD, "1001", "SW1A1AA", "S W one A one A A", "S W 1 A", "jo.smith@example.com", "1985-04-12"):
        assert secret not in text, secret
    heard = entries_of(out, "heard")
    assert heard[0]["text"] == "I want to confirm my appointment, my card is [CARD]"
    assert heard[1]["text"] == "[REDACTED]" and heard[1]["confidence"] == 0.8  # the postcode answer
    assert heard[2]["text"] == "[REDACTED]"  # and the answer to its read-back
    says = [e["text"] for e in entries_of(out, "say")]
    assert says == ["Thanks for calling. How can I help you today?", "[REDACTED]"]  # the read-back
    assert [d["digits"] for d in entries_of(out, "dtmf")] == ["[REDACTED]", "4567"]  # customer number; order
    tools = entries_of(out, "tool")
    assert tools[0]["args"] == {"customer_id": "[REDACTED]", "postcode": "[REDACTED]"}
    assert tools[0]["key"] == "appointment_confirm-0123456789abcdef0123456789"  # the agent's own: verbatim
    assert tools[1]["args"] == {"order_number": "4567"}
    ctx = entries_of(out, "transfer")[0]["context"]
    assert ctx == {"summary": "caller asked to email [EMAIL]", "date_of_birth": "[REDACTED]",
                   "intent": "appointment_confirm"}
    assert [e["kind"] for e in out] == [e["kind"] for e in log] and [e["t"] for e in out] == [e["t"] for e in log]


def test_the_demo_maps_identity_is_sensitive() -> None:
    log = CallLog("c", 0.0)
    log.mark_sensitive(load_intent_map())
    assert log.sensitive_slots == {"customer_number", "postcode", "date_of_birth"}
    assert log.sensitive_tools == {"verify_identity"}


def config(tmp_path: Path, **storage: Any) -> Config:
    base = load_config(None)
    return base.model_copy(update={"storage": base.storage.model_copy(
        update={"call_logs_dir": tmp_path / "call-logs", **storage})})


def test_stored_plain_redacted_and_private(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    path = a_call().store(cfg)
    assert path == tmp_path / "call-logs" / "call-7f3a" / "events.jsonl"
    assert path.stat().st_mode & 0o777 == 0o600
    assert CARD.encode() not in path.read_bytes()
    stored = read_call_log(path, None)
    assert entries_of(stored, "heard")[0]["text"].endswith("[CARD]")
    assert find_call_log(cfg, "call-7f3a") == path


def test_not_stored_when_switched_off(tmp_path: Path) -> None:
    assert a_call().store(config(tmp_path, store_call_logs=False)) is None
    assert not (tmp_path / "call-logs").exists()
    assert CallLog("", 0.0).store(config(tmp_path)) is None  # a conversation that never started a call


def keyed(tmp_path: Path, *, encrypt: bool = True) -> tuple[Path, Path]:
    keys = tmp_path / "storage.keys"
    keys.write_text(generate_key_line("k1") + "\n")
    keys.chmod(0o600)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"storage: {{call_logs_dir: {tmp_path / 'call-logs'}, encrypt_at_rest: {str(encrypt).lower()}, "
                   f"encryption_key_file: {keys}, retention_days: 7}}\n")
    return cfg, keys


def test_sealed_and_read_back_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file, _ = keyed(tmp_path)
    cfg = load_config(str(cfg_file))
    path = a_call().store(cfg)
    assert path is not None and path.name == "events.jsonl.enc" and path.stat().st_mode & 0o777 == 0o600
    blob = path.read_bytes()
    assert blob.startswith(b"ARIE1") and b"appointment" not in blob and b"[CARD]" not in blob
    assert not (path.parent / "events.jsonl").exists()
    assert main(["-c", str(cfg_file), "storage", "show-log", "call-7f3a"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["kind"] for e in lines] == [e["kind"] for e in a_call()]
    assert entries_of(lines, "heard")[0]["text"] == "I want to confirm my appointment, my card is [CARD]"
    # the generic decrypt gives the same JSON lines
    assert main(["-c", str(cfg_file), "storage", "decrypt", str(path)]) == 0
    assert [json.loads(x) for x in capsys.readouterr().out.splitlines()] == lines
    # encryption switched off later: the old sealed log still opens with the configured keys
    cfg_file.write_text(cfg_file.read_text().replace("encrypt_at_rest: true", "encrypt_at_rest: false"))
    assert main(["-c", str(cfg_file), "storage", "show-log", "call-7f3a"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(lines)


def test_a_sealed_log_moved_to_another_call_does_not_open(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file, _ = keyed(tmp_path)
    cfg = load_config(str(cfg_file))
    path = a_call().store(cfg)
    assert path is not None
    other = tmp_path / "call-logs" / "call-other" / path.name
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    with pytest.raises(AtRestError, match="authentication failed"):
        read_call_log(other, storage_sealer(cfg))
    assert main(["-c", str(cfg_file), "storage", "show-log", "call-other"]) == 2
    err = capsys.readouterr().err
    assert "authentication failed (key 'k1')" in err and "Traceback" not in err


def test_show_log_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file, _ = keyed(tmp_path)
    assert main(["-c", str(cfg_file), "storage", "show-log", "no-such-call"]) == 2
    assert "no stored call log for call 'no-such-call'" in capsys.readouterr().err
    assert main(["-c", str(cfg_file), "storage", "show-log", "../../etc"]) == 2
    assert "is not a call id" in capsys.readouterr().err
    # a sealed log and no key configured
    cfg = load_config(str(cfg_file))
    path = a_call("call-x").store(cfg)
    assert path is not None
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"storage: {{call_logs_dir: {tmp_path / 'call-logs'}}}\n")
    assert main(["-c", str(bare), "storage", "show-log", "call-x"]) == 2
    assert "is encrypted: set storage.encryption_key_file" in capsys.readouterr().err
    # a damaged plain log
    broken = tmp_path / "call-logs" / "call-y" / "events.jsonl"
    broken.parent.mkdir()
    broken.write_text('{"kind": "say"}\nnot json\n')
    with pytest.raises(CallLogError, match=r"events.jsonl:2: not a JSON line"):
        read_call_log(broken, None)


def test_retention_deletes_old_call_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg_file, _ = keyed(tmp_path)
    cfg = load_config(str(cfg_file))
    old, young = a_call("call-old").store(cfg), a_call("call-new").store(cfg)
    assert old is not None and young is not None
    t = time.time() - 8 * DAY_S
    os.utime(old, (t, t))
    assert main(["-c", str(cfg_file), "retention", "run"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["deleted"] == 1 and str(tmp_path / "call-logs") in summary["roots"]
    assert not old.exists() and not old.parent.exists() and young.exists()
    report = run_from_config(cfg)
    assert report is not None and report.expired == [] and report.kept == 1
