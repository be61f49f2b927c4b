"""``ari-agent audit verify FILE``: check the tamper-evident audit log; names the first broken link.

Exit 0: every record chained (and, with the key, MAC'd) and the head matches. Exit 1: the first
broken link as ``FILE:LINE: why`` (an edited, deleted, inserted, moved or cut record). The HMAC key is
the service config's (``governance.audit_key`` / ``audit_key_file``) or ``--key-file``; without one
only the hash chain is checked, and the output says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ari_agent.cli.killswitch import config_from
from ari_agent.governance.audit import verify_file
from ari_agent.governance.keys import load_key


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="the tamper-evident audit log", description=__doc__)
    asub = p.add_subparsers(dest="audit", metavar="WHAT")
    asub.required = True
    verify = asub.add_parser("verify", help="check the hash chain (and HMACs) of an audit log")
    verify.add_argument("file", type=Path, nargs="?", default=None,
                        help="the audit log (default: the config's governance.audit_log)")
    verify.add_argument("--key-file", type=Path, default=None, help="HMAC key file (default: the config's)")
    verify.add_argument("--no-key", action="store_true", help="check the hash chain only")
    verify.set_defaults(func=handle_verify)


def handle_verify(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    g = cfg.governance
    path = args.file or g.audit_log
    if path is None:
        print("ari-agent: no audit log given and governance.audit_log is not set")
        return 2
    key = None
    if not args.no_key:
        key = load_key(None, args.key_file, "audit") if args.key_file else load_key(g.audit_key, g.audit_key_file,
                                                                                       "audit")
    report = verify_file(path, key)
    checked = "hash chain and HMAC" if report.macs_checked else "hash chain only (no key: HMACs not checked)"
    if report.problem is None:
        print(f"{path}: ok, {report.records} record(s), {checked}")
        return 0
    print(f"{path}:{report.problem.line}: {report.problem.reason} "
          f"[{report.records} record(s) verified before it; {checked}]")
    return 1
