"""Cleaning up after a dead agent process, in Asterisk (the decisions are call/orphans.py's).

Run by the call manager on every connect of the events WebSocket, and by ``ari-agent run`` once
before it loads its models (a voice deployment can take seconds to load them, and the callers the
dead process left in ``Stasis()`` should not wait for that). Needs only ARI's REST interface: a
channel in Stasis can be continued by any ARI client.

A caller handed over here gets reason ``agent_restart`` and whatever context survives: the handoff
record in Redis under the call id the dead process wrote on the channel (``ARI_AGENT_CALL_ID``), else
one line saying nothing was kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ari_agent.call.handoff import send_to_queue
from ari_agent.call.handoff_store import HandoffStore
from ari_agent.call.orphans import CleanupPlan, plan_cleanup
from ari_agent.config import Config
from ari_agent.metrics import ORPHANS_CLEANED
from ari_agent.telephony.ari import AriClient, AriConflict, AriError, AriNotFound, AriUnprocessable, AriUnreachable
from ari_agent.telephony.events import Channel

log = logging.getLogger(__name__)

LEASE_VARIABLE = "TIMEOUT(absolute)"  # the dialplan's dead man's switch (dialplan/inbound.conf)
CALL_ID_VARIABLE = "ARI_AGENT_CALL_ID"  # on the caller's channel: finds the call's context after a restart
RESTART_SUMMARY = "The automated agent restarted during this call; what it had gathered was not kept."


async def quietly(coro: Awaitable[None]) -> None:
    """Await an ARI call whose failure changes nothing: the channel left Stasis or is gone."""
    try:
        await coro
    except (AriNotFound, AriUnprocessable, AriConflict):
        pass
    except (AriError, AriUnreachable) as exc:
        log.warning("%s", exc)


async def send_unserved(ari: AriClient, cfg: Config, channel_id: str, reason: str, context: dict[str, str]) -> bool:
    """A caller this process will not serve → the fallback queue. Its lease stays armed until the
    dialplan drops it in ``[agent-handoff]``: if this handoff fails, the lease still moves the caller."""
    ok = await send_to_queue(ari, channel_id, cfg.agent.handoff_context, cfg.agent.handoff_extension, reason,
                             context)
    if ok:
        log.warning("channel %s: not served by this agent, sent to %s (%s)", channel_id,
                    cfg.agent.handoff_extension, reason)
    return ok


async def pass_on(ari: AriClient, cfg: Config, channel: Channel, reason: str) -> bool:
    """A new caller this process will not serve (draining) → the next agent the dialplan lists, when
    there is one it has not tried yet (dialplan/inbound.conf: ``AGENT_I`` < ``AGENT_N`` - 1, label
    ``next``), else the fallback queue. Each pass moves ``AGENT_I`` forward, so a caller is passed on at
    most once per agent and ends in the queue when every agent is draining or absent."""
    try:
        tried = int(await ari.get_variable(channel.id, "AGENT_I") or -1)
        agents = int(await ari.get_variable(channel.id, "AGENT_N") or 0)
    except (AriError, AriUnreachable, ValueError):
        tried, agents = -1, 0
    if 0 <= tried < agents - 1 and channel.dialplan_context:
        try:
            await ari.set_variable(channel.id, "__ARI_AGENT_REASON", reason)  # if the rest fail: the queue
            await ari.continue_in_dialplan(channel.id, channel.dialplan_context, channel.dialplan_exten or "agent",
                                           label="next")
        except (AriError, AriUnreachable) as exc:
            log.warning("channel %s: passing on to the next agent failed (%s); to the queue", channel.id, exc)
        else:
            log.warning("channel %s: not served by this agent (%s), passed on to the next agent (%d of %d)",
                        channel.id, reason, tried + 2, agents)
            return True
    return await send_unserved(ari, cfg, channel.id, reason, {})


async def restart_context(ari: AriClient, cfg: Config, channel_id: str) -> dict[str, str]:
    """Whatever context survives for an orphaned caller (see the module docstring)."""
    fallback = {"summary": RESTART_SUMMARY}
    try:
        call_id = await ari.get_variable(channel_id, CALL_ID_VARIABLE)
    except (AriError, AriUnreachable):
        return fallback
    if not call_id:
        return fallback
    store = HandoffStore(cfg.redis.url, timeout_s=0.5)
    try:
        record = await asyncio.wait_for(store.get(call_id), 1.0)
    except TimeoutError:
        record = None
    finally:
        await store.close()
    if not record:
        return {**fallback, "call_id": call_id}
    out = {"call_id": call_id, "summary": str(record.get("summary") or RESTART_SUMMARY)}
    for key in ("intent", "verification"):
        if record.get(key):
            out["verified" if key == "verification" else key] = str(record[key])
    return out


async def _application(ari: AriClient, app: str) -> dict[str, Any]:
    """The app's subscriptions; none when Asterisk does not know it (no connection and nothing in its
    Stasis: a fresh start)."""
    try:
        return await ari.application(app)
    except AriNotFound:
        return {}


def _nothing_served() -> tuple[Sequence[str], Sequence[str]]:
    return (), ()


async def sweep_orphans(
    ari: AriClient,
    cfg: Config,
    *,
    served: Callable[[], tuple[Sequence[str], Sequence[str]]] = _nothing_served,
    on_reclaim: Callable[[str], None] | None = None,
    grace_s: float | None = None,
) -> CleanupPlan:
    """List, wait ``lifecycle.reconcile_grace_s``, decide (``served()`` = the channel and bridge ids live
    sessions own, read after the wait), then act: orphaned callers → queue, our media channels hung up,
    our bridges destroyed. ARI errors while listing propagate; errors per item are logged."""
    started = time.monotonic()
    app = cfg.ari.app
    channels, bridges, application = await asyncio.gather(
        ari.list_channels(), ari.list_bridges(), _application(ari, app))
    # A channel listed here may have entered Stasis just now, its StasisStart still on the wire:
    # give it a moment to reach a session before calling it an orphan.
    grace = cfg.lifecycle.reconcile_grace_s if grace_s is None else grace_s
    if grace:
        await asyncio.sleep(grace)
    served_channels, live_bridges = served()
    plan = plan_cleanup(app, channels, bridges, application, served_channels, live_bridges)
    if plan.is_empty():
        return plan
    if on_reclaim is not None:
        for cid in plan.handoff:
            on_reclaim(cid)
    contexts = await asyncio.gather(*(restart_context(ari, cfg, cid) for cid in plan.handoff))
    sent = await asyncio.gather(*(send_unserved(ari, cfg, cid, "agent_restart", ctx)
                                  for cid, ctx in zip(plan.handoff, contexts, strict=True)))
    await asyncio.gather(*(quietly(ari.hangup(cid)) for cid in plan.hangup))
    await asyncio.gather(*(quietly(ari.destroy_bridge(bid)) for bid in plan.destroy))
    ORPHANS_CLEANED.labels("caller").inc(sum(sent))
    ORPHANS_CLEANED.labels("media_channel").inc(len(plan.hangup))
    ORPHANS_CLEANED.labels("bridge").inc(len(plan.destroy))
    log.warning("orphan cleanup: %d caller(s) sent to %s (%d refused), %d media channel(s) hung up, "
                "%d bridge(s) destroyed in %.0f ms", len(plan.handoff), cfg.agent.handoff_extension,
                len(plan.handoff) - sum(sent), len(plan.hangup), len(plan.destroy),
                1000 * (time.monotonic() - started))
    return plan
