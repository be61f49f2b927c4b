"""Releasing ended calls' memory: rate-limited, never raising, the real glibc malloc_trim on Linux."""

from __future__ import annotations

import sys

import pytest

from ari_agent.call.memory import MemoryReleaser, _malloc_trim


def test_a_release_starts_at_most_once_per_interval() -> None:
    calls: list[int] = []
    m = MemoryReleaser(min_interval_s=3600, trim=lambda: calls.append(1))
    assert m.try_start() and not m.try_start()
    m.release()
    assert calls == [1] and m.runs == 1
    assert MemoryReleaser(min_interval_s=0, trim=lambda: None).try_start()


def test_a_failing_trim_is_swallowed() -> None:
    def boom() -> None:
        raise OSError("no")

    m = MemoryReleaser(trim=boom)
    m.release()
    assert m.runs == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux-only")
def test_the_real_malloc_trim_runs() -> None:
    trim = _malloc_trim()
    assert trim is not None
    m = MemoryReleaser(min_interval_s=0)
    blocks = [bytearray(256 * 1024) for _ in range(64)]
    del blocks
    m.release()
    assert m.runs == 1
