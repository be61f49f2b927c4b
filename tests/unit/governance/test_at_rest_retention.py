"""Retention (ops/retention.py, ``ari-agent retention run``): only files older than the configured age
go, under the configured roots only; dry runs delete nothing; symbolic links are not followed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.ops.retention import DAY_S, run_retention

NOW = time.time()


def make(path: Path, age_days: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    t = NOW - age_days * DAY_S
    os.utime(path, (t, t))
    return path


def test_deletes_only_old_files(tmp_path: Path) -> None:
    rec, logs = tmp_path / "recordings", tmp_path / "call-logs"
    old = [make(rec / "c1" / "received.wav.enc", 31), make(logs / "c1" / "events.jsonl", 45)]
    young = [make(rec / "c2" / "received.wav", 29.9), make(logs / "c2" / "events.jsonl.enc", 1)]
    outside = make(tmp_path / "audit.jsonl", 400)
    report = run_retention([rec, logs], 30, now=NOW)
    assert sorted(f.path for f in report.expired) == sorted(old)
    assert report.kept == 2 and not report.errors
    assert not any(p.exists() for p in old) and all(p.exists() for p in young)
    assert outside.exists()
    assert not (rec / "c1").exists() and (rec / "c2").exists()  # emptied call directory removed


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    old = make(tmp_path / "r" / "c1" / "received.wav", 90)
    report = run_retention([tmp_path / "r"], 30, dry_run=True, now=NOW)
    assert [f.path for f in report.expired] == [old] and old.exists()
    assert report.summary()["deleted"] == 0 and report.summary()["expired"] == 1


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    elsewhere = make(tmp_path / "precious" / "keep.wav", 365)
    root = tmp_path / "r"
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "precious", target_is_directory=True)
    (root / "file-link.wav").symlink_to(elsewhere)
    report = run_retention([root], 30, now=NOW)
    assert report.expired == [] and elsewhere.exists()


def test_missing_roots_are_fine(tmp_path: Path) -> None:
    report = run_retention([tmp_path / "nope"], 30, now=NOW)
    assert report.expired == [] and report.kept == 0


def test_cli_run_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec, logs = tmp_path / "rec", tmp_path / "logs"
    old = make(rec / "c1" / "received.wav", 10)
    young = make(logs / "c2" / "events.jsonl", 1)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"agent: {{recordings_dir: {rec}}}\nstorage: {{call_logs_dir: {logs}, retention_days: 7}}\n")
    assert main(["-c", str(cfg), "retention", "run", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["expired"] == 1 and f"would delete {old}" in err and old.exists()
    assert main(["-c", str(cfg), "retention", "run"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 1
    assert not old.exists() and young.exists()


def test_cli_keygen_and_decrypt_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["storage", "keygen", "--id", "2026-12"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("2026-12 ") and len(line.split()[1]) == 44
    keys = tmp_path / "keys"
    keys.write_text(line + "\n")
    keys.chmod(0o600)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"storage: {{encryption_key_file: {keys}}}\n")
    blob = tmp_path / "c1" / "x.enc"
    blob.parent.mkdir()
    blob.write_bytes(b"plain")
    assert main(["-c", str(cfg), "storage", "decrypt", str(blob)]) == 2
    assert "not an ari-agent encrypted blob" in capsys.readouterr().err
