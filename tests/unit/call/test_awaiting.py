"""``first_of`` and ``stop_task``: the losers of a race are stopped, even one that swallows a cancel.

On Python 3.11 ``asyncio.wait_for`` can lose a cancellation that lands as its inner wait completes; the
task then carries on as if it had not been cancelled. ``stubborn`` below does that on purpose."""

from __future__ import annotations

import asyncio
import time

import pytest

from ari_agent.call import session
from ari_agent.call.awaiting import finish_cleanup, first_of, stop_task, stop_tasks


async def stubborn(stopped: list[str], name: str = "stubborn") -> None:
    """Swallows the first cancellation (as a lost one looks from outside), then works on."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        pass  # lost
    try:
        await asyncio.sleep(30)
    finally:
        stopped.append(name)


async def test_first_of_stops_a_loser_that_swallows_the_first_cancel() -> None:
    stopped: list[str] = []
    loser = asyncio.ensure_future(stubborn(stopped))
    t0 = time.monotonic()
    done = await asyncio.wait_for(first_of(quick=asyncio.sleep(0), slow=loser), 5)
    assert done == {"quick"}
    assert loser.cancelled() and stopped == ["stubborn"]
    assert time.monotonic() - t0 < 2  # one retry (0.5 s), not the loser's 30 s


async def test_first_of_cancels_every_loser_at_once() -> None:
    stopped: list[str] = []
    started = asyncio.Event()

    async def polite(name: str) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.append(name)

    done = await asyncio.wait_for(first_of(a=stubborn(stopped, "a"), b=polite("b"), quick=started.wait()), 5)
    assert done == {"quick"}
    # b was cancelled with a, not after a's retry: it stopped first.
    assert stopped == ["b", "a"]


async def test_a_loser_failing_as_it_is_stopped_is_not_lost() -> None:
    async def breaks_on_cancel() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    with pytest.raises(RuntimeError, match="cleanup failed"):
        await asyncio.wait_for(first_of(quick=asyncio.sleep(0), slow=breaks_on_cancel()), 5)


async def test_a_cancelled_first_of_still_stops_its_tasks() -> None:
    stopped: list[str] = []
    waiting = asyncio.ensure_future(first_of(a=stubborn(stopped, "a"), b=stubborn(stopped, "b")))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)
    assert sorted(stopped) == ["a", "b"]


async def test_stop_task_returns_how_the_task_ended() -> None:
    stopped: list[str] = []
    assert await asyncio.wait_for(stop_task(asyncio.ensure_future(stubborn(stopped)), retry_s=0.05), 5) is None
    assert stopped == ["stubborn"]

    async def fails() -> None:
        raise ValueError("bad")

    failed = asyncio.ensure_future(fails())
    await asyncio.sleep(0)
    exc = await stop_task(failed)
    assert isinstance(exc, ValueError) and str(exc) == "bad"

    async def returns() -> int:
        return 1

    finished = asyncio.ensure_future(returns())
    await asyncio.sleep(0)
    assert await stop_task(finished) is None
    await stop_tasks([])  # nothing to stop: returns


def test_stop_task_is_still_importable_from_the_session_module() -> None:
    assert session.stop_task is stop_task


async def test_a_cleanup_is_finished_though_its_task_is_cancelled_again_and_again() -> None:
    """A ``finally`` that stops a child (with stop_task's 0.5 s retries) under a parent stopped by its own
    repeated cancels: with finish_cleanup the child is stopped before the parent ends, never left running."""
    stopped: list[str] = []
    child = asyncio.ensure_future(stubborn(stopped, "child"))

    async def parent() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await finish_cleanup(stop_task(child))

    task = asyncio.ensure_future(parent())
    await asyncio.sleep(0)
    assert await asyncio.wait_for(stop_task(task, retry_s=0.01), 5) is None  # ~50 cancels during the cleanup
    assert child.done() and stopped == ["child"]

    async def returns() -> int:
        return 7

    assert await finish_cleanup(returns()) == 7
