"""Logging set-up shared by every command: plain or JSON lines, with secrets scrubbed."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

_SECRET_PATTERNS = [
    re.compile(r"(Authorization:\s*\w+\s+)[^\s'\"]+", re.I),
    re.compile(r"((?:password|secret|api[_-]?key|token)\s*[=:]\s*)[^\s,'\"&]+", re.I),
    re.compile(r"(//[^/:@\s]+:)[^@/\s]+(@)"),
]


def scrub(text: str) -> str:
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex and m.lastindex >= 2 else ""), text)
    return text


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        if self.json_lines:
            payload = {"ts": round(time.time(), 3), "level": record.levelname, "logger": record.name,
                       "msg": record.getMessage()}
            if record.exc_info:
                payload["exc"] = self.formatException(record.exc_info)
            return scrub(json.dumps(payload))
        return scrub(super().format(record))


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ScrubbingFormatter(json_lines))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
