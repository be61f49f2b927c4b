"""CPU time per engine turn, classification included: ``engine_turn_benchmark(n)``.

Plays a fixed set of demo conversations (tools answered with canned results, no I/O) through
fresh ``ConversationEngine`` instances until ``n`` caller turns (utterances and key presses) have been
timed, and reports per-turn percentiles in milliseconds. Slot answers cost microseconds; open turns
pay for classification, timed without the encoder's per-text cache. The target is p95 <= 20 ms: the engine's
share of the time between the caller's last word and the agent's first.
"""

from __future__ import annotations

import statistics
import time
from datetime import date
from typing import Any

from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap, load_intent_map
from ari_agent.conversation.nlu import IntentClassifier, build_classifier
from ari_agent.seam import CallStarted, CallTool, Dtmf, Event, ToolResult, Utterance

TARGET_P95_MS = 20.0
TODAY = date(2026, 3, 4)

_APPOINTMENT = {"appointment_id": "A-100", "customer_id": "C-1001", "date": "2026-03-07", "time": "10:30",
                "status": "booked", "description": "boiler service"}
CANNED: dict[str, dict[str, Any]] = {
    "lookup_order": {"order_number": "4567", "status": "shipped", "eta": "2026-03-12", "carrier": "UPS"},
    "verify_identity": {"verified": True, "level": "full", "customer_id": "C-1001"},
    "get_appointment": _APPOINTMENT,
    "confirm_appointment": {**_APPOINTMENT, "status": "confirmed"},
    "reschedule_appointment": {**_APPOINTMENT, "date": "2026-03-10", "time": "15:30"},
    "unlock_account": {"customer_id": "C-1001", "locked": False, "was_locked": True},
    "faq": {"topic": "address", "answer": "42 Harbour Street, Riverside."},
}
CONVERSATIONS: tuple[tuple[str, ...], ...] = (
    ("hi, where's my order", "four five six seven", "what are your opening hours", "no thanks"),
    ("I need to reschedule my appointment to next Tuesday at half past three", "#1001", "SW1A 1AA", "yes",
     "no that's all"),
    ("is my appointment still on", "1001", "S W one A one A A", "yes please", "where are you located", "bye"),
    ("I'm locked out of my account", "1001", "SW1A 1AA", "April 12th 1985", "yes", "nope"),
    ("what's the weather like", "can I pay my bill"),
    ("um so my delivery hasn't arrived", "I don't have it", "#4567#", "that's all"),
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _forget_cached_embeddings(classifier: object) -> None:
    """The sentence encoder memoises embeddings per text; the conversations repeat, a caller does
    not: every timed turn starts uncached (the worst case)."""
    cache = getattr(getattr(classifier, "encoder", None), "_cache", None)
    if isinstance(cache, dict):
        cache.clear()


def _run_tools(engine: ConversationEngine, actions: list[Any]) -> None:
    pending = [a for a in actions if isinstance(a, CallTool)]
    while pending:
        call = pending.pop(0)
        more = engine.handle(ToolResult(call.call_id, True, CANNED.get(call.name, {})))
        pending += [a for a in more if isinstance(a, CallTool)]


def engine_turn_benchmark(
    n: int = 500,
    *,
    intent_map: IntentMap | None = None,
    classifier: IntentClassifier | None = None,
    embeddings: bool | None = None,
) -> dict[str, Any]:
    """Time ``n`` caller turns; returns turns, p50/p95/max/mean ms, the target and whether it is met.

    ``embeddings`` is passed to ``build_classifier`` when no classifier is given (None: use the
    sentence encoder when its model files are installed).
    """
    m = intent_map or load_intent_map()
    built_s = 0.0
    if classifier is None:
        t0 = time.perf_counter()
        classifier = build_classifier(m.nlu_intents(), embeddings=embeddings)
        built_s = time.perf_counter() - t0
    samples: list[float] = []
    calls = 0
    while len(samples) < n:
        for script in CONVERSATIONS:
            calls += 1
            engine = ConversationEngine(m, classifier, call_id=f"bench-{calls}", today=TODAY)
            _run_tools(engine, engine.handle(CallStarted(caller_id="+15551230001")))
            for line in script:
                if engine.ended or len(samples) >= n:
                    break
                event: Event = Dtmf(line[1:]) if line.startswith("#") else Utterance(line)
                _forget_cached_embeddings(classifier)
                # Process CPU time, not wall time: the figure is the engine's CPU cost, and the
                # machine may be shared (wall time then measures the neighbours too).
                t0 = time.process_time()
                actions = engine.handle(event)
                samples.append((time.process_time() - t0) * 1000.0)
                _run_tools(engine, actions)
            if len(samples) >= n:
                break
    p95 = _percentile(samples, 0.95)
    return {
        "turns": len(samples),
        "conversations": calls,
        "p50_ms": round(_percentile(samples, 0.50), 3),
        "p95_ms": round(p95, 3),
        "max_ms": round(max(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "classifier": type(classifier).__name__ + ("" if getattr(classifier, "encoder", None) is None
                                                   else " (with sentence embeddings)"),
        "classifier_build_s": round(built_s, 3),
        "encoder": getattr(getattr(classifier, "encoder", None), "backend", "none"),
        "clock": "process CPU time",
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": p95 <= TARGET_P95_MS,
    }


if __name__ == "__main__":  # python -m ari_agent.devtools.bench_engine [N] [--lexical]
    import json
    import sys

    count = next((int(a) for a in sys.argv[1:] if a.isdigit()), 500)
    print(json.dumps(engine_turn_benchmark(count, embeddings=False if "--lexical" in sys.argv else None), indent=2))
