"""The ``tools:`` section of the intent map: how each tool the engine can call is reached.

Example (the intent map embeds this section; ``ToolsConfig`` validates it)::

    tools:
      base_url: "http://127.0.0.1:8700"     # ToolRunner(base_url=...) overrides it
      circuit_breaker: {failure_threshold: 3, open_s: 30}
      write_queue: {name: ari-agent-writes, max_retries: 3, retry_intervals_s: [2, 10, 30]}
      definitions:
        lookup_order:
          kind: http
          method: GET
          url: "{base_url}/orders/{order_number}"
          headers:
            Authorization: "Bearer ${secret:BACKEND_TOKEN}"   # from env ARI_AGENT_SECRET_BACKEND_TOKEN
          timeout_ms: 1500
          retries: 2                      # reads only; writes are never retried by the adapter
          request: LookupOrderRequest     # default for a known tool name: its own contract pair
          response: LookupOrderResponse
        confirm_appointment:
          method: POST
          url: "{base_url}/appointments/{appointment_id}/confirm"
          write: true                     # sends Idempotency-Key: <CallTool.idempotency_key>
          timeout_ms: 2000
        record_write:
          method: POST
          url: "{base_url}/writes"
          write: true
          async_write: true               # enqueued on RQ; the engine gets submitted=True at once

URL templates take ``{base_url}`` and the request contract's fields (URL-quoted); the remaining
fields go in the query string (GET, DELETE) or in a JSON body (POST, PUT, PATCH). Header values may
reference secrets as ``${secret:NAME}``; URLs may not. :data:`DEMO_TOOLS_YAML` is the full set for the
demo backend (``ari-agent backend``), without secrets.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ari_agent.integrations.contracts import CONTRACTS, TOOL_CONTRACTS
from ari_agent.integrations.secrets import SECRET_REF, check_template, secret_names
from ari_agent.yaml_source import load_yaml_text, validate

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CircuitBreakerSettings(_Strict):
    """``failure_threshold`` consecutive failures open the circuit for ``open_s`` seconds; then one
    trial call decides whether it closes again."""

    failure_threshold: int = Field(3, ge=1, le=100)
    open_s: float = Field(30.0, gt=0, le=3600)


class WriteQueueSettings(_Strict):
    """RQ queue for ``async_write`` tools (``ari-agent worker`` consumes it)."""

    name: str = Field("ari-agent-writes", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    max_retries: int = Field(3, ge=1, le=20)
    retry_intervals_s: list[int] = Field(default_factory=lambda: [2, 10, 30], min_length=1, max_length=20)
    job_timeout_s: int = Field(30, ge=1, le=3600)
    result_ttl_s: int = Field(86400, ge=60)
    outcome_ttl_s: int = Field(7 * 86400, ge=60)

    @field_validator("retry_intervals_s")
    @classmethod
    def _non_negative(cls, v: list[int]) -> list[int]:
        if any(i < 0 for i in v):
            raise ValueError("intervals must be >= 0")
        return v


class HttpToolSpec(_Strict):
    kind: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_ms: int = Field(1500, ge=10, le=120_000)
    write: bool = False
    async_write: bool = False
    request: str | None = None
    response: str | None = None
    # Reads only: attempts after the first on timeouts, connection errors, 429 and 5xx.
    retries: int | None = Field(None, ge=0, le=5)
    backoff_ms: int = Field(100, ge=0, le=10_000)
    circuit_breaker: CircuitBreakerSettings | None = None  # overrides the section default

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if "${" in v:
            raise ValueError("secrets may appear in headers only, never in the URL")
        if not (v.startswith("{base_url}") or v.startswith(("http://", "https://"))):
            raise ValueError("must start with {base_url}, http:// or https://")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() == "idempotency-key":
                raise ValueError("Idempotency-Key is set by the runner for writes; do not configure it")
            problem = check_template(value)
            if problem:
                raise ValueError(f"header {name}: {problem}")
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name}: value must be one line")
        return v

    @field_validator("request", "response")
    @classmethod
    def _known_contract(cls, v: str | None) -> str | None:
        if v is not None and v not in CONTRACTS:
            raise ValueError(f"unknown contract {v!r} (known: {', '.join(sorted(CONTRACTS))})")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> HttpToolSpec:
        if self.request is None or self.response is None:
            raise ValueError("request and response contracts are required (no default for this tool name)")
        if self.async_write and not self.write:
            raise ValueError("async_write needs write: true")
        if self.write and self.retries:
            raise ValueError("retries apply to reads only: writes are retried by the RQ queue, "
                             "with their Idempotency-Key")
        fields = set(CONTRACTS[self.request].model_fields)
        for name in PLACEHOLDER.findall(self.url):
            if name != "base_url" and name not in fields:
                raise ValueError(f"url placeholder {{{name}}} is not a field of {self.request}")
        return self

    @property
    def effective_retries(self) -> int:
        if self.write:
            return 0
        return 1 if self.retries is None else self.retries

    @property
    def secret_names(self) -> list[str]:
        return [n for value in self.headers.values() for n in secret_names(value)]


class ToolsConfig(_Strict):
    base_url: str | None = None
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    write_queue: WriteQueueSettings = WriteQueueSettings()
    definitions: dict[str, HttpToolSpec] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _default_contracts(cls, data: Any) -> Any:
        """A tool named like a known demo tool gets that tool's contracts unless it names others."""
        if not isinstance(data, dict) or not isinstance(data.get("definitions"), dict):
            return data
        defs: dict[str, Any] = {}
        for name, spec in data["definitions"].items():
            if isinstance(spec, dict) and name in TOOL_CONTRACTS:
                req, resp = TOOL_CONTRACTS[name]
                spec = {"request": req, "response": resp, **spec}
            defs[name] = spec
        return {**data, "definitions": defs}

    @field_validator("definitions")
    @classmethod
    def _tool_names(cls, v: dict[str, HttpToolSpec]) -> dict[str, HttpToolSpec]:
        for name in v:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
                raise ValueError(f"tool name {name!r}: use lower_snake_case")
        return v

    def names(self) -> list[str]:
        return sorted(self.definitions)

    def has(self, name: str) -> bool:
        return name in self.definitions

    def spec(self, name: str) -> HttpToolSpec:
        return self.definitions[name]

    def secret_names(self) -> list[str]:
        return sorted({n for spec in self.definitions.values() for n in spec.secret_names})

    def breaker_settings(self, name: str) -> CircuitBreakerSettings:
        return self.definitions[name].circuit_breaker or self.circuit_breaker


