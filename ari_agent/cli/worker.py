"""``ari-agent worker``: run an RQ worker on the write queue (``async_write`` tools)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ari_agent.errors import AriAgentError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="redis URL (default: redis.url of the service config)")
    parser.add_argument("--queue", default=None, help="queue name (default: ari-agent-writes)")
    parser.add_argument("--name", default=None, help="worker name (default: generated)")
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--no-scheduler", action="store_true",
                        help="do not run RQ's scheduler (retries with an interval need one somewhere)")
    parser.add_argument("--maintenance-interval", type=int, default=30, metavar="S",
                        help="seconds between registry clean-ups and dead-worker recovery (default: 30)")
    parser.add_argument("--redis-wait", type=float, default=60.0, metavar="S",
                        help="at start-up, wait up to S seconds for redis to answer (default: 60; 0: fail at once)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    import redis

    from ari_agent.integrations.jobs import run_worker, url_without_password
    from ari_agent.integrations.tools_config import WriteQueueSettings

    url = args.redis_url
    if url is None:
        from ari_agent.config import load_config

        url = load_config(getattr(args, "config", None)).redis.url
    settings = WriteQueueSettings() if args.queue is None else WriteQueueSettings(name=args.queue)
    if args.maintenance_interval < 1:
        raise AriAgentError("--maintenance-interval must be >= 1")
    if args.redis_wait < 0:
        raise AriAgentError("--redis-wait must be >= 0")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_worker(url, settings, burst=args.burst, with_scheduler=not args.no_scheduler, name=args.name,
                          maintenance_interval_s=args.maintenance_interval, redis_wait_s=args.redis_wait)
    except redis.ConnectionError as exc:
        raise AriAgentError(f"cannot reach redis at {url_without_password(url)}: {exc}") from None


def register(sub: Any) -> None:
    parser = sub.add_parser("worker", help="run an RQ worker for asynchronous tool writes", description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ari_agent.cli.worker``: the same as ``ari-agent worker``."""
    from ari_agent.cli import main as cli_main

    return cli_main(["worker", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
