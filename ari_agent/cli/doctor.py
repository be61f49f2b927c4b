"""``ari-agent doctor``: is everything the agent needs there? Exits non-zero with the reason if not."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.ops.doctor import run_checks

SERVICE_CHECKS = ("agent", "redis", "worker")


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check ARI, credentials, modules, the agent's registration and media path, "
                                      "redis and the write worker")
    p.add_argument("--require-agent", action="store_true",
                   help="fail when no agent is connected to ARI, redis does not answer, or no `ari-agent worker` "
                        "serves the intent map's write queue")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    checks = asyncio.run(run_checks(cfg))
    failed = False
    for c in checks:
        # the running service (agent, redis, worker) is only required with --require-agent
        fatal = not c.ok and (c.name not in SERVICE_CHECKS or args.require_agent)
        print(f"[{'ok' if c.ok else 'FAIL' if fatal else 'warn'}] {c.name}: {c.detail}")
        failed = failed or fatal
    return 1 if failed else 0
