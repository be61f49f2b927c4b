"""ToolRunner: carries out the engine's ``CallTool`` actions and answers with a ``ToolResult``.

``await runner.run(call)`` never raises: every failure is a ``ToolResult(ok=False, error=<code>)``
with a code from :class:`~ari_agent.integrations.outcomes.ToolErrorCode`.

- Reads: one HTTP request, retried on timeouts / connection errors / 5xx / 429 with exponential
  backoff (``backoff_ms * 2**attempt``, jittered), at most ``retries`` more times.
- Synchronous writes (``write: true``): sent once with ``Idempotency-Key: <call.idempotency_key>``;
  never retried here (a timed-out write's outcome is unknown: the engine hands off).
- Asynchronous writes (``async_write: true``): enqueued on RQ (in a thread; rq is synchronous) and
  answered at once with ``ok=True, submitted=True``. With ``spool_path``, a write Redis cannot take
  goes to the fsync'd local spool (``state: spooled``, still ``submitted=True``: it is durably
  stored) and a background task replays the spool into RQ when Redis answers again
  (:mod:`~ari_agent.integrations.spool`). Only when neither can store it is the answer
  ``queue_unavailable`` (the engine hands off). Without ``redis_url`` (``ari-agent chat``, the text
  evaluation) they are performed inline (:class:`~ari_agent.integrations.jobs.InlineWriteQueue`):
  ``state: performed``, not submitted, once the backend answered 2xx, else ``queue_unavailable``.
- Per tool, a circuit breaker: after N consecutive failures every call returns ``circuit_open``
  immediately for T seconds, then one trial call decides.

Header secrets are resolved once at construction (a missing one is a ConfigError naming the
environment variable) and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ValidationError

from ari_agent.errors import ConfigError
from ari_agent.integrations.circuit import CircuitBreaker
from ari_agent.integrations.contracts import get_contract
from ari_agent.integrations.http_adapter import HttpOutcome, check_response, prepare_request, send_once
from ari_agent.integrations.idempotency import is_valid_key
from ari_agent.integrations.jobs import InlineWriteQueue, SubmitState, WriteJob, WriteQueue
from ari_agent.integrations.outcomes import BREAKER_FAILURES, RETRYABLE, ToolErrorCode
from ari_agent.integrations.secrets import MissingSecretError, redact, resolve_headers, resolve_template
from ari_agent.integrations.spool import SpoolingWriteQueue, WriteSpool
from ari_agent.integrations.tools_config import HttpToolSpec, ToolsConfig
from ari_agent.seam import CallTool, ToolResult

log = logging.getLogger("ari_agent.integrations.runner")

SleepFn = Callable[[float], Awaitable[None]]


class WriteSubmitter(Protocol):
    """What the runner needs of a write queue (:class:`~ari_agent.integrations.jobs.WriteQueue`)."""

    def submit(self, job: WriteJob) -> SubmitState: ...

    def close(self) -> None: ...


class ToolRunner:
    def __init__(
        self,
        config: ToolsConfig,
        *,
        base_url: str | None = None,
        redis_url: str | None = None,
        env: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        write_queue: WriteSubmitter | None = None,
        spool_path: str | Path | None = None,
        spool_replay_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: SleepFn = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        url = base_url or config.base_url
        if url is None:
            raise ConfigError("<tools>", "base_url", "no base_url: set tools.base_url or pass base_url=")
        self.base_url = url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._headers: dict[str, dict[str, str]] = {}
        for name, spec in config.definitions.items():
            try:
                self._headers[name] = resolve_headers(spec.headers, env)
            except MissingSecretError as exc:
                raise ConfigError("<tools>", f"definitions.{name}.headers", str(exc)) from None
        self._secret_values = [resolve_template(f"${{secret:{n}}}", env) for n in config.secret_names()]
        self.breakers: dict[str, CircuitBreaker] = {}
        for name in config.definitions:
            cb = config.breaker_settings(name)
            self.breakers[name] = CircuitBreaker(cb.failure_threshold, cb.open_s, clock=clock)
        self._queue: WriteSubmitter | None = write_queue
        self._owns_queue = False
        if self._queue is None and any(s.async_write for s in config.definitions.values()):
            if redis_url is None:  # chat, the text evaluation: nothing to queue on, so write at once
                tools = ", ".join(n for n, s in config.definitions.items() if s.async_write)
                log.info("no redis_url: async_write tools (%s) are performed inline", tools)
                self._queue = InlineWriteQueue()
            else:
                self._queue = WriteQueue.from_url(redis_url, config.write_queue)
            self._owns_queue = True
        self._spooler: SpoolingWriteQueue | None = None
        self._replay_interval_s = spool_replay_interval_s
        self._replayer: asyncio.Task[None] | None = None
        if spool_path is not None and isinstance(self._queue, WriteQueue):
            self._spooler = SpoolingWriteQueue(self._queue, WriteSpool(spool_path))
            self._queue = self._spooler

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ToolRunner:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replayer
            self._replayer = None
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None
        if self._queue is not None and self._owns_queue:
            await asyncio.to_thread(self._queue.close)
            self._queue = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
            self._owns_session = True
        return self._session

    # ------------------------------------------------------------ run

    async def run(self, call: CallTool) -> ToolResult:
        started = time.perf_counter()
        self._ensure_replayer()
        spec = self.config.definitions.get(call.name)
        if spec is None:
            return self._result(call, started, error=ToolErrorCode.UNKNOWN_TOOL, detail=call.name)
        breaker = self.breakers[call.name]
        try:
            request = self._validate_request(spec, call.args)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "<args>"
            return self._result(call, started, error=ToolErrorCode.INVALID_REQUEST, detail=f"{where}: {err['msg']}")
        if spec.write and not is_valid_key(call.idempotency_key):
            return self._result(call, started, error=ToolErrorCode.INVALID_REQUEST,
                                detail="idempotency_key must match [A-Za-z0-9_-]{1,128}")
        if not breaker.try_acquire():
            return self._result(call, started, error=ToolErrorCode.CIRCUIT_OPEN)
        verdict_recorded = False
        try:
            result = await self._run_admitted(call, spec, request, started)
            if result.error is not None and ToolErrorCode(result.error) in BREAKER_FAILURES:
                breaker.record_failure()
            else:
                breaker.record_success()
            verdict_recorded = True
            return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not end the call silently
            log.exception("tool %s (call %s) failed unexpectedly", call.name, call.call_id)
            breaker.record_failure()
            verdict_recorded = True
            return self._result(call, started, error=ToolErrorCode.INTERNAL_ERROR,
                                detail=redact(type(exc).__name__, self._secret_values))
        finally:
            if not verdict_recorded:
                breaker.release()

    def _validate_request(self, spec: HttpToolSpec, args: Mapping[str, Any]) -> BaseModel:
        assert spec.request is not None
        return get_contract(spec.request).model_validate(dict(args))

    async def _run_admitted(self, call: CallTool, spec: HttpToolSpec, request: BaseModel,
                            started: float) -> ToolResult:
        prepared = prepare_request(call.name, spec, self.base_url, request,
                                   call.idempotency_key if spec.write else None)
        if spec.async_write:
            return await self._submit(call, spec, prepared, started)
        headers = dict(self._headers[call.name])
        if spec.write:
            headers["Idempotency-Key"] = call.idempotency_key
        attempts = 1 + spec.effective_retries
        outcome: HttpOutcome | None = None
        for attempt in range(attempts):
            outcome = await send_once(self._get_session(), prepared, headers)
            if outcome.error is None or outcome.error not in RETRYABLE or attempt == attempts - 1:
                break
            delay = spec.backoff_ms / 1000.0 * (2 ** attempt) * self._rng.uniform(0.5, 1.0)
            log.info("tool %s attempt %d: %s; retrying in %.0f ms", call.name, attempt + 1,
                     outcome.error.value, delay * 1000)
            await self._sleep(delay)
        assert outcome is not None
        tries = attempt + 1
        if outcome.error is not None:
            data = {"http_status": outcome.status} if outcome.status is not None else {}
            return self._result(call, started, error=outcome.error, detail=outcome.detail, attempts=tries,
                                data=data)
        assert spec.response is not None
        checked, reason = check_response(get_contract(spec.response), outcome.body)
        if checked is None:
            return self._result(call, started, error=ToolErrorCode.CONTRACT_VIOLATION, detail=reason,
                                attempts=tries)
        return self._result(call, started, data=checked, attempts=tries)

    async def _submit(self, call: CallTool, spec: HttpToolSpec, prepared: Any, started: float) -> ToolResult:
        assert self._queue is not None
        job = WriteJob(prepared, call.idempotency_key, spec.response, self.config.write_queue.outcome_ttl_s)
        try:
            state = await asyncio.to_thread(self._queue.submit, job)
        except Exception as exc:  # redis down (and no spool, or the spool failed too)
            return self._result(call, started, error=ToolErrorCode.QUEUE_UNAVAILABLE, detail=type(exc).__name__)
        if state is SubmitState.SPOOLED:
            self._ensure_replayer()
        # performed inline (no redis): done, not queued
        return self._result(call, started, data={"idempotency_key": call.idempotency_key, "state": state.value},
                            submitted=state is not SubmitState.PERFORMED)

    def _result(self, call: CallTool, started: float, *, error: ToolErrorCode | None = None, detail: str = "",
                data: dict[str, Any] | None = None, attempts: int = 1, submitted: bool = False) -> ToolResult:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if error is None:
            log.info("tool %s call %s ok in %.0f ms (attempts %d%s)", call.name, call.call_id, elapsed_ms, attempts,
                     ", submitted" if submitted else "")
            return ToolResult(call.call_id, True, data or {}, None, submitted)
        detail = redact(detail, self._secret_values)
        level = logging.WARNING if error in BREAKER_FAILURES or error is ToolErrorCode.CIRCUIT_OPEN else logging.INFO
        log.log(level, "tool %s call %s failed: %s%s in %.0f ms (attempts %d)", call.name, call.call_id,
                error.value, f" ({detail})" if detail else "", elapsed_ms, attempts)
        out = dict(data or {})
        if detail:
            out.setdefault("detail", detail)
        return ToolResult(call.call_id, False, out, error.value, False)

    # ------------------------------------------------------------ spool replay

    @property
    def spooler(self) -> SpoolingWriteQueue | None:
        return self._spooler

    def _ensure_replayer(self) -> None:
        """While writes sit in the spool, one background task replays them into RQ (every interval)."""
        spooler = self._spooler
        if spooler is None or not spooler.spooling:
            return
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.get_running_loop().create_task(self._replay_loop(spooler),
                                                                    name="write-spool-replay")

    async def _replay_loop(self, spooler: SpoolingWriteQueue) -> None:
        # Redis gives no sign when it comes back: asking it (a PING per interval) is the only way to know.
        while spooler.spooling:
            try:
                await asyncio.to_thread(spooler.replay)
            except Exception:  # a disk error reading the spool: keep the jobs, try again later
                log.exception("write spool replay failed")
            if spooler.spooling:
                await asyncio.sleep(self._replay_interval_s)

    # ------------------------------------------------------------ introspection

    def breaker_states(self) -> dict[str, str]:
        return {name: b.state.value for name, b in self.breakers.items()}
