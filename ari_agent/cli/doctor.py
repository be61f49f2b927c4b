"""``ari-agent doctor``: is everything the agent needs there? Exits non-zero with the reason if not."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.ops.doctor import run_checks


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check ARI, credentials, modules, the agent's registration and media path")
    p.add_argument("--require-agent", action="store_true", help="fail when no agent is connected to ARI")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    checks = asyncio.run(run_checks(cfg))
    failed = False
    for c in checks:
        fatal = not c.ok and (c.name != "agent" or args.require_agent)
        print(f"[{'ok' if c.ok else 'FAIL' if fatal else 'warn'}] {c.name}: {c.detail}")
        failed = failed or fatal
    return 1 if failed else 0
