"""Per-call routing at the front door, answered over FastAGI (``AGI(agi://host:port/route)``).

``route_call`` is pure. In order: transfer-only mode (the kill switch) sends every caller to the queue;
a dialled number can be switched off (or only some enabled); outside the agent's hours
(``agi.agent_hours``) callers go to the after-hours queue; then a pilot percentage of callers goes to
the agent, chosen deterministically by caller id (the same caller always lands on the same side, so a
pilot is a stable cohort, not a coin flip per call). The handler writes the decision into channel
variables the dialplan branches on (``dialplan/agi-entry.conf``).

``AgiRoutingService`` is the running service: the FastAGI server, the router and its own kill-switch
watch; ``ari-agent run`` starts it when ``agi.enabled`` is set.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ari_agent.config import AgiRoutingConfig, Config
from ari_agent.conversation.escalation import open_at
from ari_agent.errors import AriAgentError
from ari_agent.governance.killswitch import KillSwitchWatch
from ari_agent.telephony.agi import AgiChannel, AgiRequest, FastAgiServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    target: str  # "agent" | "queue"
    queue: str
    reason: str  # kill_switch | did_disabled | did_not_enabled | after_hours | pilot | outside_pilot


def pilot_bucket(key: str) -> float:
    """0 <= bucket < 100, stable for a key."""
    digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
    return int.from_bytes(digest[:8], "big") % 10000 / 100


def route_call(cfg: AgiRoutingConfig, *, caller: str, did: str, uniqueid: str = "", kill_switch: bool = False,
               now: datetime | None = None) -> RouteDecision:
    """``now``: the local time for ``agent_hours`` (None: hours are not checked)."""
    if kill_switch and cfg.follow_kill_switch:
        return RouteDecision("queue", cfg.queue, "kill_switch")
    if did and did in cfg.disabled_dids:
        return RouteDecision("queue", cfg.queue, "did_disabled")
    if cfg.enabled_dids and did not in cfg.enabled_dids:
        return RouteDecision("queue", cfg.queue, "did_not_enabled")
    if cfg.agent_hours and now is not None and not open_at(cfg.agent_hours, now):
        return RouteDecision("queue", cfg.after_hours_queue or cfg.queue, "after_hours")
    key = caller if caller and caller.lower() not in ("unknown", "anonymous") else uniqueid
    if pilot_bucket(key) < cfg.pilot_percent:
        return RouteDecision("agent", cfg.queue, "pilot")
    return RouteDecision("queue", cfg.queue, "outside_pilot")


def local_clock(cfg: AgiRoutingConfig) -> Callable[[], datetime]:
    """The wall clock ``agent_hours`` are read in (``agi.timezone``, else the host's local time)."""
    zone = ZoneInfo(cfg.timezone) if cfg.timezone else None
    return lambda: datetime.now(zone) if zone is not None else datetime.now()


class AgiRouter:
    """The FastAGI handler for ``/route``."""

    def __init__(self, cfg: AgiRoutingConfig, *, kill_switch: Callable[[], bool] = lambda: False,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        self.kill_switch = kill_switch
        self.clock = clock or local_clock(cfg)
        self.decisions: list[RouteDecision] = []

    async def __call__(self, request: AgiRequest, channel: AgiChannel) -> None:
        if request.script != "route":
            await channel.set_variable("ARI_AGENT_ROUTE", "queue")
            await channel.set_variable("ARI_AGENT_ROUTE_QUEUE", self.cfg.queue)
            await channel.set_variable("ARI_AGENT_ROUTE_REASON", "unknown_script")
            return
        did = request.get("arg_1") or request.get("dnid") or request.get("extension")
        decision = route_call(self.cfg, caller=request.get("callerid"), did=did, uniqueid=request.get("uniqueid"),
                              kill_switch=self.kill_switch(), now=self.clock())
        self.decisions.append(decision)
        del self.decisions[:-1000]
        log.info("route %s (did %s): %s (%s)", request.get("uniqueid"), request.get("dnid"), decision.target,
                 decision.reason)
        await channel.set_variable("ARI_AGENT_ROUTE", decision.target)
        await channel.set_variable("ARI_AGENT_ROUTE_QUEUE", decision.queue)
        await channel.set_variable("ARI_AGENT_ROUTE_REASON", decision.reason)


def parse_bind(text: str, what: str = "agi.bind") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise AriAgentError(f"{what} {text!r}: expected host:port, e.g. 127.0.0.1:4573")
    return host, int(port)


class AgiRoutingService:
    """The routing service of ``ari-agent run``: FastAGI server + router + kill-switch watch."""

    def __init__(self, cfg: Config) -> None:
        g = cfg.governance
        self.watch: KillSwitchWatch | None = None
        if cfg.agi.follow_kill_switch and g.killswitch:
            self.watch = KillSwitchWatch(cfg.redis.url, key=g.killswitch_key, override_file=g.killswitch_override_file,
                                         state_file=g.killswitch_state_file, poll_s=g.killswitch_poll_s)
        watch = self.watch
        self.router = AgiRouter(cfg.agi, kill_switch=(lambda: watch.on) if watch is not None else (lambda: False))
        self.server = FastAgiServer(self.router, header_timeout_s=cfg.agi.header_timeout_s)
        self.bind = parse_bind(cfg.agi.bind)
        self.port = 0

    async def start(self) -> int:
        """Listen (the port actually bound); raises AriAgentError when the address is taken."""
        if self.watch is not None:
            await self.watch.start()
        try:
            self.port = await self.server.start(*self.bind)
        except OSError as exc:
            await self.close()
            raise AriAgentError(f"cannot serve FastAGI routing on {self.bind[0]}:{self.bind[1]}: {exc}") from None
        return self.port

    async def close(self) -> None:
        await self.server.close()
        if self.watch is not None:
            await self.watch.aclose()
