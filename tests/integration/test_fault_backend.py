"""Backend 5xx and timeouts: every affected call is handed off, with its reason and context, within
the bound the intent map and config set.

The call path is the call's own (engine → ActionInterpreter → ToolCaller → ToolRunner, no audio:
:class:`~ari_agent.devtools.drill_calls.EngineCall`) against the real demo backend in its own
process, told by ``PUT /_faults`` to answer 5xx, or to hang. One ToolRunner serves all the calls, as
in the agent, so its circuit breaker opens on the way: calls after that fail fast (``circuit_open``)
and are handed off too.

The bound is a fact of the design, not a latency figure: the ToolCaller waits the intent's
``latency_budget.tool_call_ms``, plays the acknowledgement, then waits at most
``conversation.tool_timeout_s`` before the engine gets ``Timeout("tool")`` and transfers. A handoff
later than that (plus a scheduling margin) would mean a caller left waiting past what the map says.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import load_intent_map
from ari_agent.conversation.nlu.classifier import build_classifier
from ari_agent.devtools.backend_process import BackendProcess
from ari_agent.devtools.drill_calls import EngineCall
from ari_agent.integrations.runner import ToolRunner
from ari_agent.seam import CallStarted, Dtmf, Timeout, ToolResult, Utterance

pytestmark = [pytest.mark.integration, pytest.mark.fault]

CALLS = 8
TOOL_TIMEOUT_S = 2.0  # conversation.tool_timeout_s for these calls (default 8)
MARGIN_S = 1.0  # event-loop scheduling, engine turns: never a backend's time


@pytest.fixture
def backend(tmp_path: Path) -> Any:
    proc = BackendProcess(tmp_path / "backend")
    proc.start()
    yield proc
    proc.stop()


async def _order_call(n: int, intent_map: Any, classifier: Any, runner: ToolRunner) -> EngineCall:
    engine = ConversationEngine(intent_map, classifier, call_id=f"fault-{n}")
    call = EngineCall(engine, runner.run, tool_timeout_s=TOOL_TIMEOUT_S)
    await call.feed(CallStarted(caller_id=f"+1555000{n:04d}"))
    await call.feed(Utterance("where is my order", 0.95, True))
    await call.feed(Dtmf("4567#"))
    return call


def _error_of(outcome: ToolResult | Timeout) -> str:
    return "timeout(call layer)" if isinstance(outcome, Timeout) else str(outcome.error)


@pytest.mark.parametrize("fault", [{"fail_status": 503}, {"fail_status": 500}, {"delay_ms": 60_000}],
                         ids=["503", "500", "hang"])
async def test_every_affected_call_is_handed_off_with_context_within_the_bound(
        backend: BackendProcess, fault: dict[str, int]) -> None:
    intent_map = load_intent_map()
    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False)
    order = intent_map.intent("order_status")
    assert order is not None
    budget_s = order.latency_budget.tool_call_ms / 1000
    bound_s = budget_s + TOOL_TIMEOUT_S
    await asyncio.to_thread(backend.send_json, "PUT", "/_faults", {**fault, "path_prefix": "/orders"})
    async with ToolRunner(intent_map.tools_config, base_url=backend.url) as runner:
        calls = list(await asyncio.gather(*(_order_call(n, intent_map, classifier, runner) for n in range(CALLS))))
        await asyncio.to_thread(backend.send_json, "DELETE", "/_faults", {})
        for breaker in runner.breakers.values():  # the control call must not meet the open circuit
            breaker.record_success()
        control = await _order_call(99, intent_map, classifier, runner)

    figures: list[dict[str, Any]] = []
    for call in calls:
        assert call.tool_calls and call.tool_calls[0].name == "lookup_order", call.said
        assert call.transferred is not None, [h.text for h in call.said]
        assert call.transfer_t is not None and call.tool_started_t is not None
        figures.append({"error": _error_of(call.tool_outcomes[0]), "reason": call.transferred.reason,
                        "handoff_after_tool_s": round(call.transfer_t - call.tool_started_t, 3),
                        "ack": any(h.text.startswith("One moment") for h in call.said)})
        assert call.transferred.reason == "tool_error"
        assert call.transferred.queue in intent_map.spec.queues, call.transferred
        ctx = call.transferred.context
        assert ctx.get("intent") == "order_status", ctx
        assert "4567" in str(ctx), ctx  # the order number the caller gave travels with them
        assert call.transfer_t - call.tool_started_t <= bound_s + MARGIN_S, figures[-1]
    print(f"\nBACKEND FAULT {fault}: bound {bound_s:.1f} s (+{MARGIN_S} s margin); "
          f"errors {dict(Counter(f['error'] for f in figures))}; "
          f"slowest handoff {max(f['handoff_after_tool_s'] for f in figures)} s; "
          f"acknowledged {sum(f['ack'] for f in figures)}/{CALLS}")
    assert len(figures) == CALLS  # 100 % of the affected calls handed off
    # the same call with a healthy backend is answered, not handed off: the faults made the difference
    assert control.transferred is None, [h.text for h in control.said]
    assert any("has shipped" in h.text for h in control.said), [h.text for h in control.said]
