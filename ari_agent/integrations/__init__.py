"""Tool integrations: what the engine's ``CallTool`` actions reach, and how.

- :mod:`.contracts` — typed request/response models of the demo tools.
- :mod:`.tools_config` — ``ToolsConfig``, the ``tools:`` section of the intent map.
- :mod:`.runner` — ``ToolRunner.run(CallTool) -> ToolResult``: HTTP adapter, read retries,
  circuit breakers, Idempotency-Key on writes, RQ for ``async_write`` tools.
- :mod:`.idempotency` — ``idempotency_key(call_id, intent, slots)``.
- :mod:`.jobs` — ``WriteQueue`` and the RQ job that performs a write exactly once.
- :mod:`.spool` — the fsync'd local spool for writes redis cannot take, replayed when it returns.
- :mod:`.demo_backend` — the SQLite demo backend (``ari-agent backend``).

Import the submodules directly; this package imports nothing, so ``idempotency`` stays cheap.
"""
