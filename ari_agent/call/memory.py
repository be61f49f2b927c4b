"""Giving the memory of ended calls back to the system.

Each call's recogniser (pocketsphinx loads its acoustic model per decoder) and audio buffers take tens
of MB in native and numpy allocations, made and freed on the event loop's and worker threads' malloc
arenas. glibc keeps freed arena memory mapped, so a long-running agent's RSS drifts up with the number
of calls served though nothing leaks. ``malloc_trim(0)`` returns that free memory; it runs in a worker
thread after a call ends, at most once per ``min_interval_s``, and is a no-op where libc has none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def run() -> None:
        trim(0)

    return run


class MemoryReleaser:
    def __init__(self, min_interval_s: float = 30.0, trim: Callable[[], None] | None = None) -> None:
        self.min_interval_s = min_interval_s
        self._trim = trim if trim is not None else _malloc_trim()
        self._last = float("-inf")
        self.runs = 0

    def try_start(self) -> bool:
        """Start a release if one is due: True (and the interval restarts now) when the caller should run
        :meth:`release`, False when it is too soon after the last one or there is nothing to run."""
        now = time.monotonic()
        if self._trim is None or now - self._last < self.min_interval_s:
            return False
        self._last = now
        return True

    def release(self) -> None:
        """Blocking: call it from a worker thread."""
        if self._trim is None:
            return
        try:
            self._trim()
            self.runs += 1
        except Exception as exc:  # never let housekeeping fail a call's teardown
            log.debug("malloc_trim failed: %s", exc)
