"""Waiting on whichever of several things happens first (playout drained, barge-in, hang-up), and
stopping the tasks that lost."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

STOP_RETRY_S = 0.5

T = TypeVar("T")


async def finish_cleanup(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if this task is cancelled meanwhile, then re-raise the cancellation.

    For cleanup that must not be abandoned half done: a task's ``finally`` that stops its children is
    itself interrupted by the next of :func:`stop_task`'s repeated cancels, and the children it had not
    stopped yet (a call's listener, with its recogniser) would run on for ever."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True  # (also when it lands as the cleanup ends: it is not swallowed)
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: a failure here is not reported as "never retrieved"
        raise asyncio.CancelledError
    return task.result()


async def stop_task(task: asyncio.Future[Any], retry_s: float = STOP_RETRY_S) -> BaseException | None:
    """Cancel ``task`` and wait until it has stopped; return the exception it ended with (None when it
    was cancelled or returned). The cancel is repeated every ``retry_s``: on Python 3.11
    ``asyncio.wait_for`` can lose a cancellation that lands as its inner wait completes, and a task
    that missed one (a conversation, a listener, a DTMF collector) would go on working for a call that
    has moved on. A task that never stops keeps this waiting: each retry is a fresh cancel."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    if task.cancelled():
        return None
    return task.exception()  # retrieved: no "exception was never retrieved" at collection


async def stop_tasks(tasks: Iterable[asyncio.Future[Any]], retry_s: float = STOP_RETRY_S) -> None:
    """:func:`stop_task` for several tasks: all are cancelled at once, then each is waited for."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    for task in pending:
        await stop_task(task, retry_s)


async def first_of(**waits: Awaitable[Any]) -> set[str]:
    """Await until at least one of ``waits`` is done; stop the others (:func:`stop_task`, so a loser that
    swallows a cancellation is still stopped). Returns the names done."""
    tasks = {name: asyncio.ensure_future(w) for name, w in waits.items()}
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    finally:
        losers = [t for t in tasks.values() if not t.done()]
        await finish_cleanup(stop_tasks(losers))
    for task in losers:  # one that failed as it was stopped: not silently lost (as before stop_task)
        if not task.cancelled() and task.exception() is not None:
            task.result()
    return {name for name, task in tasks.items() if task.done() and not task.cancelled()}
