"""Handing the caller to a human queue: the call's context in inherited channel variables, then the
caller continues in the dialplan to ``Queue()``."""

from __future__ import annotations

import logging
import re

from ari_agent.telephony.ari import AriClient, AriError, AriUnreachable

log = logging.getLogger(__name__)


def handoff_variables(reason: str, context: dict[str, str]) -> dict[str, str]:
    """Channel variables for a handoff: ``__ARI_AGENT_<KEY>`` (the ``__`` makes the queue member's
    channel inherit them, so the screen-pop sees them). Keys are made safe for the dialplan."""
    renamed = {"verified_identity": "verified"}
    out = {"__ARI_AGENT_INTENT": "", "__ARI_AGENT_SUMMARY": "", "__ARI_AGENT_VERIFIED": "none"}
    for key, value in context.items():
        safe = re.sub(r"[^A-Za-z0-9]+", "_", renamed.get(key, key)).strip("_").upper()
        if safe:
            out[f"__ARI_AGENT_{safe}"] = str(value)[:500]
    out["__ARI_AGENT_REASON"] = reason
    return out


async def send_to_queue(ari: AriClient, channel_id: str, context_name: str, queue: str, reason: str,
                        context: dict[str, str]) -> bool:
    """Set the handoff variables on the caller's channel and continue it to ``queue``; False (logged)
    when ARI refused or was unreachable (the caller is still ours then)."""
    try:
        for name, value in handoff_variables(reason, context).items():
            await ari.set_variable(channel_id, name, value)
        await ari.continue_in_dialplan(channel_id, context_name, queue)
    except (AriError, AriUnreachable) as exc:
        log.error("channel %s: handoff to %s failed: %s", channel_id, queue, exc)
        return False
    return True
