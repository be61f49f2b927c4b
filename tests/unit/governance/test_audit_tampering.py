"""``audit verify`` against random tampering: every edit, deletion, insertion, reordering and cut is
caught and named at the right line; every untouched log passes (seeded, so a failure replays)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ari_agent.governance.audit import AuditLog, head_path, verify_file
from ari_agent.governance.audit_chain import GENESIS, KINDS, canonical, make_head, record_hash, seal

KEY = b"audit-test-key-0123456789abcdef"
SEED = 20261201
TAMPERINGS_PER_MODE = 600

Lines = list[str]


def _random_data(rng: random.Random) -> dict[str, object]:
    words = ["order", "4567", "support", "ok", "timeout", "café", "naïve ☎", "a\"quote", "new\nline", ""]
    return {
        "call_id": f"call-{rng.randrange(10**6)}",
        "tool": rng.choice(["lookup_order", "verify_identity", "reschedule"]),
        "args": {rng.choice(["order_number", "date", "note"]): rng.choice(words) for _ in range(rng.randrange(3))},
        "n": rng.randrange(-5, 10**9),
        "x": rng.choice([0.5, 1e-7, 123.25, -3.0]),
        "ok": rng.choice([True, False, None]),
    }


def write_log(path: Path, n: int, key: bytes | None, rng: random.Random) -> None:
    log = AuditLog(path, key, map_version=rng.choice([None, "ab" * 32]))
    for _ in range(n):
        log.append(rng.choice(KINDS), _random_data(rng))


def _read_lines(path: Path) -> Lines:
    return path.read_text(encoding="ascii").splitlines()


def _write_lines(path: Path, lines: Lines, *, final_newline: bool = True) -> None:
    path.write_text("\n".join(lines) + ("\n" if final_newline and lines else ""), encoding="ascii")


# Each tampering edits the log (and maybe its head) in place; returns the line the verifier must name.
Tamper = Callable[[Path, Lines, random.Random, bytes | None], int]


def _first_difference(old: Lines, new: Lines) -> int:
    for i, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return i
    return min(len(old), len(new)) + 1


def _rewrite(path: Path, old: Lines, new: Lines) -> int:
    assert new != old
    _write_lines(path, new)
    return _first_difference(old, new)


def edit_char(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i = rng.randrange(len(lines))
    pos = rng.randrange(len(lines[i]))
    choices = [c for c in "abcdef0123456789{}\":, xyz" if c != lines[i][pos]]
    new = list(lines)
    new[i] = lines[i][:pos] + rng.choice(choices) + lines[i][pos + 1:]
    return _rewrite(path, lines, new)


def edit_value(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Change what a record says and write it back in canonical form (the hash left as it was)."""
    i = rng.randrange(len(lines))
    rec = json.loads(lines[i])
    field = rng.choice(["kind", "ts", "data", "host", "pid", "map_version"])
    rec[field] = {"kind": "approval" if rec["kind"] != "approval" else "transfer", "ts": "2020-01-01T00:00:00Z",
                  "data": {**rec["data"], "outcome": "forged"}, "host": rec["host"] + "x", "pid": rec["pid"] + 1,
                  "map_version": "ff" * 32 if rec["map_version"] != "ff" * 32 else None}[field]
    new = list(lines)
    new[i] = canonical(rec)
    return _rewrite(path, lines, new)


