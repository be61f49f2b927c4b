"""``ari-agent backend``: serve the demo backend (SQLite) that the demo tools call."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from ari_agent.errors import AriAgentError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8700, help="port (default: 8700)")
    parser.add_argument("--db", default="demo-backend.sqlite3",
                        help="SQLite file; created and seeded with demo data when new (default: %(default)s)")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay every request (slow backend)")
    parser.add_argument("--fail-status", type=int, default=0, help="answer every request with this HTTP status")
    parser.add_argument("--write-delay-after-ms", type=int, default=0,
                        help="after a write is committed, wait this long before answering")
    parser.add_argument("--path-prefix", default="/", help="apply --delay-ms/--fail-status to these paths only")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    from ari_agent.devtools.demo_backend import Faults, serve

    if not 0 < args.port < 65536:
        raise AriAgentError(f"--port {args.port}: must be 1-65535")
    if args.fail_status and not 400 <= args.fail_status <= 599:
        raise AriAgentError(f"--fail-status {args.fail_status}: must be 400-599")
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faults = Faults(delay_ms=max(0, args.delay_ms), fail_status=args.fail_status,
                    write_delay_after_ms=max(0, args.write_delay_after_ms), path_prefix=args.path_prefix)
    try:
        serve(args.db, host=args.host, port=args.port, faults=faults)
    except OSError as exc:
        raise AriAgentError(f"cannot serve on {args.host}:{args.port} with {args.db}: {exc}") from None
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("backend", help="serve the demo backend (orders, appointments, identity, FAQ)",
                            description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ari_agent.cli.backend``: the same as ``ari-agent backend``."""
    from ari_agent.cli import main as cli_main

    return cli_main(["backend", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
