"""The codes on a caller's record, fetched while the question that asks for them plays.

The engine marks an identity turn whose code the record holds (``Expectation.record_lookup``, from the map's
``verification.record``); this fetches the code through the tool runner as soon as the question starts
playing (the lookup's round trip hides behind the prompt), and the Listen then carries it
(``Expectation.on_record``) to the recogniser, which checks the caller's audio against it
(``call/paired_recognition.py``, ``speech/code_check.py``) instead of reading it letter by letter.

Nothing here can stop a turn: a lookup that fails, times out, finds nothing or returns no valid code leaves
the turn as it was (the code is asked for and read back as usual). The code is personal data: it is never
logged (only whether one was found), and the Expectation keeps it out of its repr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable

from ari_agent.call.call_log import CallLog
from ari_agent.seam import CallTool, Expectation, RecordQuery, ToolResult
from ari_agent.uk_postcodes import compact, is_postcode

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 2.0  # at the Listen, at most this long for a lookup still running (then: read as usual)


class RecordLookups:
    """One call's record lookups, one per query (a question asked again reuses the code fetched)."""

    def __init__(self, run_tool: Callable[[CallTool], Awaitable[ToolResult]], call_id: str, *,
                 wait_s: float = DEFAULT_WAIT_S, audit: Callable[[CallTool, str], None] | None = None,
                 call_log: CallLog | None = None) -> None:
        self.run_tool = run_tool
        self.call_id = call_id
        self.call_log = call_log  # told each lookup's outcome and whether a code was found (never the code)
        self.wait_s = wait_s
        self.audit = audit
        self._lookups: dict[RecordQuery, asyncio.Task[str | None]] = {}
        self._seq = itertools.count(1)

    def prefetch(self, expect: Expectation, ready: Callable[[Expectation], None] | None = None) -> None:
        """Start the lookup ``expect`` carries, if any (at the question that asks for the code); ``ready`` is
        told the Expectation with the code once it is in (a caller answering over the question is heard
        with it)."""
        query = expect.record_lookup
        if query is None:
            return
        task = self._lookups.get(query)
        if task is None:
            task = asyncio.ensure_future(self._fetch(query))
            self._lookups[query] = task
        if ready is not None:
            task.add_done_callback(lambda t: ready(_with(expect, t)))

    async def resolve(self, expect: Expectation) -> Expectation:
        """``expect`` with the code on record (the lookup started now if it was not yet), or as it is."""
        if expect.record_lookup is None:
            return expect
        self.prefetch(expect)
        task = self._lookups[expect.record_lookup]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.wait_s)
        if not task.done():
            log.warning("call %s: record lookup still running after %.1f s: the code is read as usual",
                        self.call_id, self.wait_s)
        return _with(expect, task)

    def close(self) -> None:
        for task in self._lookups.values():
            task.cancel()

    async def _fetch(self, query: RecordQuery) -> str | None:
        n = next(self._seq)
        action = CallTool(query.tool, dict(query.args), idempotency_key=f"{self.call_id}-record-{n}",
                          call_id=f"{self.call_id}-record-{n}")
        outcome, code = "cancelled", None
        try:
            result = await self.run_tool(action)
            outcome = "ok" if result.ok else (result.error or "error")
            raw = result.data.get(query.result_field) if result.ok else None
            found = compact(raw) if isinstance(raw, str) else ""
            code = found if is_postcode(found) else None
            return code
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the turn is read as usual
            outcome = "error"
            log.warning("call %s: record lookup %s failed: %s", self.call_id, query.tool, type(exc).__name__)
            return None
        finally:
            if self.audit is not None:
                self.audit(action, outcome)
            if self.call_log is not None:
                self.call_log.add("record_lookup", tool=query.tool, outcome=outcome, found=code is not None)


def _with(expect: Expectation, task: asyncio.Task[str | None]) -> Expectation:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return expect
    code = task.result()
    return dataclasses.replace(expect, on_record=code) if code else expect
