"""``ari-agent classify [FILE]``: which intent each line of FILE (or stdin) asks for, and the slots it gives.

Exactly one JSON object per input line, in order, none dropped: ``{"text", "intent", "confidence",
"slots"}``; ``"intent"`` is null when the request is out of scope or the line is blank (``"text": ""``);
``"slots"`` holds what the slot parsers take from the line for that intent's slots (canonical values:
"4567", "2026-03-10", "15:30"). Input that is not UTF-8 is refused with one line naming the file, the
line and the byte offset (the lines before it have been answered).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import date
from typing import IO, Any, TextIO

from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.conversation.routing import IntentRouter
from ari_agent.conversation.slots import extract_slots
from ari_agent.errors import AriAgentError
from ari_agent.yaml_source import NotUtf8, decode_utf8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default="-", help="utterances, one per line (default: stdin)")
    parser.add_argument("--map", default=str(DEMO_MAP_PATH), help="intent map YAML (default: the demo map)")
    parser.add_argument("--today", type=date.fromisoformat, help="date relative dates resolve against (YYYY-MM-DD)")
    parser.add_argument("--lexical", action="store_true", help="lexical classifier only (no sentence embeddings)")


def register(sub: Any) -> None:
    parser = sub.add_parser("classify", help="classify utterances, one per line of FILE or stdin (one JSON line each)",
                            description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    intent_map = load_intent_map(args.map)
    today = args.today or date.today()
    if args.input == "-":
        buffer = getattr(sys.stdin, "buffer", None)  # absent when stdin is replaced by a text stream
        lines = utf8_lines(buffer, "<stdin>") if buffer is not None else sys.stdin
        classify_stream(intent_map, lines, sys.stdout, today=today, lexical=args.lexical)
        return 0
    try:
        with open(args.input, "rb") as source:
            classify_stream(intent_map, utf8_lines(source, args.input), sys.stdout, today=today,
                            lexical=args.lexical)
    except OSError as exc:
        raise AriAgentError(f"cannot read {args.input}: {exc.strerror or exc}") from None
    return 0


def utf8_lines(source: IO[bytes], name: str) -> Iterator[str]:
    """The lines of a byte stream decoded as UTF-8, one at a time (a pipe is answered as it comes);
    the first byte that is not UTF-8 ends it with an AriAgentError naming ``name``, line and offset."""
    offset = 0
    for n, raw in enumerate(source, 1):
        try:
            yield decode_utf8(raw, base_offset=offset, base_line=n)
        except NotUtf8 as exc:
            raise AriAgentError(f"{name}:{exc.line}: {exc}") from None
        offset += len(raw)


def classify_stream(
    intent_map: IntentMap, source: Iterable[str], out: TextIO, *, today: date, lexical: bool = False
) -> int:
    """Classify each line of ``source``, one JSON line out per line in (a blank line gets
    ``"text": ""`` and no intent); returns how many lines were written."""
    from ari_agent.conversation.nlu import build_classifier

    router = IntentRouter(intent_map, build_classifier(intent_map.nlu_intents(),
                                                       embeddings=False if lexical else None))
    written = 0
    for line in source:
        text = line.strip()
        if not text:
            blank: dict[str, Any] = {"text": "", "intent": None, "confidence": 0.0, "slots": {}}
            out.write(json.dumps(blank) + "\n")
            out.flush()
            written += 1
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
