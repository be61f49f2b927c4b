"""Per-call routing at the front door, answered over FastAGI (``AGI(agi://host:port/route)``).

``route_call`` is pure: a dialled number can be switched off (or only some enabled), and a pilot
percentage of callers goes to the agent, chosen deterministically by caller id (the same caller always
lands on the same side, so a pilot is a stable cohort, not a coin flip per call). The handler writes
the decision into channel variables the dialplan branches on (``dialplan/agi-entry.conf``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from ari_agent.config import AgiRoutingConfig
from ari_agent.telephony.agi import AgiChannel, AgiRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    target: str  # "agent" | "queue"
    queue: str
    reason: str


def pilot_bucket(key: str) -> float:
    """0 <= bucket < 100, stable for a key."""
    digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % 10000 / 100


def route_call(cfg: AgiRoutingConfig, *, caller: str, did: str, uniqueid: str = "") -> RouteDecision:
    if did and did in cfg.disabled_dids:
        return RouteDecision("queue", cfg.queue, "did_disabled")
    if cfg.enabled_dids and did not in cfg.enabled_dids:
        return RouteDecision("queue", cfg.queue, "did_not_enabled")
    key = caller if caller and caller.lower() not in ("unknown", "anonymous") else uniqueid
    if pilot_bucket(key) < cfg.pilot_percent:
        return RouteDecision("agent", cfg.queue, "pilot")
    return RouteDecision("queue", cfg.queue, "outside_pilot")


class AgiRouter:
    """The FastAGI handler for ``/route``."""

    def __init__(self, cfg: AgiRoutingConfig) -> None:
        self.cfg = cfg
        self.decisions: list[RouteDecision] = []

    async def __call__(self, request: AgiRequest, channel: AgiChannel) -> None:
        if request.script != "route":
            await channel.set_variable("ARI_AGENT_ROUTE", "queue")
            await channel.set_variable("ARI_AGENT_ROUTE_QUEUE", self.cfg.queue)
            await channel.set_variable("ARI_AGENT_ROUTE_REASON", "unknown_script")
            return
        did = request.get("arg_1") or request.get("dnid") or request.get("extension")
        decision = route_call(self.cfg, caller=request.get("callerid"), did=did, uniqueid=request.get("uniqueid"))
        self.decisions.append(decision)
        log.info("route %s (did %s): %s (%s)", request.get("uniqueid"), request.get("dnid"), decision.target,
                 decision.reason)
        await channel.set_variable("ARI_AGENT_ROUTE", decision.target)
        await channel.set_variable("ARI_AGENT_ROUTE_QUEUE", decision.queue)
        await channel.set_variable("ARI_AGENT_ROUTE_REASON", decision.reason)
