"""The shared Redis follow loop without a Redis to reach: one warning per outage, backoff, ``while_down``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from ari_agent.devtools.backend_process import free_port
from ari_agent.governance.redis_follow import follow


async def _nothing(raw: bytes | str) -> None:
    raise AssertionError("nothing can arrive from a Redis that is not there")


async def test_an_outage_is_one_warning_with_its_detail_and_the_retries_back_off(
        caplog: pytest.LogCaptureFixture) -> None:
    lost: list[float] = []
    down_checks: list[float] = []
    caplog.set_level("DEBUG", logger="test.follow")
    task = asyncio.create_task(follow(
        f"redis://127.0.0.1:{free_port()}/0", "ch", _nothing, what="the thing",
        on_lost=lambda: lost.append(time.monotonic()), while_down=lambda: down_checks.append(time.monotonic()),
        poll_s=0.005, retry_s=0.01, retry_max_s=0.04, detail=lambda: "holding on",
        logger=logging.getLogger("test.follow")))
    while len(lost) < 7:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mine = [r for r in caplog.records if r.name == "test.follow"]
    warnings = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("the thing: Redis unreachable (")
    assert "holding on" in warnings[0]
    assert sum(1 for r in mine if r.levelno == logging.DEBUG) >= 5
    # each wait is at least the delay of its round: 0.01, 0.02, then capped at 0.04
    gaps = [b - a for a, b in itertools.pairwise(lost)]
    for i, gap in enumerate(gaps):
        assert gap >= min(0.01 * 2**i, 0.04) - 0.002, gaps
    # while_down runs every poll_s during the waits, several times per wait once they are 0.04 s long
    assert len(down_checks) >= 2 * len(lost)
