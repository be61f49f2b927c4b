"""``ari-agent redact``: stdin to stdout redacted, exactly one output line per input line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.cli.redact import redact_stream
from ari_agent.redaction import Redactor


class _Stdio:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str], data: bytes) -> tuple[int, bytes]:
    out = _Stdio(b"")
    monkeypatch.setattr(sys, "stdin", _Stdio(data))
    monkeypatch.setattr(sys, "stdout", out)
    rc = main(argv)
    return rc, out.buffer.getvalue()


def test_line_for_line_blank_lines_and_endings_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"my card is 4111 1111 1111 1111\nhello\n\n  \r\nemail john dot smith at gmail dot com\r\nlast"
    rc, out = _run(monkeypatch, ["redact"], data)
    assert rc == 0
    assert out == b"my card is [CARD]\nhello\n\n  \r\nemail [EMAIL]\r\nlast"
    assert out.count(b"\n") == data.count(b"\n")


def test_invalid_utf8_is_replaced_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, out = _run(monkeypatch, ["redact"], b"caf\xe9 4111\xff1111 1111 1111\n\xc3\x28\n")
    assert rc == 0
    assert out.decode("utf-8").splitlines() == ["caf\ufffd [CARD]", "\ufffd("]


def test_extra_patterns_from_the_config_and_the_command_line(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("redaction:\n  extra_patterns:\n    - {label: MEMBER_ID, pattern: 'M-[0-9]{6}'}\n")
    rc, out = _run(monkeypatch, ["-c", str(cfg), "redact", "--pattern", "ROOM=room [0-9]+", "--summary"],
                   b"member M-123456 in room 12, pin is 1 2 3 4\n")
    assert rc == 0 and out == b"member [MEMBER_ID] in [ROOM], pin is [PIN]\n"
    assert "redacted: MEMBER_ID=1 PIN=1 ROOM=1" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["nolabel", "lower=x", "BAD=(", "EMPTY=a*"])
def test_a_bad_pattern_is_one_plain_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         spec: str) -> None:
    rc, _ = _run(monkeypatch, ["redact", "--pattern", spec], b"x\n")
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ari-agent: --pattern") and "Traceback" not in err


def test_a_bad_regex_in_the_config_names_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("redaction:\n  extra_patterns:\n    - label: MEMBER_ID\n      pattern: 'M-[0-9'\n")
    rc, _ = _run(monkeypatch, ["-c", str(cfg), "redact"], b"x\n")
    err = capsys.readouterr().err
    assert rc == 2 and "redaction.extra_patterns[0].pattern" in err and "regular expression" in err


def test_stream_counts() -> None:
    out = io.BytesIO()
    counts = redact_stream(Redactor(), io.BytesIO(b"pin is 4321\ncvv 123\nhi\n"), out)
    assert out.getvalue() == b"pin is [PIN]\ncvv [CVV]\nhi\n" and counts == {"PIN": 1, "CVV": 1}


def test_a_real_process_with_real_pipes() -> None:
    code = "import sys; from ari_agent.cli import main; sys.exit(main(['redact']))"
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          input=b"my card is 4111 1111 1111 1111\nhello\n\n", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"my card is [CARD]\nhello\n\n"
