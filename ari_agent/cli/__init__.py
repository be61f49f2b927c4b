"""``ari-agent`` command line: one module per command group, each with ``register(subparsers)``.

A command handler returns its exit status. Errors the user can fix (bad config, Asterisk not
reachable, not root) are printed as one plain line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ari_agent.errors import AriAgentError

# Each module defines ``register(sub: argparse._SubParsersAction) -> None`` and sets
# ``func`` on its parsers: ``func(args) -> int``.
COMMAND_MODULES = [
    "ari_agent.cli.pbx",
    "ari_agent.cli.serve",
    "ari_agent.cli.doctor",
    "ari_agent.cli.call",
    "ari_agent.cli.bench",
    "ari_agent.cli.backend",
    "ari_agent.cli.worker",
    "ari_agent.cli.chat",
    "ari_agent.cli.classify",
    "ari_agent.cli.models",
    "ari_agent.cli.transcribe",
    "ari_agent.cli.redact",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ari-agent", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-c", "--config", help="service config YAML (default: built-in defaults + env)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except AriAgentError as exc:
        print(f"ari-agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return rc


if __name__ == "__main__":
    sys.exit(main())
