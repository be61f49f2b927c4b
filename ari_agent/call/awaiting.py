"""Waiting on whichever of several things happens first (playout drained, barge-in, hang-up)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def first_of(**waits: Awaitable[Any]) -> set[str]:
    """Await until at least one of ``waits`` is done; cancel the others. Returns the names done."""
    tasks = {name: asyncio.ensure_future(w) for name, w in waits.items()}
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks.values():
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return {name for name, task in tasks.items() if task.done() and not task.cancelled()}
