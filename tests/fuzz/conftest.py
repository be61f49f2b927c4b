"""Fuzz suite: every target counts the cases it ran (``fuzz_cases``) and the counts are printed at the
end of the run, so "100,000 cases, 0 crashes" is read off the output, not assumed. A hang is caught by
pytest-timeout (the per-test limit scales with ``ARI_AGENT_FUZZ_EXAMPLES``), never by a timing
assertion. Settings: ``fuzzing.py``."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from .fuzzing import EXAMPLES

HERE = Path(__file__).resolve().parent
CASES: Counter[str] = Counter()


@pytest.fixture
def fuzz_cases(request: pytest.FixtureRequest) -> Callable[[], None]:
    """Call once per generated case: the count is reported per target at the end of the run."""
    name = request.node.name

    def count() -> None:
        CASES[name] += 1

    return count


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # ~20 ms a case is far above any target's real cost: only a hang reaches this limit.
    limit = max(300, int(EXAMPLES * 0.02))
    for item in items:
        if HERE in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(limit))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With ``ARI_AGENT_FUZZ_COUNTS_FILE`` set, each target's outcome and case count is appended to that
    file as soon as it finishes (a long run stopped half-way keeps the figures of what it ran)."""
    path = os.environ.get("ARI_AGENT_FUZZ_COUNTS_FILE")
    if path and report.when == "call":
        name = report.nodeid.rsplit("::", 1)[-1]
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{report.outcome} {CASES[name]} {report.nodeid} {report.duration:.0f}s\n")


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not CASES:
        return
    terminalreporter.section("fuzz cases per target")
    for name, n in sorted(CASES.items()):
        terminalreporter.write_line(f"{n:>9,}  {name}")
