"""CPU time, wall time and peak RSS of this process while an awaitable runs (for benchmarks)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import psutil

T = TypeVar("T")


@dataclass
class Usage:
    wall_s: float
    cpu_s: float
    rss_start_bytes: int
    rss_peak_bytes: int

    def per_call(self, calls: int, concurrent: int | None = None) -> dict[str, float]:
        """``calls`` placed in all, at most ``concurrent`` (default: all) at a time."""
        n = max(1, calls)
        c = max(1, concurrent or calls)
        return {
            "cpu_s_per_call": round(self.cpu_s / n, 3),
            "cpu_pct_of_one_core_per_call": round(100 * self.cpu_s / max(self.wall_s, 1e-9) / c, 2),
            "rss_baseline_mb": round(self.rss_start_bytes / 2**20, 1),
            "rss_per_call_mb": round((self.rss_peak_bytes - self.rss_start_bytes) / 2**20 / c, 2),
        }


async def measure(work: Awaitable[T], sample_s: float = 0.1) -> tuple[T, Usage]:
    """Run ``work``, sampling RSS every ``sample_s``; CPU is the process's user+system time."""
    proc = psutil.Process(os.getpid())
    rss0 = peak = proc.memory_info().rss
    cpu0 = proc.cpu_times()
    t0 = time.monotonic()
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, proc.memory_info().rss)
        await asyncio.wait({task}, timeout=sample_s)
    result = task.result()
    cpu1 = proc.cpu_times()
    usage = Usage(time.monotonic() - t0, (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), rss0, peak)
    return result, usage
