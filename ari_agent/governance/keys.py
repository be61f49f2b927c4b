"""HMAC keys for the audit log and for approvals: from the environment (via the service config's
``ARI_AGENT__GOVERNANCE__*_KEY``) or from a key file, never from a file the attacker can also edit.

A key is only as good as where it lives: keep the key file readable by the agent's user alone and
outside the directory of the audit log and the intent maps. Errors name the file, never the key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import SecretStr

from ari_agent.errors import AriAgentError

MIN_KEY_BYTES = 16


class GovernanceError(AriAgentError):
    """A governance check failed or its set-up is wrong (one line, fit for an operator)."""


def load_key(value: SecretStr | None, file: Path | None, what: str) -> bytes | None:
    """The key from ``value`` (environment/config) or else ``file``; None when neither is set."""
    raw: bytes
    if value is not None and value.get_secret_value():
        raw = value.get_secret_value().encode("utf-8")
        source = "the environment"
    elif file is not None:
        try:
            raw = Path(file).read_bytes().strip()
        except OSError as exc:
            raise GovernanceError(f"{what} key file {file}: cannot read it ({exc.strerror or exc})") from None
        source = str(file)
    else:
        return None
    if len(raw) < MIN_KEY_BYTES:
        raise GovernanceError(f"{what} key from {source} is too short: at least {MIN_KEY_BYTES} bytes")
    return raw


def key_id(key: bytes) -> str:
    """A short public name of a key (which key signed this, for rotation), not the key."""
    return hashlib.sha256(b"ari-agent key id\0" + key).hexdigest()[:12]
