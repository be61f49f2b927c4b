"""The audit log's hash chain, as pure functions over records and lines (no files).

Each record is one line of canonical JSON (sorted keys, no spaces, ASCII only): ``seq`` (0, 1, 2 …),
``ts``, ``kind``, ``host``, ``pid``, ``map_version``, ``data``, ``prev`` (the previous record's
``hash``; 64 zeros for the first) and ``hash`` = sha256 of the canonical JSON of the record without
``hash`` and ``mac``. With a key, ``mac`` = HMAC-SHA256(key, hash).

What each mode proves:

- **Chain only** (no key): any edit, deletion, insertion or reordering of records *inside* the log,
  and a cut mid-line, break a link that :func:`check_lines` names. Someone who can write the file and
  recomputes every hash after the one they changed (and the head) is *not* caught: the chain proves
  accidental or careless tampering, not a deliberate rewrite.
- **Chain + HMAC** (a key the attacker does not have): a rewritten chain is caught too, because no
  record's ``mac`` can be made without the key. So is a forged head.
- **Truncation** (records removed from the end) leaves a valid prefix; the *head* (the last ``seq``
  and ``hash``, kept beside the log and MAC'd with the key) catches it. Rolling log *and* head back
  to an older copy together is caught only by a head kept elsewhere (copy it off the host).

Every line must be exactly the canonical form of its record, so even a whitespace edit is caught.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
RECORD_KEYS = frozenset({"seq", "ts", "kind", "host", "pid", "map_version", "data", "prev", "hash"})
KINDS = ("tool_call", "transfer", "killswitch", "config_load", "approval")


def canonical(obj: Any) -> str:
    """The one serialisation that is hashed and written (stable across Python versions)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def record_hash(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    return hashlib.sha256(canonical(body).encode("ascii")).hexdigest()


def record_mac(key: bytes, digest: str) -> str:
    return hmac.new(key, b"record\0" + digest.encode("ascii"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, digest: str) -> str:
    return hmac.new(key, f"head\0{seq}\0{digest}".encode("ascii"), hashlib.sha256).hexdigest()


def seal(body: Mapping[str, Any], *, seq: int, prev: str, key: bytes | None) -> dict[str, Any]:
    """``body`` (ts, kind, host, pid, map_version, data) chained after ``prev`` as record ``seq``."""
    record: dict[str, Any] = {**body, "seq": seq, "prev": prev}
    record["hash"] = record_hash(record)
    if key is not None:
        record["mac"] = record_mac(key, record["hash"])
    return record


def make_head(record: Mapping[str, Any] | None, key: bytes | None) -> dict[str, Any]:
    """What the head file holds after ``record`` (None: an empty log)."""
    seq = int(record["seq"]) if record is not None else -1
    digest = str(record["hash"]) if record is not None else GENESIS
    head: dict[str, Any] = {"seq": seq, "hash": digest}
    if key is not None:
        head["mac"] = head_mac(key, seq, digest)
    return head


@dataclass(frozen=True)
class Break:
    """The first broken link: 1-based line number and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    records: int
    problem: Break | None
    macs_checked: bool

    @property
    def ok(self) -> bool:
        return self.problem is None


def _check_record(text: str, line: int, seq: int, prev: str, key: bytes | None) -> dict[str, Any] | Break:
    if not text:
        return Break(line, "empty line (a record was blanked or a line inserted)")
    try:
        record = json.loads(text)
    except ValueError:
        return Break(line, "not a JSON record (edited or cut)")
    if not isinstance(record, dict):
        return Break(line, "not a JSON object")
    keys = set(record)
    expected = RECORD_KEYS | ({"mac"} if key is not None else set())
    if key is None:
        keys.discard("mac")
    if keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        if key is not None and missing == ["mac"] and not extra:
            return Break(line, "no MAC: written without the key, or the MAC was stripped")
        return Break(line, f"wrong fields (missing {missing or 'none'}, unexpected {extra or 'none'})")
    try:
        if canonical(record) != text:
            return Break(line, "not in canonical form (the line was edited)")
    except ValueError:
        return Break(line, "not in canonical form (the line was edited)")
    if not isinstance(record["hash"], str) or record_hash(record) != record["hash"]:
        return Break(line, "hash does not match the record's content (the record was edited)")
    if record["seq"] != seq:
        return Break(line, f"seq {record['seq']!r} where {seq} was expected "
                            "(a record was deleted, inserted or moved here)")
    if record["prev"] != prev:
        what = "the start of the log" if seq == 0 else f"line {line - 1}'s hash"
        return Break(line, f"prev does not match {what} (chain broken: a record was replaced or moved)")
    if key is not None and not hmac.compare_digest(str(record["mac"]), record_mac(key, record["hash"])):
        return Break(line, "MAC does not match (the chain was rewritten without the key, or another key)")
    return record


def check_lines(lines: Iterable[str], *, key: bytes | None, head: Mapping[str, Any] | None,
                cut_last_line: bool = False) -> ChainReport:
    """Verify the records (lines without their ``\\n``) against each other and the head.

    ``cut_last_line``: the file did not end in a newline (its last line is an incomplete write).
    ``head``: the parsed head file, or None when it is missing.
    """
    prev, seq, last = GENESIS, 0, 0
    items = list(lines)
    for n, text in enumerate(items, start=1):
        checked = _check_record(text, n, seq, prev, key)
        if isinstance(checked, Break):
            return ChainReport(seq, checked, key is not None)
        if cut_last_line and n == len(items):
            return ChainReport(seq, Break(n, "the last line has no newline (cut mid-record)"), key is not None)
        prev, seq, last = checked["hash"], seq + 1, n
    after = last + 1
    if head is None:
        if seq == 0:
            return ChainReport(0, None, key is not None)
        return ChainReport(seq, Break(after, "the head file is missing (cannot tell whether records were "
                                             "cut from the end)"), key is not None)
    try:
        head_seq, head_hash = int(head["seq"]), str(head["hash"])
    except (KeyError, TypeError, ValueError):
        return ChainReport(seq, Break(after, "the head file is malformed"), key is not None)
    if key is not None and not hmac.compare_digest(str(head.get("mac", "")), head_mac(key, head_seq, head_hash)):
        return ChainReport(seq, Break(after, "the head file's MAC does not match (forged head)"), key is not None)
    if head_seq != seq - 1 or head_hash != prev:
        if head_seq > seq - 1:
            reason = (f"the log ends at record {seq - 1} but the head says {head_seq}: "
                      f"{head_seq - seq + 1} record(s) were cut from the end")
        else:
            reason = f"the head says record {head_seq} ({head_hash[:12]}…) but the log goes on to {seq - 1}"
        return ChainReport(seq, Break(after, reason), key is not None)
    return ChainReport(seq, None, key is not None)
