"""Approved changes: an intent map (its prompts, routing and tools live in the same file) carries an
approval, and in production mode the agent refuses a map that is unapproved or was edited since.

``ari-agent config approve MAP --by NAME`` writes ``MAP.approval.json`` next to the map: who
approved, the sha256 of the map file's bytes, when, which key, and an HMAC-SHA256 signature over
those fields. The key comes from ``governance.approval_key`` (environment:
``ARI_AGENT__GOVERNANCE__APPROVAL_KEY``) or ``governance.approval_key_file``; whoever can edit the map
but not read the key cannot make an approval the agent accepts.

The map's *version* is the sha256 of its bytes: it is on every audit record and call record, so what
was said on a call can be traced to the exact map (and approval) in force.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ari_agent.errors import ConfigError
from ari_agent.governance.audit import utc_now
from ari_agent.governance.audit_chain import canonical
from ari_agent.governance.keys import GovernanceError, key_id
from ari_agent.yaml_source import NotUtf8, decode_utf8

SUFFIX = ".approval.json"
FIELDS = ("map_file", "sha256", "approver", "approved_at", "key_id")


def approval_path(map_path: Path) -> Path:
    return Path(map_path).with_name(Path(map_path).name + SUFFIX)


def map_version(data: bytes) -> str:
    """The version of a map: sha256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Approval:
    map_file: str  # the map's file name (not its directory: a map may be deployed elsewhere)
    sha256: str
    approver: str
    approved_at: str
    key_id: str
    signature: str

    def signed_fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}


def _sign(fields: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, b"approval\0" + canonical(fields).encode("ascii"), hashlib.sha256).hexdigest()


def _read_map(map_path: Path) -> bytes:
    try:
        return Path(map_path).read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{map_path}: cannot read the intent map ({exc.strerror or exc})") from None


def approve(map_path: Path, approver: str, key: bytes, *, data: bytes | None = None) -> Approval:
    """Sign the map as it is now and write its approval file; returns the approval."""
    body = _read_map(map_path) if data is None else data
    fields = {"map_file": Path(map_path).name, "sha256": map_version(body), "approver": approver,
              "approved_at": utc_now(), "key_id": key_id(key)}
    approval = Approval(**fields, signature=_sign(fields, key))
    target = approval_path(map_path)
    try:
        target.write_text(json.dumps(asdict(approval), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise GovernanceError(f"{target}: cannot write the approval ({exc.strerror or exc})") from None
    return approval


def read_approval(map_path: Path) -> Approval | None:
    """The approval next to ``map_path``; None when there is none; GovernanceError when malformed."""
    path = approval_path(map_path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError):
        raise GovernanceError(f"{path}: not a readable approval (JSON)") from None
    if not isinstance(raw, dict) or set(raw) != {*FIELDS, "signature"} or \
            not all(isinstance(v, str) for v in raw.values()):
        raise GovernanceError(f"{path}: not an approval (fields {', '.join((*FIELDS, 'signature'))})")
    return Approval(**raw)


def check_approval(map_path: Path, data: bytes, key: bytes | None) -> Approval:
    """The map's valid approval, or GovernanceError saying in one line why it is refused."""
    approval = read_approval(map_path)
    if approval is None:
        raise GovernanceError(f"{map_path}: intent map is not approved (no {approval_path(map_path).name}; "
                              f"run 'ari-agent config approve {map_path} --by NAME')")
    if key is None:
        raise GovernanceError("production mode needs the approval key (governance.approval_key_file or "
                              "ARI_AGENT__GOVERNANCE__APPROVAL_KEY)")
    if not hmac.compare_digest(approval.signature, _sign(approval.signed_fields(), key)):
        raise GovernanceError(f"{approval_path(map_path)}: signature does not match "
                              f"(forged or edited approval, or signed with another key: {approval.key_id})")
    version = map_version(data)
    if approval.sha256 != version:
        raise GovernanceError(f"{map_path}: intent map was edited after {approval.approver} approved it at "
                              f"{approval.approved_at} (sha256 {version[:12]}… is not the approved "
                              f"{approval.sha256[:12]}…): approve it again")
    return approval


@dataclass(frozen=True)
class LoadedMap:
    """A map's bytes as read once (so what is checked is what is parsed), its version, its approval."""

    path: Path
    data: bytes
    version: str
    approval: Approval | None
    problem: str | None = None  # dev mode: why it would be refused in production

    def text(self) -> str:
        """The map as text, for the intent-map parser (bytes that are not UTF-8: ConfigError)."""
        try:
            return decode_utf8(self.data)
        except NotUtf8 as exc:
            raise ConfigError(str(self.path), "", str(exc), line=exc.line) from None


def load_checked_map(map_path: Path, *, production: bool, key: bytes | None) -> LoadedMap:
    """Read the map and check its approval: refused (GovernanceError) in production mode, noted in dev."""
    data = _read_map(map_path)
    try:
        approval: Approval | None = check_approval(map_path, data, key)
        problem = None
    except GovernanceError as exc:
        if production:
            raise
        approval, problem = None, str(exc)
    return LoadedMap(Path(map_path), data, map_version(data), approval, problem)
