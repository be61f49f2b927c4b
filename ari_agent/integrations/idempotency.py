"""Idempotency keys for tool calls: one key per (call, intent, slot values).

The same caller asking for the same thing in the same call gets the same key, however often the
engine re-emits the ``CallTool`` (a repeated turn, a retry after a timeout, an RQ job re-run after
a worker crash): the backend and the RQ queue use it to perform the write exactly once.

Keys use only ``[A-Za-z0-9_-]`` (RQ job ids allow nothing else) and are at most 72 characters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_PREFIX_MAX = 32
_DIGEST_CHARS = 32  # 128 bits of SHA-256


def _canonical(value: Any) -> Any:
    """Plain JSON-able form with a fixed order, so equal slot sets hash equally."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # dates, times, Decimals, enums: their text form


def idempotency_key(call_id: str, intent: str, slots: Mapping[str, Any]) -> str:
    """A stable, RQ-safe key for one tool call: ``<intent>-<32 hex digits>``.

    >>> idempotency_key("c1", "appointment_confirm", {"appointment_id": "A-100"}) == \\
    ...     idempotency_key("c1", "appointment_confirm", {"appointment_id": "A-100"})
    True
    """
    payload = json.dumps(
        {"call": call_id, "intent": intent, "slots": _canonical(slots)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    digest = hashlib.sha256(payload.encode("ascii")).hexdigest()[:_DIGEST_CHARS]
    prefix = _UNSAFE.sub("_", intent).strip("_")[:_PREFIX_MAX] or "call"
    return f"{prefix}-{digest}"


def is_valid_key(key: str) -> bool:
    """True when ``key`` can be used as an RQ job id and an ``Idempotency-Key`` header."""
    return bool(KEY_PATTERN.match(key))
