"""The generic HTTP tool adapter: build a request from a tool spec and a validated contract, send it
once with aiohttp, and say what came back. Retries, circuit breaking and idempotency policy live in
the runner (reads) and the RQ job (writes); this module only speaks HTTP.

A ``PreparedRequest`` holds header *templates* (``${secret:NAME}`` unresolved): it is safe to log,
to pickle into an RQ job and to show in an error. Secrets are resolved only by whoever sends it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError

from ari_agent.integrations.outcomes import ToolErrorCode, code_for_status
from ari_agent.integrations.tools_config import BODY_METHODS, PLACEHOLDER, HttpToolSpec

log = logging.getLogger("ari_agent.integrations.http")

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class PreparedRequest:
    tool: str
    method: str
    url: str
    query: dict[str, str] = field(default_factory=dict)
    json_body: dict[str, Any] | None = None
    header_templates: dict[str, str] = field(default_factory=dict)
    timeout_ms: int = 1500

    def to_payload(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "method": self.method,
            "url": self.url,
            "query": dict(self.query),
            "json_body": self.json_body,
            "header_templates": dict(self.header_templates),
            "timeout_ms": self.timeout_ms,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> PreparedRequest:
        return cls(
            tool=str(data["tool"]),
            method=str(data["method"]),
            url=str(data["url"]),
            query={str(k): str(v) for k, v in dict(data.get("query") or {}).items()},
            json_body=data.get("json_body"),
            header_templates={str(k): str(v) for k, v in dict(data.get("header_templates") or {}).items()},
            timeout_ms=int(data.get("timeout_ms", 1500)),
        )


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def prepare_request(tool: str, spec: HttpToolSpec, base_url: str, request: BaseModel,
                    idempotency_key: str | None = None) -> PreparedRequest:
    """Fill the URL template from ``request`` (URL-quoted); the rest goes in query or JSON body."""
    values = request.model_dump(mode="json")
    used: set[str] = set()

    def _sub(m: Any) -> str:
        name = m.group(1)
        if name == "base_url":
            return base_url.rstrip("/")
        used.add(name)
        value = values.get(name)
        if value is None:
            raise ValueError(f"url placeholder {{{name}}} has no value")
        return quote(str(value), safe="")

    url = PLACEHOLDER.sub(_sub, spec.url)
    rest = {k: v for k, v in values.items() if k not in used and v is not None}
    headers = dict(spec.headers)
    if spec.write and idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    if spec.method in BODY_METHODS:
        return PreparedRequest(tool, spec.method, url, {}, rest, headers, spec.timeout_ms)
    return PreparedRequest(tool, spec.method, url, {k: _query_value(v) for k, v in rest.items()}, None,
                           headers, spec.timeout_ms)


@dataclass(frozen=True)
class HttpOutcome:
    """One HTTP exchange: ``error`` is None for a 2xx with a JSON object body."""

    status: int | None
    body: Any
    error: ToolErrorCode | None
    elapsed_ms: float
    replayed: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


async def send_once(session: aiohttp.ClientSession, req: PreparedRequest, headers: dict[str, str]) -> HttpOutcome:
    """Send ``req`` once with already-resolved ``headers``. Never raises for network trouble."""
    started = time.perf_counter()

    def _elapsed() -> float:
        return (time.perf_counter() - started) * 1000.0

    timeout = aiohttp.ClientTimeout(total=req.timeout_ms / 1000.0)
    try:
        async with session.request(
            req.method,
            req.url,
            params=req.query or None,
            json=req.json_body if req.method in BODY_METHODS else None,
            headers={"Accept": "application/json", **headers},
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            raw = await resp.content.read(MAX_BODY_BYTES + 1)
            replayed = resp.headers.get(REPLAYED_HEADER, "").lower() == "true"
            status = resp.status
    except TimeoutError:
        return HttpOutcome(None, None, ToolErrorCode.TIMEOUT, _elapsed(), detail="no answer in time")
    except aiohttp.ClientError as exc:
        # The exception's text names the host, never the headers we sent.
        return HttpOutcome(None, None, ToolErrorCode.UNREACHABLE, _elapsed(), detail=type(exc).__name__)
    body: Any = None
    if raw:
        if len(raw) > MAX_BODY_BYTES:
            return HttpOutcome(status, None, ToolErrorCode.CONTRACT_VIOLATION, _elapsed(), replayed,
                               "response body too large")
        try:
            body = json.loads(raw)
        except ValueError:
            bad = code_for_status(status) or ToolErrorCode.CONTRACT_VIOLATION
            return HttpOutcome(status, None, bad, _elapsed(), replayed, "response is not JSON")
    code = code_for_status(status)
    detail = ""
    if code is not None and isinstance(body, dict):
        detail = str(body.get("detail") or body.get("error") or "")[:200]
    return HttpOutcome(status, body, code, _elapsed(), replayed, detail)


def check_response(model: type[BaseModel], body: Any) -> tuple[dict[str, Any] | None, str]:
    """``(data, "")`` when ``body`` matches the response contract, else ``(None, reason)``."""
    if not isinstance(body, dict):
        return None, f"expected a JSON object, got {type(body).__name__}"
    try:
        return model.model_validate(body).model_dump(mode="json"), ""
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        return None, f"{model.__name__}: {where}: {err['msg']}"

