"""What a tool call can come back as: the error codes the engine sees in ``ToolResult.error``.

The engine branches on these strings (``circuit_open`` and ``timeout`` mean "hand off now";
``not_found`` and ``rejected`` are answers to tell the caller). They are part of the seam.
"""

from __future__ import annotations

from enum import StrEnum


class ToolErrorCode(StrEnum):
    UNKNOWN_TOOL = "unknown_tool"  # the engine asked for a tool the config does not define
    INVALID_REQUEST = "invalid_request"  # the args do not match the request contract
    CIRCUIT_OPEN = "circuit_open"  # the tool failed repeatedly; calls fail fast for a while
    TIMEOUT = "timeout"  # no answer within timeout_ms (a write's outcome is then unknown)
    UNREACHABLE = "unreachable"  # connection refused / reset / DNS
    BACKEND_ERROR = "backend_error"  # 5xx or 429
    UNAUTHORIZED = "unauthorized"  # 401 / 403: a credentials problem, not the caller's
    BAD_REQUEST = "bad_request"  # 400 / other 4xx: the backend refused the request's form
    NOT_FOUND = "not_found"  # 404: no such order / customer / appointment
    REJECTED = "rejected"  # 409 / 422: a business rule said no (slot taken, date in the past)
    CONTRACT_VIOLATION = "contract_violation"  # the response does not match the response contract
    QUEUE_UNAVAILABLE = "queue_unavailable"  # async write could not be enqueued (redis down)
    MISSING_SECRET = "missing_secret"  # a ${secret:NAME} is not set in this process
    INTERNAL_ERROR = "internal_error"  # a bug here; logged with its traceback


# Outcomes that say the backend (or the way to it) is unhealthy: they count toward opening the circuit.
BREAKER_FAILURES = frozenset({
    ToolErrorCode.TIMEOUT,
    ToolErrorCode.UNREACHABLE,
    ToolErrorCode.BACKEND_ERROR,
    ToolErrorCode.UNAUTHORIZED,
    ToolErrorCode.CONTRACT_VIOLATION,
    ToolErrorCode.QUEUE_UNAVAILABLE,
    ToolErrorCode.INTERNAL_ERROR,
})

# Outcomes worth another attempt (reads by the adapter; writes only by the RQ queue).
RETRYABLE = frozenset({ToolErrorCode.TIMEOUT, ToolErrorCode.UNREACHABLE, ToolErrorCode.BACKEND_ERROR})


def code_for_status(status: int) -> ToolErrorCode | None:
    """The error code of an HTTP status, or None for a success (2xx)."""
    if 200 <= status < 300:
        return None
    if status == 404:
        return ToolErrorCode.NOT_FOUND
    if status in (409, 422):
        return ToolErrorCode.REJECTED
    if status in (401, 403):
        return ToolErrorCode.UNAUTHORIZED
    if status == 429 or status >= 500:
        return ToolErrorCode.BACKEND_ERROR
    return ToolErrorCode.BAD_REQUEST
