"""``ari-agent chat``: talk to the conversation engine by typing, with real tools.

The same ``ConversationEngine`` as on a phone call, with the real ``ToolRunner``. Unless
``--backend-url`` is given, the demo backend runs in-process on a free loopback port over a
temporary SQLite database. ``--script FILE`` plays a caller script (one caller line per line;
``#dtmf 4567``, ``#silence``, ``#bargein <heard>``, ``#killswitch``: see
``ari_agent.conversation.script``) and prints the transcript with every action taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from ari_agent.call.actions import ActionInterpreter, action_record, event_line
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.conversation.script import Control, ScriptError, parse_script_line
from ari_agent.devtools.demo_backend import running_demo_backend
from ari_agent.errors import AriAgentError
from ari_agent.seam import (
    Action,
    CallStarted,
    CallTool,
    Event,
    Hangup,
    Listen,
    Say,
    Timeout,
    ToolResult,
    Transfer,
    Utterance,
)
from ari_agent.yaml_source import NotUtf8, decode_utf8

INDENT = "        "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", default=str(DEMO_MAP_PATH), help="intent map YAML (default: the demo map)")
    parser.add_argument("--script", help="caller script: one caller line per line (#dtmf 4567, #silence, ...)")
    parser.add_argument("--backend-url", help="tools backend base URL (default: start the demo backend in-process)")
    parser.add_argument("--kill-switch", action="store_true", help="transfer-only mode: every turn ends in a transfer")
    parser.add_argument("--today", type=date.fromisoformat, help="the date the engine and demo data assume "
                                                                  "(YYYY-MM-DD; default: today)")
    parser.add_argument("--caller-id", default="+15551230001", help="caller id the call starts with")
    parser.add_argument("--call-id", default="chat-1", help="call id (idempotency keys derive from it)")
    parser.add_argument("--lexical", action="store_true", help="lexical classifier only (no sentence embeddings)")
    parser.add_argument("--redis-url", help="queue slow writes (async_write tools) on this redis, for an `ari-agent "
                                            "worker` to send (default: no redis, they are sent at once)")


def register(sub: Any) -> None:
    parser = sub.add_parser("chat", help="talk to the conversation engine by text (real tools, demo backend)",
                            description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    intent_map = load_intent_map(args.map)
    lines: list[str] | None = None
    if args.script:
        try:
            lines = decode_utf8(Path(args.script).read_bytes()).splitlines()
        except NotUtf8 as exc:
            raise AriAgentError(f"{args.script}:{exc.line}: {exc}") from None
        except OSError as exc:
            raise AriAgentError(f"cannot read script {args.script}: {exc.strerror or exc}") from None
        for n, line in enumerate(lines, 1):
            try:
                parse_script_line(line)
            except ScriptError as exc:
                raise AriAgentError(f"{args.script}:{n}: {exc}") from None
    return asyncio.run(_chat(args, intent_map, lines, sys.stdout))


async def _chat(args: argparse.Namespace, intent_map: IntentMap, lines: list[str] | None, out: TextIO) -> int:
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.integrations.runner import ToolRunner

    classifier = build_classifier(intent_map.nlu_intents(), embeddings=False if args.lexical else None)
    today = args.today or date.today()
    engine = ConversationEngine(intent_map, classifier, call_id=args.call_id, kill_switch=args.kill_switch,
                                today=today)
    write = _writer(out)
    where = f"backend {args.backend_url}" if args.backend_url else "in-process demo backend"
    write(f"# ari-agent chat: map {Path(args.map).name}, {where}, today {today.isoformat()}"
          + (", kill switch ON" if args.kill_switch else ""))
    async with _backend(args.backend_url, today) as base_url:
        async with ToolRunner(intent_map.tools_config, base_url=base_url, redis_url=args.redis_url) as runner:
            chat = TextCall(engine, runner.run, write)
            await chat.play(CallStarted(caller_id=args.caller_id))
            source = iter(lines) if lines is not None else None
            echo = lines is not None or not sys.stdin.isatty()  # a typist sees their own line
            leftover = 0
            while True:
                line = next(source, None) if source is not None else await _read_stdin_line()
                if line is None:
                    break
                try:
                    item = parse_script_line(line)
                except ScriptError as exc:
                    write(f"{INDENT}[script error: {exc}]")
                    continue
                if item is None:
                    continue
                if engine.ended:
                    leftover += 1
                    continue
                if isinstance(item, Control):
                    if item.kind == "hangup":
                        write(f"{INDENT}[caller hung up]")
                        break
                    engine.kill_switch = True
                    write(f"{INDENT}[kill switch turned on]")
                    await chat.play(Timeout("silence"), label=False)
                    continue
                await chat.play(item, label=echo or not isinstance(item, Utterance))
                if engine.ended and lines is None:
                    break
            if leftover:
                write(f"{INDENT}[call already ended; {leftover} script line(s) not used]")
            elif not engine.ended:
                write(f"{INDENT}[end of script; call still open in phase '{engine.state.phase}']")
    return 0


@asynccontextmanager
async def _backend(url: str | None, today: date) -> AsyncIterator[str]:
    if url:
        yield url.rstrip("/")
        return
    async with running_demo_backend(today) as started:
        yield started


async def _read_stdin_line() -> str | None:
    """One typed line, read in a thread so the in-process backend keeps serving; None at EOF."""
    try:
        return await asyncio.to_thread(input, "caller> " if sys.stdin.isatty() else "")
    except EOFError:
        return None


class TextCall:
    """The engine's actions carried out on text: prompts printed, tools run, answers from the script
    (the same interpreter as a live call, so the same conversation mints the same actions and keys)."""

    def __init__(self, engine: ConversationEngine, run_tool: Callable[[CallTool], Awaitable[ToolResult]],
                 write: Callable[[str], None]) -> None:
        self.run_tool = run_tool
        self.write = write
        self.interpreter = ActionInterpreter(self._decide, self, observe=lambda a: write(_action_line(a)))
        self.engine = engine

    async def play(self, event: Event, *, label: bool = True) -> None:
        """Feed ``event`` to the engine, carry out its actions (running tools), print everything."""
        if label:
            self.write(event_line(event))
        await self.interpreter.feed(event)

    async def _decide(self, event: Event) -> list[Action]:
        return self.engine.handle(event)

    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        return None

    async def listen(self, action: Listen) -> Event | None:
        return None  # the caller's next line is the answer

    async def call_tool(self, action: CallTool) -> Event:
        result = await self.run_tool(action)
        self.write(_result_line(result))
        return result

    async def transfer(self, action: Transfer) -> None:
        return None

    async def hangup(self, action: Hangup) -> None:
        return None


def _writer(out: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    return write


def _action_line(action: Action) -> str:
    r = action_record(action)
    kind = r["kind"]
    if kind == "say":
        return f"AGENT   {r['text']}"
    if kind == "listen":
        return f"{INDENT}[listen: {r['detail']}, {r['timeout_s']:g}s]"
    if kind == "tool":
        return f"{INDENT}[tool {r['name']} {json.dumps(r['args'], sort_keys=True)} key={r['key']}]"
    if kind == "transfer":
        ctx = "; ".join(f"{k}={v}" for k, v in r["context"].items() if v)
        return f"{INDENT}[TRANSFER to queue '{r['queue']}', reason {r['reason']}]\n{INDENT}[context: {ctx}]"
    return f"{INDENT}[HANGUP: {r['reason']}]"


def _result_line(result: ToolResult) -> str:
    if result.ok:
        data = {k: v for k, v in result.data.items() if not isinstance(v, (list, dict))}
        queued = " (queued)" if result.submitted else ""
        return f"{INDENT}[result ok{queued} {json.dumps(data, sort_keys=True, default=str)}]"
    return f"{INDENT}[result error {result.error}: {result.data.get('detail', '')}]"