def load_tools_config_text(text: str, file: str = "<tools>") -> ToolsConfig:
    """Parse YAML holding a top-level ``tools:`` key (or the section itself); ConfigError on bad input."""
    data, index = load_yaml_text(text, file)
    if isinstance(data, dict) and "tools" in data:
        return validate(_ToolsDocument, data, file, index).tools
    return validate(ToolsConfig, data, file, index)


class _ToolsDocument(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    tools: ToolsConfig


DEMO_TOOLS_YAML = """\
tools:
  base_url: "http://127.0.0.1:8700"
  circuit_breaker: {failure_threshold: 3, open_s: 30}
  write_queue: {name: ari-agent-writes, max_retries: 3, retry_intervals_s: [2, 10, 30]}
  definitions:
    lookup_order:
      method: GET
      url: "{base_url}/orders/{order_number}"
      timeout_ms: 1500
      retries: 2
    get_appointment:
      method: GET
      url: "{base_url}/appointments"
      timeout_ms: 1500
      retries: 2
    confirm_appointment:
      method: POST
      url: "{base_url}/appointments/{appointment_id}/confirm"
      write: true
      timeout_ms: 2500
    reschedule_appointment:
      method: POST
      url: "{base_url}/appointments/{appointment_id}/reschedule"
      write: true
      timeout_ms: 2500
    verify_identity:
      method: POST
      url: "{base_url}/identity/verify"
      timeout_ms: 1500
      retries: 1
    identity_record:
      method: POST
      url: "{base_url}/identity/record"
      timeout_ms: 1500
      retries: 1
    unlock_account:
      method: POST
      url: "{base_url}/accounts/{customer_id}/unlock"
      write: true
      timeout_ms: 2500
    faq:
      method: GET
      url: "{base_url}/faq/{topic}"
      timeout_ms: 1000
      retries: 2
    send_confirmation:
      method: POST
      url: "{base_url}/messages"
      write: true
      async_write: true
      timeout_ms: 5000
    record_write:
      method: POST
      url: "{base_url}/writes"
      write: true
      async_write: true
      timeout_ms: 5000
"""


def demo_tools_config() -> ToolsConfig:
    """The tools of the demo backend (``ari-agent backend``), as the intent map would declare them."""
    return load_tools_config_text(DEMO_TOOLS_YAML, "<demo tools>")


def docstring_example() -> str:
    """The YAML example in this module's docstring (kept valid by a test)."""
    doc = __doc__ or ""
    start = doc.index("    tools:")
    end = doc.index("\nURL templates")
    lines = [line[4:] for line in doc[start:end].splitlines()]
    return "\n".join(lines) + "\n"


__all__ = [
    "BODY_METHODS",
    "DEMO_TOOLS_YAML",
    "PLACEHOLDER",
    "SECRET_REF",
    "CircuitBreakerSettings",
    "HttpToolSpec",
    "ToolsConfig",
    "WriteQueueSettings",
    "demo_tools_config",
    "load_tools_config_text",
]
