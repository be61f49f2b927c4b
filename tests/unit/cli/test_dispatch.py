"""``ari-agent COMMAND`` imports only the module of COMMAND; the table of commands stays true."""

from __future__ import annotations

import argparse
import importlib

import pytest

from ari_agent.cli import COMMANDS, _command_of, build_parser


def test_every_command_is_registered_by_the_module_the_table_names() -> None:
    for command, module in COMMANDS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(module).register(sub)
        assert command in sub.choices, f"{module} does not register '{command}'"


def test_the_full_parser_knows_every_command() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)


@pytest.mark.parametrize(("argv", "command"), [
    (["killswitch", "on", "--reason", "x"], "killswitch"),
    (["-c", "run", "doctor"], "doctor"),  # "run" is the config file's name here, not the command
    (["--config=cfg.yaml", "eval", "shipped"], "eval"),
    (["--help"], None),
    ([], None),
])
def test_the_command_word_is_found_after_the_global_options(argv: list[str], command: str | None) -> None:
    assert _command_of(argv) == command
