"""Suite files are read strictly: every mistake is one line naming file:line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.errors import ConfigError
from ari_agent.evaluation.scenario import load_suite, resolve_suite_path

from .conftest import run_cli

HEAD = "suite: t\ntoday: 2026-03-04\nscenarios:\n"


def _suite(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(HEAD + body, encoding="utf-8")
    return p


@pytest.mark.parametrize(("body", "message"), [
    ("  - id: a\n    turns: [hi]\n    expect: {outcome: resolved, colour: red}\n",
     r"s.yaml:6: scenarios\[0\].expect.colour: unknown key"),
    ("  - id: a\n    turns: [hi]\n    turns: [ho]\n    expect: {outcome: resolved}\n",
     r"s.yaml:6: scenarios\[0\].turns: duplicate key \(first at line 5\)"),
    ("  - id: a\n    turns:\n      - hi\n      - \"#dtmf 12x\"\n    expect: {outcome: resolved}\n",
     r"s.yaml:7: scenarios\[0\].turns\[1\]: #dtmf needs keys"),
    ("  - id: a\n    turns: [hi, no]\n    expect: {outcome: resolved}\n",
     r"s.yaml:5: scenarios\[0\].turns\[1\]: YAML read this turn as true/false: quote it"),
    ("  - id: a\n    turns: [{say: hi, dtmf: '1'}]\n    expect: {outcome: resolved}\n",
     r"s.yaml:5: scenarios\[0\].turns\[0\]: .*exactly one of"),
    ("  - id: a\n    expect: {outcome: resolved, queue: support}\n",
     r"s.yaml:5: scenarios\[0\].expect: .*queue and reason go with outcome: transferred"),
    ("  - id: a\n    expect: {outcome: TODO}\n", r"s.yaml:5: scenarios\[0\].expect.outcome: Input should be"),
    ("  - id: a\n    expect: {outcome: resolved}\n  - id: a\n    expect: {outcome: resolved}\n",
     r"s.yaml:6: scenarios\[1\].id: duplicate scenario id 'a'"),
    ("  - id: a\n    turns: [hi\n", r"s.yaml:\d+: <root>: invalid YAML"),
])
def test_a_bad_suite_is_refused_with_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_suite(_suite(tmp_path, body))


def test_names_the_map_lacks_are_refused_before_anything_runs(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    p = _suite(tmp_path, "  - id: a\n    turns: [hi]\n    expect:\n      outcome: resolved\n"
                         "      intents: [order_stauts]\n")
    rc, out, err = run_cli(capsys, "eval", str(p), "--lexical")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1
    assert "s.yaml:8: scenarios[0].expect.intents[0]: no intent 'order_stauts'" in err


def test_the_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _suite(tmp_path, "  - id: a\n    turns: [\"#dtmf x\"]\n    expect: {outcome: resolved}\n")
    rc, _, err = run_cli(capsys, "eval", str(p))
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    rc, _, err = run_cli(capsys, "eval", "no-such-suite")
    assert rc == 2 and "no such suite file or shipped suite (shipped: known-issues, per-intent" in err
    rc, _, err = run_cli(capsys, "eval", "regression", "--mode", "audio", "--lexical")
    assert rc == 2 and "text-mode options" in err and err.count("\n") == 1
    rc, _, err = run_cli(capsys, "eval", "regression", "--baseline", str(p))
    assert rc == 2 and "not an ari-agent eval results.json" in err


def test_string_turns_read_as_chat_script_lines(tmp_path: Path) -> None:
    p = _suite(tmp_path, "  - id: a\n    turns: [hello, '#dtmf 4567#', '#silence', '#noinput', '#hangup', "
                         "'#killswitch', {say: 'yes', bargein: I'll move, synth: {voice: 'flite:slt'}}]\n"
                         "    expect: {outcome: caller_hung_up}\n")
    turns = load_suite(p).spec.scenarios[0].turns
    assert turns[0].say == "hello" and turns[1].dtmf == "4567#" and turns[2].silence
    assert turns[3].timeout == "no_input" and turns[4].hangup and turns[5].kill_switch
    assert turns[6].bargein == "I'll move" and turns[6].synth is not None and turns[6].synth.voice == "flite:slt"
    assert resolve_suite_path("red-team").name == "red-team.yaml"