def edit_and_rehash(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Change a record and recompute its hash (no key: the MAC, if any, is kept as it was)."""
    i = rng.randrange(len(lines))
    rec = json.loads(lines[i])
    rec["data"] = {**rec["data"], "outcome": "forged"}
    rec["hash"] = record_hash(rec)
    new = list(lines)
    new[i] = canonical(rec)
    _rewrite(path, lines, new)
    if key is not None:
        return i + 1  # its MAC no longer matches
    return i + 2  # the next record's prev (or, for the last one, the head) no longer matches


def whitespace(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i = rng.randrange(len(lines))
    new = list(lines)
    new[i] = rng.choice([lines[i].replace(":", ": ", 1), lines[i] + " ", " " + lines[i], lines[i].replace(",", ", ")])
    return _rewrite(path, lines, new)


def delete(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i = rng.randrange(len(lines))
    return _rewrite(path, lines, lines[:i] + lines[i + 1:])


def delete_run(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i = rng.randrange(len(lines))
    j = rng.randrange(i + 1, len(lines) + 1)
    return _rewrite(path, lines, lines[:i] + lines[j:])


def duplicate(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    src = rng.randrange(len(lines))
    at = rng.randrange(len(lines) + 1)
    return _rewrite(path, lines, [*lines[:at], lines[src], *lines[at:]])


def insert_forged(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Insert a well-formed record chained after its predecessor (seq reused, prev right, hash right)."""
    at = rng.randrange(len(lines) + 1)
    prev = json.loads(lines[at - 1])["hash"] if at else GENESIS
    rec = seal({"ts": "2026-12-01T00:00:00.000000Z", "kind": "tool_call", "host": "evil", "pid": 1,
                "map_version": None, "data": {"forged": True}}, seq=at, prev=prev, key=None)
    _rewrite(path, lines, [*lines[:at], canonical(rec), *lines[at:]])
    if key is not None:
        return at + 1  # it has no MAC
    return at + 2  # it fits its place; the record it pushed down (or the head) does not


def blank_line(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    at = rng.randrange(len(lines))  # not at the very end: a trailing "\n\n" is a blank last line too
    return _rewrite(path, lines, [*lines[:at], "", *lines[at:]])


def swap(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i, j = sorted(rng.sample(range(len(lines)), 2))
    new = list(lines)
    new[i], new[j] = new[j], new[i]
    return _rewrite(path, lines, new)


def move(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    i = rng.randrange(len(lines))
    rest = lines[:i] + lines[i + 1:]
    at = rng.choice([k for k in range(len(rest) + 1) if k != i])
    return _rewrite(path, lines, [*rest[:at], lines[i], *rest[at:]])


def truncate_records(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Cut whole records off the end (what remains is a valid chain: only the head shows it)."""
    keep = rng.randrange(len(lines))
    _write_lines(path, lines[:keep])
    return keep + 1


def truncate_bytes(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Cut the file at a random byte (mid-record, or just before a newline)."""
    data = path.read_bytes()
    cut = rng.randrange(1, len(data))  # keeps at least one byte, loses at least the final newline
    path.write_bytes(data[:cut])
    # Whole lines kept: the head shows the cut; else the partial last line is the break.
    return data[:cut].count(b"\n") + 1


def delete_head(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    head_path(path).unlink()
    return len(lines) + 1


def rewrite_chain(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """An attacker without the key rewrites everything from record i on, head included (keyed logs only:
    without a key this is the attack the chain cannot see, see audit_chain's docstring)."""
    assert key is not None
    i = rng.randrange(len(lines))
    new = list(lines[:i])
    prev = json.loads(lines[i - 1])["hash"] if i else GENESIS
    for seq in range(i, len(lines)):
        rec = json.loads(lines[seq])
        body = {k: v for k, v in rec.items() if k not in ("seq", "prev", "hash", "mac")}
        if seq == i:
            body["data"] = {**body["data"], "outcome": "forged"}
        forged = seal(body, seq=seq, prev=prev, key=None)
        if rng.random() < 0.5:
            forged["mac"] = rec["mac"]  # keep the old MAC: still wrong for the new hash
        new.append(canonical(forged))
        prev = forged["hash"]
    _write_lines(path, new)
    last = json.loads(new[-1])
    head = make_head(last, None)
    head["mac"] = json.loads(head_path(path).read_text())["mac"]
    head_path(path).write_text(canonical(head) + "\n")
    return i + 1


def forge_head(path: Path, lines: Lines, rng: random.Random, key: bytes | None) -> int:
    """Truncate and rewrite the head to match (keyed: the head's MAC cannot be made)."""
    assert key is not None
    keep = rng.randrange(1, len(lines))
    _write_lines(path, lines[:keep])
    head = make_head(json.loads(lines[keep - 1]), b"not-the-key-0123456789")
    head_path(path).write_text(canonical(head) + "\n")
    return keep + 1


COMMON: list[Tamper] = [edit_char, edit_value, edit_and_rehash, whitespace, delete, delete_run, duplicate,
                        insert_forged, blank_line, swap, move, truncate_records, truncate_bytes, delete_head]
KEYED_ONLY: list[Tamper] = [rewrite_chain, forge_head]


@pytest.mark.parametrize("keyed", [False, True], ids=["chain-only", "chain+hmac"])
def test_random_tampering_is_always_caught(tmp_path: Path, keyed: bool) -> None:
    rng = random.Random(SEED + keyed)
    key = KEY if keyed else None
    kinds = COMMON + (KEYED_ONLY if keyed else [])
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    originals: list[Path] = []
    for n in range(24):
        path = pristine / f"log{n}.jsonl"
        write_log(path, rng.randrange(2, 26), key, rng)
        assert verify_file(path, key).ok
        originals.append(path)
    caught: Counter[str] = Counter()
    work = tmp_path / "work.jsonl"
    for _ in range(TAMPERINGS_PER_MODE):
        src = rng.choice(originals)
        shutil.copy(src, work)
        shutil.copy(head_path(src), head_path(work))
        tamper = rng.choice(kinds)
        expected_line = tamper(work, _read_lines(src), rng, key)
        report = verify_file(work, key)
        assert report.problem is not None, f"{tamper.__name__} on {src.name} not caught"
        assert report.problem.line == expected_line, (tamper.__name__, src.name, report.problem, expected_line)
        caught[tamper.__name__] += 1
    total = sum(caught.values())
    print(f"\naudit tampering ({'chain+hmac' if keyed else 'chain only'}): {total}/{TAMPERINGS_PER_MODE} "
          f"caught at the right line; by kind: {dict(sorted(caught.items()))}")
    assert total == TAMPERINGS_PER_MODE and set(caught) == {t.__name__ for t in kinds}


def test_every_untouched_log_passes(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    for n in range(60):
        key = KEY if n % 2 else None
        path = tmp_path / f"log{n}.jsonl"
        count = rng.randrange(1, 30)
        write_log(path, count, key, rng)
        report = verify_file(path, key)
        assert report.ok and report.records == count, (n, report)
        assert verify_file(path, None).ok  # the chain holds without the key too


def test_keyed_verify_of_an_unkeyed_log_names_the_missing_mac(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path, 3, None, random.Random(1))
    report = verify_file(path, KEY)
    assert report.problem is not None and report.problem.line == 1 and "no MAC" in report.problem.reason


def test_a_different_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path, 3, KEY, random.Random(1))
    report = verify_file(path, b"another-key-0123456789")
    assert report.problem is not None and report.problem.line == 1 and "MAC" in report.problem.reason


APPENDER = """
import sys
from pathlib import Path
from ari_agent.governance.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), sys.argv[2].encode())
for i in range(int(sys.argv[3])):
    log.append("tool_call", {"writer": sys.argv[4], "i": i})
"""


def test_several_processes_append_to_one_log(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), KEY.decode(), "40", f"w{w}"])
             for w in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    report = verify_file(path, KEY)
    assert report.ok and report.records == 160, report
    records = [json.loads(line) for line in _read_lines(path)]
    assert [r["seq"] for r in records] == list(range(160))
    for w in range(4):  # each writer's records in its own order
        assert [r["data"]["i"] for r in records if r["data"]["writer"] == f"w{w}"] == list(range(40))


def test_submit_keeps_order_and_flush_waits(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    log = AuditLog(path, KEY, map_version="cd" * 32)
    for i in range(50):
        log.submit("transfer", {"i": i})
    log.flush()
    records = [json.loads(line) for line in _read_lines(path)]
    assert [r["data"]["i"] for r in records] == list(range(50))
    assert {r["map_version"] for r in records} == {"cd" * 32}
    log.close()
    assert verify_file(path, KEY).ok
