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
# ``func`` on its parsers: ``func(args) -> int``. Keyed by the top-level command it registers: a command
# imports only its own module (``ari-agent killswitch on`` should not wait for the call layer to load).
COMMANDS: dict[str, str] = {
    "pbx": "ari_agent.cli.pbx",
    "run": "ari_agent.cli.serve",
    "doctor": "ari_agent.cli.doctor",
    "call": "ari_agent.cli.call",
    "bench": "ari_agent.cli.bench",
    "backend": "ari_agent.cli.backend",
    "worker": "ari_agent.cli.worker",
    "chat": "ari_agent.cli.chat",
    "classify": "ari_agent.cli.classify",
    "models": "ari_agent.cli.models",
    "transcribe": "ari_agent.cli.transcribe",
    "redact": "ari_agent.cli.redact",
    "retention": "ari_agent.cli.retention",
    "storage": "ari_agent.cli.retention",
    "screenpop": "ari_agent.cli.screenpop",
    "audit": "ari_agent.cli.audit",
    "killswitch": "ari_agent.cli.killswitch",
    "config": "ari_agent.cli.config_cmd",
    "eval": "ari_agent.cli.eval",
    "kpi": "ari_agent.cli.kpi",
    "records": "ari_agent.cli.kpi",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))
_OPTIONS_WITH_VALUE = frozenset({"-c", "--config"})


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``only`` (a key of COMMANDS) alone."""
    parser = argparse.ArgumentParser(prog="ari-agent", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-c", "--config", help="service config YAML (default: built-in defaults + env)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in ([COMMANDS[only]] if only in COMMANDS else COMMAND_MODULES):
        importlib.import_module(name).register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (after the global options), or None."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(args_in))
    args = parser.parse_args(args_in)
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
