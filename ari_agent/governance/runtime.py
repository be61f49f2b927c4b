"""Governance in a running agent, built once from the service config: the intent map checked against
its approval (refused in production mode), the audit log opened and told that the config was loaded,
and the kill-switch watch made ready to start."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ari_agent.config import Config
from ari_agent.governance.approval import LoadedMap, load_checked_map
from ari_agent.governance.audit import AuditLog
from ari_agent.governance.keys import load_key
from ari_agent.governance.killswitch import KillSwitchWatch
from ari_agent.governance.records import tool_call_record, transfer_record
from ari_agent.seam import CallTool, Transfer

log = logging.getLogger(__name__)


@dataclass
class Governance:
    map: LoadedMap
    audit: AuditLog | None
    kill_switch: KillSwitchWatch | None

    @property
    def map_version(self) -> str:
        return self.map.version

    def tool_called(self, call_id: str, action: CallTool, outcome: str) -> None:
        """Audit one tool call (queued: the call does not wait for the disk)."""
        if self.audit is not None:
            self.audit.submit("tool_call", tool_call_record(call_id, action.name, action.args,
                                                            action.idempotency_key, outcome))

    def transferred(self, call_id: str, action: Transfer, ok: bool) -> None:
        if self.audit is not None:
            self.audit.submit("transfer", transfer_record(call_id, action.queue, action.reason, action.context, ok))

    async def start(self) -> None:
        if self.kill_switch is not None:
            await self.kill_switch.start()

    async def aclose(self) -> None:
        if self.kill_switch is not None:
            await self.kill_switch.aclose()
        if self.audit is not None:
            self.audit.close()


def config_digest(cfg: Config) -> str:
    """sha256 of the effective config (secrets appear as ``**********``, so the digest holds none)."""
    return hashlib.sha256(cfg.model_dump_json().encode("utf-8")).hexdigest()


def open_governance(cfg: Config, map_path: Path) -> Governance:
    """Blocking (reads files): check the map, open the audit log, record the config load.

    Raises GovernanceError (one line) for a refused map in production mode or a bad key."""
    g = cfg.governance
    approval_key = load_key(g.approval_key, g.approval_key_file, "approval")
    loaded = load_checked_map(map_path, production=g.production, key=approval_key)
    if loaded.problem is not None:
        log.info("intent map %s (version %s) is not approved: %s — refused in production mode",
                 map_path, loaded.version[:12], loaded.problem)
    audit = None
    if g.audit_log is not None:
        audit = AuditLog(g.audit_log, load_key(g.audit_key, g.audit_key_file, "audit"), map_version=loaded.version)
        audit.append("config_load", {
            "config_sha256": config_digest(cfg), "map": str(map_path), "map_version": loaded.version,
            "approved_by": loaded.approval.approver if loaded.approval else None,
            "approved_at": loaded.approval.approved_at if loaded.approval else None,
            "production": g.production})
    watch = None
    if g.killswitch:
        watch = KillSwitchWatch(cfg.redis.url, key=g.killswitch_key, override_file=g.killswitch_override_file,
                                state_file=g.killswitch_state_file, poll_s=g.killswitch_poll_s)
    return Governance(loaded, audit, watch)
