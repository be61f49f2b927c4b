"""``ari-agent eval import``: transcripts become draft scenarios that cannot run until labelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_cli

TRANSCRIPT = """\
# exported from the contact centre, week 9
caller: where is my order
agent: Sure, I can check on your order. What's your order number?
caller: four five six seven
agent: Order 4567 has shipped with UPS.
caller: no thanks, my card is 4111 1111 1111 1111

Customer: I want to pay my bill
Agent: Let me put you through to billing.
caller: [dtmf 0]
caller: [hangup]
"""


def test_import_writes_an_unlabelled_draft_that_runs_once_labelled(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "week9.txt"
    src.write_text(TRANSCRIPT, encoding="utf-8")
    draft = tmp_path / "draft.yaml"
    rc, out, _ = run_cli(capsys, "eval", "import", str(src), "--out", str(draft))
    assert rc == 0 and "2 draft scenario(s) written" in out
    text = draft.read_text()
    assert "4111" not in text and "[CARD]" in text  # personal data redacted
    assert "# agent: Order 4567 has shipped with UPS." in text
    assert '- {dtmf: "0"}' in text and "- {hangup: true}" in text
    rc, _, err = run_cli(capsys, "eval", str(draft), "--lexical")
    assert rc == 2 and "draft.yaml:" in err and "expect.outcome: Input should be" in err  # unlabelled
    labelled = text.replace("outcome: TODO", "outcome: resolved\n      intents: [order_status]", 1)
    labelled = labelled.replace("outcome: TODO", "outcome: transferred\n      queue: billing")
    draft.write_text(labelled)
    rc, out, _ = run_cli(capsys, "eval", str(draft), "--lexical")
    assert rc == 0 and "ok   week9/week9-001" in out and "ok   week9/week9-002" in out


def test_import_refuses_a_line_it_cannot_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.txt"
    src.write_text("caller: hi\nagent: hello\nsomeone: what\n", encoding="utf-8")
    rc, _, err = run_cli(capsys, "eval", "import", str(src))
    assert rc == 2 and "bad.txt:3: expected 'caller: ...' or 'agent: ...'" in err
    src.write_bytes(b"caller: caf\xe9\n")
    rc, _, err = run_cli(capsys, "eval", "import", str(src))
    assert rc == 2 and "bad.txt:1: not valid UTF-8" in err
    src.write_text("caller: [press 5]\n")
    rc, _, err = run_cli(capsys, "eval", "import", str(src))
    assert rc == 2 and "unknown caller action" in err
