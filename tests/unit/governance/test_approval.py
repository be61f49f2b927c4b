"""Approved changes: an approved map loads; an edited, unapproved or forged one is refused in production
mode with one line; dev mode loads it anyway (and says why production would not)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.config import load_config
from ari_agent.conversation.intent_map import DEMO_MAP_PATH
from ari_agent.governance.approval import approval_path, approve, check_approval, load_checked_map, map_version
from ari_agent.governance.audit import verify_file
from ari_agent.governance.keys import GovernanceError
from ari_agent.governance.runtime import open_governance

KEY = b"approval-key-for-tests-0123456789"


@pytest.fixture
def map_file(tmp_path: Path) -> Path:
    path = tmp_path / "maps" / "acme.yaml"
    path.parent.mkdir()
    shutil.copy(DEMO_MAP_PATH, path)
    return path


def _edit(path: Path) -> None:
    path.write_text(path.read_text().replace("Please hold while", "Please hold on while", 1)
                    if "Please hold while" in path.read_text() else path.read_text() + "\n# edited\n")


def test_approved_map_loads_and_carries_its_version(map_file: Path) -> None:
    approval = approve(map_file, "Dana Reviewer", KEY)
    loaded = load_checked_map(map_file, production=True, key=KEY)
    assert loaded.approval == approval and loaded.problem is None
    assert loaded.version == map_version(map_file.read_bytes()) == approval.sha256


def test_edited_after_approval_is_refused(map_file: Path) -> None:
    approve(map_file, "Dana", KEY)
    _edit(map_file)
    with pytest.raises(GovernanceError, match="edited after Dana approved it") as exc:
        load_checked_map(map_file, production=True, key=KEY)
    assert "\n" not in str(exc.value)


def test_missing_approval_is_refused_in_production(map_file: Path) -> None:
    with pytest.raises(GovernanceError, match=r"not approved .*ari-agent config approve"):
        load_checked_map(map_file, production=True, key=KEY)


def test_forged_or_foreign_approval_is_refused(map_file: Path) -> None:
    approve(map_file, "Dana", KEY)
    with pytest.raises(GovernanceError, match="signature does not match"):
        check_approval(map_file, map_file.read_bytes(), b"another-key-0123456789")
    # an editor without the key re-points the approval at the edited map
    _edit(map_file)
    record = json.loads(approval_path(map_file).read_text())
    record["sha256"] = map_version(map_file.read_bytes())
    approval_path(map_file).write_text(json.dumps(record))
    with pytest.raises(GovernanceError, match="signature does not match"):
        load_checked_map(map_file, production=True, key=KEY)
    approval_path(map_file).write_text("{not json")
    with pytest.raises(GovernanceError, match="not a readable approval"):
        load_checked_map(map_file, production=True, key=KEY)


def test_production_without_a_key_is_refused(map_file: Path) -> None:
    approve(map_file, "Dana", KEY)
    with pytest.raises(GovernanceError, match="needs the approval key"):
        load_checked_map(map_file, production=True, key=None)


def test_dev_mode_is_unaffected(map_file: Path) -> None:
    loaded = load_checked_map(map_file, production=False, key=None)
    assert loaded.approval is None and loaded.problem is not None and "not approved" in loaded.problem
    approve(map_file, "Dana", KEY)
    _edit(map_file)
    loaded = load_checked_map(map_file, production=False, key=KEY)
    assert loaded.approval is None and "edited after" in (loaded.problem or "")
    assert loaded.version == map_version(map_file.read_bytes())


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ARI_AGENT__GOVERNANCE__AUDIT_LOG": str(tmp_path / "audit.jsonl"),
            "ARI_AGENT__GOVERNANCE__APPROVAL_KEY": KEY.decode(),
            "ARI_AGENT__GOVERNANCE__KILLSWITCH": "false", **extra}


def test_service_start_refuses_an_unapproved_map_and_audits_an_approved_one(map_file: Path, tmp_path: Path) -> None:
    cfg = load_config(None, env=_env(tmp_path, ARI_AGENT__GOVERNANCE__PRODUCTION="true"))
    with pytest.raises(GovernanceError, match="not approved"):
        open_governance(cfg, map_file)
    approval = approve(map_file, "Dana", KEY)
    gov = open_governance(cfg, map_file)
    assert gov.map_version == approval.sha256 and gov.kill_switch is None
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["config_load"]
    assert records[0]["map_version"] == approval.sha256
    assert records[0]["data"]["approved_by"] == "Dana" and records[0]["data"]["production"] is True


def test_cli_approve_then_check(map_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check", str(map_file)]) == 1
    assert "not approved" in capsys.readouterr().out
    assert main(["config", "approve", str(map_file), "--by", "Dana Reviewer"]) == 0
    assert "approved" in capsys.readouterr().out
    assert main(["config", "check", str(map_file)]) == 0
    assert "approved by Dana Reviewer" in capsys.readouterr().out
    _edit(map_file)
    assert main(["config", "check", str(map_file)]) == 1
    assert "edited after Dana Reviewer approved it" in capsys.readouterr().out
    # the approval was audited, in a chain that verifies
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl")]) == 0
    assert "ok, 1 record(s)" in capsys.readouterr().out


def test_cli_refuses_bad_input_in_one_line(map_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "approve", str(map_file), "--by", "  "]) == 2
    assert main(["config", "approve", str(tmp_path / "missing.yaml"), "--by", "Dana"]) == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: [\n")
    assert main(["config", "approve", str(broken), "--by", "Dana"]) == 2
    assert not approval_path(broken).exists()
    monkeypatch.setenv("ARI_AGENT__GOVERNANCE__APPROVAL_KEY", "short")
    assert main(["config", "approve", str(map_file), "--by", "Dana"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 4 and all(line.startswith("ari-agent: ") for line in lines), err
    assert "Traceback" not in err and KEY.decode() not in err


def test_audit_verify_cli_names_the_broken_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(tmp_path, ARI_AGENT__GOVERNANCE__AUDIT_KEY="audit-key-0123456789abcdef").items():
        monkeypatch.setenv(name, value)
    from ari_agent.governance.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl", b"audit-key-0123456789abcdef")
    for i in range(5):
        log.append("tool_call", {"i": i})
    assert main(["audit", "verify"]) == 0
    assert "ok, 5 record(s), hash chain and HMAC" in capsys.readouterr().out
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    del lines[2]
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{tmp_path / 'audit.jsonl'}:3: seq 3 where 2 was expected"), out
    assert not verify_file(tmp_path / "audit.jsonl", None).ok
    assert main(["audit", "verify", str(tmp_path / "nope.jsonl")]) == 2
    assert "cannot read it" in capsys.readouterr().err
