from __future__ import annotations

import logging

import pytest

from ari_agent.log import ScrubbingFormatter, scrub


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Basic YXJpLWFnZW50OmFyaS1hZ2VudC1kZXY=",
        "connecting with password=hunter2 now",
        "redis://user:hunter2@127.0.0.1:6379/0",
        "api_key: hunter2",
    ],
)
def test_secrets_are_scrubbed(text: str) -> None:
    out = scrub(text)
    assert "hunter2" not in out and "YXJpLWFnZW50OmFyaS1hZ2VudC1kZXY=" not in out
    assert "***" in out


def test_formatter_scrubs_args() -> None:
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "url %s", ("http://a:secretpw@h/",), None)
    for json_lines in (False, True):
        assert "secretpw" not in ScrubbingFormatter(json_lines).format(rec)


async def test_json_lines_carry_the_call_id_of_the_task_and_its_children() -> None:
    import asyncio
    import json

    from ari_agent.log import CALL_ID

    fmt = ScrubbingFormatter(json_lines=True)

    def line() -> dict[str, object]:
        rec = logging.LogRecord("x", logging.INFO, __file__, 1, "turn done", None, None)
        return dict(json.loads(fmt.format(rec)))

    async def in_child() -> dict[str, object]:
        await asyncio.sleep(0)
        return line()

    async def call(call_id: str) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
        CALL_ID.set(call_id)
        child = await asyncio.create_task(in_child())  # a task created after the set inherits it
        in_thread = await asyncio.to_thread(line)
        return line(), child, in_thread

    first, second = await asyncio.gather(call("call-aaa111"), call("call-bbb222"))
    assert {d["call_id"] for d in first} == {"call-aaa111"}
    assert {d["call_id"] for d in second} == {"call-bbb222"}
    assert "call_id" not in line()  # outside any call: no field
