"""``ari-agent screenpop``: the human agents' screen-pop (live caller context on AgentCalled/AgentConnect).

``ari-agent screenpop serve`` runs the web app (``screenpop.bind``, 127.0.0.1:8765 by default);
``ari-agent screenpop hash-password`` reads a password (prompted, or one line of stdin) and prints the
scrypt hash for ``screenpop.agents.<name>.password_hash``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.errors import AriAgentError


def _bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AriAgentError(f"screenpop bind {text!r}: expected host:port, e.g. 127.0.0.1:8765")
    return host, int(port)


def run_serve(args: argparse.Namespace) -> int:
    from ari_agent.ops.screenpop.server import serve

    cfg = config_from(args)
    host, port = _bind(args.bind or cfg.screenpop.bind)
    if not cfg.screenpop.agents:
        print("ari-agent screenpop: no agents configured (screenpop.agents): nobody can sign in", file=sys.stderr)
    try:
        asyncio.run(serve(cfg, host, port))
    except OSError as exc:
        raise AriAgentError(f"cannot serve the screen-pop on {host}:{port}: {exc}") from None
    except KeyboardInterrupt:
        return 0
    return 0


def run_hash(args: argparse.Namespace) -> int:
    from ari_agent.ops.screenpop.passwords import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        raise AriAgentError("empty password")
    print(hash_password(password))
    return 0


def register(sub: Any) -> None:
    parser = sub.add_parser("screenpop", help="human agents' screen-pop web app", description=__doc__)
    inner = parser.add_subparsers(dest="screenpop_command", metavar="ACTION")
    inner.required = True
    serve = inner.add_parser("serve", help="run the screen-pop web app")
    serve.add_argument("--bind", help="host:port (default: screenpop.bind, 127.0.0.1:8765)")
    serve.set_defaults(func=run_serve)
    hashp = inner.add_parser("hash-password", help="print the scrypt hash of a password read from stdin")
    hashp.set_defaults(func=run_hash)
