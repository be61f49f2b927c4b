"""``ari-agent killswitch on --reason TEXT | off | status``: every running agent transfer-only, at once.

``on`` stores the state in Redis and publishes it: each agent flips within milliseconds (its backstop
poll: ``governance.killswitch_poll_s``); live calls are handed off at their next turn, new calls go
straight to the queue. When Redis is unreachable, ``on`` writes the local override file instead (this
host's agents only) and exits 1 to say so; ``--local`` writes only that file. ``off`` clears both.
Every change is written to the audit log with who (``--by``, else ``$SUDO_USER``/``$USER``) and why.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from typing import Any

from ari_agent.config import Config, load_config
from ari_agent.governance.audit import AuditLog, utc_now
from ari_agent.governance.keys import GovernanceError, load_key
from ari_agent.governance.killswitch import (
    KillSwitchState,
    KillSwitchStore,
    RedisUnreachable,
    check_text,
    override_on,
    remove_override,
    write_override,
)
from ari_agent.log import setup_logging


def config_from(args: argparse.Namespace) -> Config:
    """``cli.common.config_from`` without importing the call layer: the kill switch must start fast."""
    cfg = load_config(getattr(args, "config", None) or os.environ.get("ARI_AGENT_CONFIG") or None)
    setup_logging(cfg.log.level, cfg.log.json_format)
    return cfg


def register(sub: Any) -> None:
    p = sub.add_parser("killswitch", help="transfer-only mode for every running agent", description=__doc__)
    ksub = p.add_subparsers(dest="killswitch", metavar="on|off|status")
    ksub.required = True
    on = ksub.add_parser("on", help="every agent hands callers to people (transfer-only)")
    on.add_argument("--reason", required=True, help="why (written to the audit log)")
    on.add_argument("--by", default=None, help="who (default: $SUDO_USER or $USER)")
    on.add_argument("--local", action="store_true", help="only this host: write the override file, not Redis")
    on.set_defaults(func=handle_on)
    off = ksub.add_parser("off", help="agents serve callers again")
    off.add_argument("--reason", default="", help="why (written to the audit log)")
    off.add_argument("--by", default=None)
    off.add_argument("--local", action="store_true", help="only remove this host's override file")
    off.set_defaults(func=handle_off)
    status = ksub.add_parser("status", help="the state in Redis, the override file, and the effect")
    status.set_defaults(func=handle_status)


def who(by: str | None) -> str:
    name = by if by is not None else (os.environ.get("SUDO_USER") or os.environ.get("USER") or getpass.getuser())
    return check_text("--by", name, required=True)


def _audit(cfg: Config, data: dict[str, Any]) -> str | None:
    """Write the change to the audit log; the error as text when that failed (the change stands)."""
    g = cfg.governance
    if g.audit_log is None:
        return None
    try:
        AuditLog(g.audit_log, load_key(g.audit_key, g.audit_key_file, "audit")).append("killswitch", data)
    except GovernanceError as exc:
        return str(exc)
    return None


def _finish(cfg: Config, state: KillSwitchState, via: str, message: str, rc: int) -> int:
    problem = _audit(cfg, {"on": state.on, "by": state.by, "reason": state.reason, "via": via})
    print(message, file=sys.stderr if rc else sys.stdout)
    if problem is not None:
        print(f"ari-agent: the change is made but was not audited: {problem}", file=sys.stderr)
        return 1
    return rc


def handle_on(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    g = cfg.governance
    state = KillSwitchState(True, check_text("--reason", args.reason, required=True), who(args.by), utc_now(),
                            time.time_ns())
    if args.local:
        write_override(g.killswitch_override_file, state)
        return _finish(cfg, state, "override_file",
                       f"kill switch ON for this host (override file {g.killswitch_override_file})", 0)
    store = KillSwitchStore(cfg.redis.url, g.killswitch_key)
    try:
        agents = store.set(state)
    except RedisUnreachable as exc:
        write_override(g.killswitch_override_file, state)
        return _finish(cfg, state, "override_file (redis unreachable)",
                       f"ari-agent: {exc}: wrote the local override file {g.killswitch_override_file} instead "
                       "(this host's agents only)", 1)
    finally:
        store.close()
    return _finish(cfg, state, "redis", f"kill switch ON: transfer-only ({agents} agent(s) subscribed); "
                                        f"by {state.by}: {state.reason}", 0)


def handle_off(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    g = cfg.governance
    state = KillSwitchState(False, check_text("--reason", args.reason, required=False), who(args.by), utc_now(),
                            time.time_ns())
    removed = remove_override(g.killswitch_override_file)
    note = f"; removed the override file {g.killswitch_override_file}" if removed else ""
    if args.local:
        return _finish(cfg, state, "override_file", f"kill switch override for this host off{note}", 0)
    store = KillSwitchStore(cfg.redis.url, g.killswitch_key)
    try:
        agents = store.set(state)
    except RedisUnreachable as exc:
        return _finish(cfg, state, "override_file (redis unreachable)",
                       f"ari-agent: {exc}: agents keep their last state{note}", 1)
    finally:
        store.close()
    return _finish(cfg, state, "redis", f"kill switch off ({agents} agent(s) subscribed){note}", 0)


def handle_status(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    g = cfg.governance
    store = KillSwitchStore(cfg.redis.url, g.killswitch_key)
    rc = 0
    try:
        state = store.get()
        if state is None:
            redis_line = "redis: never set (off)"
        else:
            redis_line = (f"redis: {'ON' if state.on else 'off'} since {state.at} by {state.by}"
                          + (f": {state.reason}" if state.reason else ""))
        redis_on = state is not None and state.on
    except RedisUnreachable as exc:
        redis_line, redis_on, rc = f"redis: {exc} (agents hold their last state)", False, 1
    finally:
        store.close()
    local = override_on(g.killswitch_override_file)
    effective = "ON (transfer-only)" if (redis_on or local) else ("off" if rc == 0 else "unknown (see redis)")
    print(f"kill switch: {effective}")
    print(f"  {redis_line}")
    print(f"  override file {g.killswitch_override_file}: {'present (ON on this host)' if local else 'absent'}")
    return rc
