"""Speech tests: the full per-voice recognition table is `slow` (run with ARI_AGENT_SLOW_TESTS=1)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ARI_AGENT_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set ARI_AGENT_SLOW_TESTS=1")
    here = os.path.dirname(__file__)
    for item in items:
        if "slow" in item.keywords and str(item.fspath).startswith(here):
            item.add_marker(skip)
