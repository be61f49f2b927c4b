"""The code on a caller's record, fetched while its question plays (call/record_lookup.py). The tool runner is
a scripted stand-in: the logic under test is when the lookup runs, what the Listen then carries, and that no
failure of it stops a turn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from ari_agent.call.call_log import CallLog
from ari_agent.call.record_lookup import RecordLookups
from ari_agent.seam import CallTool, Expectation, RecordQuery, ToolResult

QUERY = RecordQuery("identity_record", (("customer_id", "C-1001"),), "postcode")
ASKED = Expectation(kind="letters", slot="postcode", code_format="uk_postcode", record_lookup=QUERY)


class Backend:
    def __init__(self, data: dict[str, Any] | None = None, *, error: str | None = None, delay_s: float = 0.0,
                 raises: bool = False) -> None:
        self.data, self.error, self.delay_s, self.raises = data or {}, error, delay_s, raises
        self.calls: list[CallTool] = []

    async def __call__(self, action: CallTool) -> ToolResult:
        self.calls.append(action)
        await asyncio.sleep(self.delay_s)
        if self.raises:
            raise ConnectionError("backend gone")
        return ToolResult(action.call_id, ok=self.error is None, data=self.data, error=self.error)


async def test_the_code_is_fetched_while_the_question_plays_and_the_listen_carries_it(
        caplog: pytest.LogCaptureFixture) -> None:
    backend = Backend({"postcode": "sw1a 1aa"})
    audits: list[tuple[str, str]] = []
    call_log = CallLog("call-1", 0.0)
    lookups = RecordLookups(backend, "call-1", audit=lambda a, outcome: audits.append((a.name, outcome)),
                            call_log=call_log)
    ready: list[Expectation] = []
    with caplog.at_level(logging.INFO):
        lookups.prefetch(ASKED, ready=ready.append)  # the question starts playing
        await asyncio.sleep(0)
        got = await lookups.resolve(ASKED)  # its Listen
    assert got.on_record == "SW1A1AA" and got.record_lookup == QUERY and got.slot == "postcode"
    assert [c.name for c in backend.calls] == ["identity_record"] and backend.calls[0].args == {"customer_id": "C-1001"}
    assert ready and ready[0].on_record == "SW1A1AA"  # an answer over the question is checked too
    assert audits == [("identity_record", "ok")]
    assert [(e["kind"], e["outcome"], e["found"]) for e in call_log] == [("record_lookup", "ok", True)]
    again = await lookups.resolve(ASKED)  # the question asked again: the code fetched once
    assert again.on_record == "SW1A1AA" and len(backend.calls) == 1
    assert "SW1A" not in caplog.text and "sw1a" not in caplog.text  # personal data: never logged
    assert "SW1A" not in str(list(call_log))
    assert "SW1A1AA" not in repr(got)


@pytest.mark.parametrize("backend", [Backend(error="not_found"), Backend({"postcode": "not a code"}), Backend({}),
                                     Backend({"postcode": 12345}), Backend(raises=True)])
async def test_no_code_found_leaves_the_turn_as_it_was(backend: Backend) -> None:
    got = await RecordLookups(backend, "call-1").resolve(ASKED)
    assert got == ASKED and got.on_record is None


async def test_a_slow_lookup_does_not_hold_the_turn() -> None:
    backend = Backend({"postcode": "SW1A1AA"}, delay_s=5.0)
    lookups = RecordLookups(backend, "call-1", wait_s=0.05)
    got = await lookups.resolve(ASKED)
    assert got.on_record is None  # read as usual
    lookups.close()


async def test_a_turn_without_a_lookup_is_untouched() -> None:
    backend = Backend({"postcode": "SW1A1AA"})
    lookups = RecordLookups(backend, "call-1")
    plain = Expectation(kind="digits", slot="customer_number")
    lookups.prefetch(plain)
    assert await lookups.resolve(plain) is plain and backend.calls == []
