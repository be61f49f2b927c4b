"""Keypad answers: digits collected until ``#``, enough digits, or a pause between keys."""

from __future__ import annotations

import asyncio

from ari_agent.seam import Dtmf, Expectation


async def collect_dtmf(keys: asyncio.Queue[str], expect: Expectation, interdigit_s: float) -> Dtmf:
    """The caller's keyed answer: ends on ``#`` (a lone ``#`` is returned as is), at ``max_digits``,
    or ``interdigit_s`` after the last key; waits as long as it takes for the first key."""
    digits = ""
    limit = expect.max_digits or 0
    while True:
        try:
            key = await asyncio.wait_for(keys.get(), interdigit_s if digits else None)
        except TimeoutError:
            return Dtmf(digits)
        if key == "#":
            return Dtmf(digits or "#")
        digits += key
        if limit and len(digits) >= limit:
            return Dtmf(digits)
