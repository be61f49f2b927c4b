"""The one action interpreter: its ordering rules, and the same keys from chat and from a call."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from ari_agent.call.actions import ActionInterpreter, action_record
from ari_agent.cli.chat import TextCall
from ari_agent.conversation.engine import ConversationEngine
from ari_agent.conversation.intent_map import IntentMap
from ari_agent.conversation.nlu import IntentClassifier
from ari_agent.conversation.script import parse_script_line
from ari_agent.integrations.runner import ToolRunner
from ari_agent.seam import (
    Action,
    BargeIn,
    CallStarted,
    CallTool,
    Event,
    Expectation,
    Hangup,
    Listen,
    Say,
    ToolResult,
    Transfer,
    Utterance,
)

from .conftest import Harness

SCRIPTS = Path(__file__).resolve().parents[2] / "data" / "conversation" / "scripts"


class Recorder:
    """An ActionHandler that records what it is asked to do and answers from a plan."""

    def __init__(self, barge_on: str | None = None) -> None:
        self.done: list[str] = []
        self.barge_on = barge_on

    async def say(self, action: Say, rest: Sequence[Action]) -> Event | None:
        self.done.append(f"say {action.text}")
        return BargeIn(heard_text=action.text) if action.text == self.barge_on else None

    async def listen(self, action: Listen) -> Event | None:
        self.done.append("listen")
        return None

    async def call_tool(self, action: CallTool) -> Event:
        self.done.append(f"tool {action.name}")
        return ToolResult(call_id=action.call_id, ok=True)

    async def transfer(self, action: Transfer) -> None:
        self.done.append(f"transfer {action.queue}")

    async def hangup(self, action: Hangup) -> None:
        self.done.append("hangup")


def scripted(plan: dict[str, list[Action]]) -> Callable[[Event], Awaitable[list[Action]]]:
    async def decide(event: Event) -> list[Action]:
        return plan.get(type(event).__name__, [])

    return decide


async def test_an_event_from_an_action_is_answered_before_the_rest_of_the_batch() -> None:
    tool = CallTool(name="lookup", args={}, idempotency_key="k", call_id="c-t1")
    handler = Recorder()
    decide = scripted({"CallStarted": [tool, Say("after")], "ToolResult": [Say("result")]})
    await ActionInterpreter(decide, handler).feed(CallStarted())
    assert handler.done == ["tool lookup", "say result", "say after"]


async def test_barge_in_drops_the_rest_of_the_batch_and_transfer_ends_the_call() -> None:
    handler = Recorder(barge_on="first")
    decide = scripted({"CallStarted": [Say("first"), Say("moot"), Listen()],
                       "BargeIn": [Say("again"), Transfer("support", "caller_request"), Say("never")]})
    interpreter = ActionInterpreter(decide, handler)
    await interpreter.feed(CallStarted())
    assert handler.done == ["say first", "say again", "transfer support"]
    assert interpreter.ended


def test_action_records_name_every_detail() -> None:
    listen = Listen(Expectation(kind="digits", slot="order_number", min_digits=4, max_digits=8, dtmf=True), 8.0)
    assert action_record(listen) == {"kind": "listen", "expect": "digits", "timeout_s": 8.0,
                                     "detail": "digits, slot order_number, 4-8 digits, keypad ok"}
    assert action_record(Hangup("completed")) == {"kind": "hangup", "reason": "completed"}


async def test_chat_and_a_call_mint_the_same_idempotency_keys(
        demo_map: IntentMap, classifier: IntentClassifier, backend_url: str,
        start_call: Callable[..., Awaitable[Harness]]) -> None:
    lines = [ln for ln in (SCRIPTS / "account_unlock.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    # 1. through ari-agent chat's text call
    out = io.StringIO()
    engine = ConversationEngine(demo_map, classifier, call_id="same-call")
    async with ToolRunner(demo_map.tools_config, base_url=backend_url) as runner:
        chat = TextCall(engine, runner.run, lambda text: out.write(text + "\n"))
        await chat.play(CallStarted(caller_id="+15551230001"))
        for line in lines:
            item = parse_script_line(line)
            assert isinstance(item, Utterance)
            await chat.play(item)
    chat_keys = [ln.split("key=")[1].rstrip("]") for ln in out.getvalue().splitlines() if "[tool " in ln]
    # 2. the same conversation spoken on a (fake) call through the voice loop
    h = await start_call(lines, call_id="same-call")
    for turn in range(1, len(lines) + 1):
        await h.until_listening(turn)
        await h.line.say()
    await h.finished()
    call_keys = [e["key"] for e in h.conversation.events if e["kind"] == "tool"]
    assert len(chat_keys) == 2 and chat_keys[0].startswith("account_unlock-")
    assert call_keys == chat_keys, (chat_keys, call_keys)
