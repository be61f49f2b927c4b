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
