"""Exceptions shared by all layers."""

from __future__ import annotations


class AriAgentError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AriAgentError):
    """A configuration file is malformed: carries the file, the key path and the reason."""

    def __init__(self, file: str, key_path: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.key_path = key_path
        self.reason = reason
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key_path or '<root>'}: {reason}")


class MediaError(AriAgentError):
    """Malformed media (RTP, codec payload) that was dropped."""


class TelephonyError(AriAgentError):
    """Asterisk said no, or could not be reached."""
