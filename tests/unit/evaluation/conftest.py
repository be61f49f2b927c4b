"""Helpers of the evaluation tests: run ``ari-agent eval`` as the user does (the real CLI entry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_agent.cli import main
from ari_agent.conversation.intent_map import DEMO_MAP_PATH


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def demo_map_variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of the demo map with one change (``old`` must occur exactly once)."""
    text = DEMO_MAP_PATH.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path
