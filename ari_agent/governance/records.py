"""What an audit record says about a tool call or a transfer: enough for an auditor (which call, which
tool, which arguments, what came of it), with personal data redacted before it is stored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ari_agent.redaction import Redactor

# Argument names whose values are never stored, whatever they look like.
_SENSITIVE_NAME = re.compile(r"pin|pass|secret|token|cvv|cvc|card|ssn|dob|birth|postcode|zip|answer|otp|code",
                             re.I)
SENSITIVE_NAME = _SENSITIVE_NAME  # also the stored call logs' rule (governance/call_logs.py)


@lru_cache(maxsize=1)
def _redactor() -> Redactor:
    return Redactor()


def redacted_args(args: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in args.items():
        if _SENSITIVE_NAME.search(name):
            out[name] = "[REDACTED]"
        else:
            out[name] = _redactor().redact(str(value))
    return out


def tool_call_record(call_id: str, name: str, args: Mapping[str, Any], idempotency_key: str,
                     outcome: str) -> dict[str, Any]:
    return {"call_id": call_id, "tool": name, "args": redacted_args(args), "idempotency_key": idempotency_key,
            "outcome": outcome}


def transfer_record(call_id: str, queue: str, reason: str, context: Mapping[str, str], ok: bool) -> dict[str, Any]:
    """A handoff: where, why, whether Asterisk took it; the context's keys only (its summary may hold PII)."""
    return {"call_id": call_id, "queue": queue, "reason": _redactor().redact(reason), "ok": ok,
            "intent": str(context.get("intent", "")), "context_keys": sorted(context)}
