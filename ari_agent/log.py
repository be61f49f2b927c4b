"""Logging set-up shared by every command: plain or JSON lines, with secrets scrubbed and personal data
redacted (``ari_agent.redaction``: a caller's card number, email, date of birth ... said in a logged
transcript becomes ``[CARD]``, ``[EMAIL]``, ``[DOB]``). Only the message and any traceback are redacted,
not the timestamp, and without the length-only rule (9+ bare digits), which would hit call ids and
epoch times."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, TextIO

from ari_agent.redaction import Redactor

_SECRET_PATTERNS = [
    re.compile(r"(Authorization:\s*\w+\s+)[^\s'\"]+", re.I),
    re.compile(r"((?:password|secret|api[_-]?key|token)\s*[=:]\s*)[^\s,'\"&]+", re.I),
    re.compile(r"(//[^/:@\s]+:)[^@/\s]+(@)"),
]


def scrub(text: str) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""), text)
    return text


# The call a log line belongs to: set by the call's task (``CallSession.run``); the tasks and threads it
# starts inherit it, so every JSON log line written while serving a call carries its id as a field.
CALL_ID: ContextVar[str | None] = ContextVar("ari_agent_call_id", default=None)


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, json_lines: bool, redact_pii: bool = True,
                 extra_patterns: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json_lines = json_lines
        self.redactor = Redactor(extra_patterns, long_numbers=False) if redact_pii else None

    def _redact(self, text: str) -> str:
        if self.redactor is None:
            return text
        try:
            return self.redactor.redact(text)
        except Exception:  # never lose a log line to a redaction bug, nor let it through unredacted
            return re.sub(r"[0-9@]", "#", text)

    def formatException(self, ei: Any) -> str:
        return self._redact(super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        message = self._redact(record.getMessage())
        if self.json_lines:
            payload = {"ts": round(time.time(), 3), "level": record.levelname, "logger": record.name,
                       "msg": message}
            call_id = CALL_ID.get()
            if call_id is not None:
                payload["call_id"] = call_id
            if record.exc_info:
                payload["exc"] = self.formatException(record.exc_info)
            return scrub(json.dumps(payload))
        copy = logging.makeLogRecord(record.__dict__)
        copy.msg, copy.args, copy.exc_text = message, None, None  # exc_text: another handler's, unredacted
        return scrub(super().format(copy))


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the one at set-up (a process
    that swaps stderr, or a test harness capturing it, never gets a handler on a closed stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: str = "INFO", json_lines: bool = False, redact_pii: bool = True,
                  extra_patterns: Iterable[tuple[str, str]] = ()) -> None:
    handler = StderrHandler()
    handler.setFormatter(ScrubbingFormatter(json_lines, redact_pii, extra_patterns))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
