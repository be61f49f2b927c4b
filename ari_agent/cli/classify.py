"""``ari-agent classify``: which intent each line of stdin asks for, and the slots it gives.

One JSON object per input line: ``{"text", "intent", "confidence", "slots"}``; ``"intent"`` is null
when the request is out of scope; ``"slots"`` holds what the slot parsers take from the line for
that intent's slots (canonical values: "4567", "2026-03-10", "15:30").
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any, TextIO

from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.conversation.routing import IntentRouter
from ari_agent.conversation.slots import extract_slots


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", default=str(DEMO_MAP_PATH), help="intent map YAML (default: the demo map)")
    parser.add_argument("--today", type=date.fromisoformat, help="date relative dates resolve against (YYYY-MM-DD)")
    parser.add_argument("--lexical", action="store_true", help="lexical classifier only (no sentence embeddings)")


def register(sub: Any) -> None:
    parser = sub.add_parser("classify", help="classify utterances from stdin (one JSON line each)",
                            description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    intent_map = load_intent_map(args.map)
    classify_stream(intent_map, sys.stdin, sys.stdout, today=args.today or date.today(), lexical=args.lexical)
    return 0


def classify_stream(intent_map: IntentMap, source: TextIO, out: TextIO, *, today: date, lexical: bool = False) -> int:
    """Classify each non-empty line of ``source``; returns how many lines were written."""
    from ari_agent.conversation.nlu import build_classifier

    router = IntentRouter(intent_map, build_classifier(intent_map.nlu_intents(),
                                                       embeddings=False if lexical else None))
    written = 0
    for line in source:
        text = line.strip()
        if not text:
            continue
        route = router.route(text)
        slots: dict[str, str] = {}
        intent = intent_map.intent(route.intent) if route.intent else None
        if intent is not None:
            found = extract_slots(intent.slots, text, today=today, date_order=intent_map.spec.date_order)
            slots = {name: v.value for name, v in found.items()}
        record = {"text": text, "intent": route.intent, "confidence": round(route.confidence, 4), "slots": slots}
        out.write(json.dumps(record) + "\n")
        out.flush()
        written += 1
    return written
