"""What the agent is allowed to do, checked apart from the dialogue logic that wants to do it.

- Tools: an intent may call only the tools on its allowlist, only after the verification it needs,
  and a tool that writes only after the caller said yes to the confirmation question.
- Restricted intents: ``handoff: always`` ones never run; others need strong verification.
- Kill switch (transfer-only mode, state passed in by the caller of the engine): no Listen and no
  CallTool leave the engine; every turn ends in a Transfer.

``Policy.gate`` is the last step of every ``ConversationEngine.handle``: whatever the dialogue logic
produced, the actions that leave the engine obey these rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ari_agent.conversation.intent_map import VERIFICATION_RANK, IntentDefinition, IntentMap
from ari_agent.seam import Action, CallTool, Hangup, Listen, Say, Transfer

TRANSFER_ONLY_ACTIONS: tuple[type, ...] = (Say, Transfer, Hangup)


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str


class Policy:
    def __init__(self, intent_map: IntentMap, *, kill_switch: bool = False) -> None:
        self.map = intent_map
        self.kill_switch = kill_switch
        verification = intent_map.spec.verification
        self.verify_tool = verification.tool if verification else None
        # the record lookup runs before the caller is verified, like the verification itself (it reads only,
        # and what it returns is never said: intent_map.RecordLookup)
        self.identity_tools = frozenset(
            t for t in (self.verify_tool, verification.record.tool if verification and verification.record else None)
            if t is not None)

    def must_hand_off(self, intent: IntentDefinition) -> bool:
        return intent.handoff == "always" or not intent.enabled

    def check_tool_call(
        self, intent: IntentDefinition, tool: str, *, verified: str, confirmed: bool
    ) -> Violation | None:
        """Why ``intent`` may not call ``tool`` now, or None when it may."""
        if self.kill_switch:
            return Violation("kill_switch", "transfer-only mode")
        if self.must_hand_off(intent):
            return Violation("restricted", f"intent '{intent.name}' is handled by people only")
        if tool not in intent.tools:
            return Violation("allowlist", f"tool '{tool}' is not allowed for intent '{intent.name}'")
        info = self.map.tools.get(tool)
        if info is None:
            return Violation("allowlist", f"tool '{tool}' is not defined")
        if tool not in self.identity_tools and VERIFICATION_RANK[verified] < VERIFICATION_RANK[intent.verification]:
            return Violation("verification", f"'{intent.name}' needs {intent.verification} verification, "
                                             f"caller has {verified}")
        if intent.restricted and intent.verification == "strong" and tool not in self.identity_tools \
                and verified != "strong":
            return Violation("restricted", f"'{intent.name}' needs strong verification")
        if info.write and not confirmed:
            return Violation("confirmation", f"tool '{tool}' writes and the caller has not confirmed")
        return None

    def gate(self, actions: Sequence[Action], transfer: Transfer) -> list[Action]:
        """The actions that may leave the engine; in transfer-only mode every turn ends in
        ``transfer`` (unless it already ends the call)."""
        if not self.kill_switch:
            return list(actions)
        kept: list[Action] = [a for a in actions if isinstance(a, TRANSFER_ONLY_ACTIONS)]
        if not kept or not isinstance(kept[-1], (Transfer, Hangup)):
            says: list[Action] = [a for a in kept if isinstance(a, Say)]
            kept = [*says, transfer]
        return kept


def is_listening(actions: Sequence[Action]) -> bool:
    return any(isinstance(a, Listen) for a in actions)


def tool_calls(actions: Sequence[Action]) -> list[CallTool]:
    return [a for a in actions if isinstance(a, CallTool)]
