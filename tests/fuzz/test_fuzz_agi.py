"""Fuzzing the FastAGI reader (telephony/agi.py): whatever a client sends as its header, and whatever
Asterisk answers to a command, the reader returns a request / a reply or raises ``AgiError``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ari_agent.telephony.agi import MAX_HEADER_BYTES, AgiChannel, AgiError, parse_agi_header, read_agi_header

from .fuzzing import FUZZ

HEADER_LINES = ["agi_network: yes", "agi_network_script: route", "agi_request: agi://127.0.0.1/route",
                "agi_channel: PJSIP/caller-00000001", "agi_callerid: +15551230001", "agi_uniqueid: 1700000000.1",
                "agi_arg_1: x", "agi_:", "agi_", ":", "agi_x: " + "y" * 200, "garbage", "\r", "agi_\x00: \xff"]
REPLIES = ["200 result=1", "200 result=0 (timeout)", "200 result=-1", "510 Invalid or unknown command",
           "520 Invalid command syntax.", "520-Invalid command syntax.  Proper usage follows:", "200 result=",
           "200 result=1 (speech) endpos=1234 results=1 score0=900 text0=hello", "100 result=0 Trying...",
           "HANGUP", "200", "", "result=1", "200 result=abc", "200 result=1 endpos=", "511 Command Not Permitted"]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _reader(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


class _Sink:
    """Where the channel's commands go (the bytes are not under test, only the replies read back)."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


headers = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(st.sampled_from(HEADER_LINES), st.text(max_size=30)), max_size=12).map(
        lambda lines: ("\n".join(lines) + "\n\n").encode("utf-8", "surrogatepass")),
)


@FUZZ
@given(headers)
def test_agi_header_parser_raises_only_agi_error(fuzz_cases: Callable[[], None], raw: bytes) -> None:
    fuzz_cases()
    try:
        request = parse_agi_header(raw)
    except AgiError:
        return
    assert request.headers and isinstance(request.script, str)


@FUZZ
@given(headers, st.booleans(), st.integers(0, 3))
def test_agi_header_reader_raises_only_agi_error(loop: asyncio.AbstractEventLoop, fuzz_cases: Callable[[], None],
                                                 raw: bytes, eof: bool, oversize: int) -> None:
    fuzz_cases()
    data = raw + b"x" * (oversize * MAX_HEADER_BYTES // 2)

    async def read() -> None:
        await read_agi_header(_reader(data, eof), timeout_s=0.01)

    try:
        loop.run_until_complete(read())
    except AgiError:
        pass


@FUZZ
@given(st.one_of(st.sampled_from(REPLIES), st.text(max_size=80)), st.sampled_from(["\n", "\r\n", ""]))
def test_agi_command_reply_raises_only_agi_error(loop: asyncio.AbstractEventLoop, fuzz_cases: Callable[[], None],
                                                 reply: str, end: str) -> None:
    fuzz_cases()
    writer: Any = _Sink()

    async def ask() -> dict[str, object]:
        channel = AgiChannel(_reader((reply + end).encode("utf-8", "surrogatepass")), writer, timeout_s=0.01)
        return await channel.command("GET VARIABLE X")

    try:
        result = loop.run_until_complete(ask())
    except AgiError:
        return
    assert isinstance(result, dict)
