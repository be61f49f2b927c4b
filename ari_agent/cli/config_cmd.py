"""``ari-agent config approve MAP --by NAME`` and ``ari-agent config check MAP``: approved changes.

``approve`` validates the intent map, then writes ``MAP.approval.json`` (approver, the map's sha256,
time, key id, HMAC signature with ``governance.approval_key`` / ``approval_key_file``) and audits it.
``check`` says whether the map as it is now would load in production mode (exit 0) or why not (exit 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ari_agent.cli.killswitch import config_from
from ari_agent.governance.approval import LoadedMap, approval_path, approve, check_approval, map_version
from ari_agent.governance.audit import AuditLog
from ari_agent.governance.keys import GovernanceError, load_key
from ari_agent.governance.killswitch import check_text


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="approved changes of intent maps", description=__doc__)
    csub = p.add_subparsers(dest="config_cmd", metavar="approve|check")
    csub.required = True
    ap = csub.add_parser("approve", help="sign an intent map as approved")
    ap.add_argument("map", type=Path)
    ap.add_argument("--by", required=True, help="the approver's name")
    ap.add_argument("--key-file", type=Path, default=None, help="approval key file (default: the config's)")
    ap.set_defaults(func=handle_approve)
    ck = csub.add_parser("check", help="would this map load in production mode?")
    ck.add_argument("map", type=Path)
    ck.add_argument("--key-file", type=Path, default=None)
    ck.set_defaults(func=handle_check)


def _key(args: argparse.Namespace, approval_key: Any, approval_key_file: Path | None) -> bytes:
    key = load_key(None, args.key_file, "approval") if args.key_file else load_key(
        approval_key, approval_key_file, "approval")
    if key is None:
        raise GovernanceError("no approval key: set governance.approval_key_file, "
                              "ARI_AGENT__GOVERNANCE__APPROVAL_KEY, or --key-file")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot read the intent map ({exc.strerror or exc})") from None


def handle_approve(args: argparse.Namespace) -> int:
    from ari_agent.conversation.intent_map import parse_intent_map

    cfg = config_from(args)
    g = cfg.governance
    approver = check_text("--by", args.by, required=True)
    key = _key(args, g.approval_key, g.approval_key_file)
    data = _read(args.map)
    # What is validated is what is signed: a broken map is refused (ConfigError: file, line, key, reason).
    parse_intent_map(LoadedMap(args.map, data, map_version(data), None).text(), str(args.map))
    approval = approve(args.map, approver, key, data=data)
    if g.audit_log is not None:
        AuditLog(g.audit_log, load_key(g.audit_key, g.audit_key_file, "audit"),
                 map_version=approval.sha256).append("approval", {
                     "map": str(args.map), "map_version": approval.sha256, "approver": approver,
                     "approved_at": approval.approved_at, "key_id": approval.key_id})
    print(f"approved {args.map} (sha256 {approval.sha256[:16]}…) by {approver}: {approval_path(args.map)}")
    return 0


def handle_check(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    g = cfg.governance
    key = _key(args, g.approval_key, g.approval_key_file)
    data = _read(args.map)
    try:
        approval = check_approval(args.map, data, key)
    except GovernanceError as exc:
        print(f"ari-agent: {exc}")
        return 1
    print(f"{args.map}: approved by {approval.approver} at {approval.approved_at} "
          f"(version sha256 {approval.sha256})")
    return 0
