"""``ari-agent redact``: stdin to stdout with personal data replaced by ``[LABEL]``, line for line.

For transcripts, call logs and anything else about to be stored or shared: exactly one output line per
input line (blank lines kept, line endings as they came), each flushed as soon as it is redacted, so
``tail -f calls.log | ari-agent redact`` works. What is found: see ``ari_agent.redaction`` (cards, CVVs,
SSNs, NI numbers, dates of birth, emails, phone, account and customer numbers, PINs, postcodes,
verification answers, written and spoken). Site-specific patterns come from the service config
(``redaction.extra_patterns: [{label: MEMBER_ID, pattern: "M-[0-9]{6}"}]``, ``-c``) or ``--pattern``.

Input that is not UTF-8 is decoded with replacement characters rather than refused: the stream goes
on (refusing would stop a pipe and leave the rest unredacted, or unstored), the bad byte shows as
U+FFFD, and a U+FFFD inside a number does not stop it being redacted.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from typing import Any, BinaryIO

from ari_agent.config import load_config
from ari_agent.errors import AriAgentError
from ari_agent.redaction import LABEL_RE, Redactor


def register(sub: Any) -> None:
    parser = sub.add_parser("redact", help="redact personal data from stdin, line for line",
                            description=__doc__)
    parser.add_argument("--pattern", action="append", default=[], metavar="LABEL=REGEX",
                        help="an extra pattern to redact as [LABEL] (repeatable; adds to the config's)")
    parser.add_argument("--summary", action="store_true",
                        help="at the end, one line on stderr: how many of each label were redacted")
    parser.set_defaults(func=run)


def parse_pattern(spec: str) -> tuple[str, str]:
    label, sep, pattern = spec.partition("=")
    if not sep or not LABEL_RE.fullmatch(label) or not pattern:
        raise AriAgentError(f"--pattern {spec!r}: expected LABEL=REGEX with an upper-case LABEL, "
                            "e.g. MEMBER_ID=M-[0-9]{6}")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise AriAgentError(f"--pattern {spec!r}: not a valid regular expression: {exc}") from None
    if compiled.fullmatch(""):
        raise AriAgentError(f"--pattern {spec!r}: matches the empty string")
    return label, pattern


def run(args: argparse.Namespace) -> int:
    extra: list[tuple[str, str]] = []
    if args.config:
        cfg = load_config(args.config)
        extra += [(p.label, p.pattern) for p in cfg.redaction.extra_patterns]
    extra += [parse_pattern(p) for p in args.pattern]
    counts = redact_stream(Redactor(extra), sys.stdin.buffer, sys.stdout.buffer)
    if args.summary:
        print("redacted: " + (" ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing"),
              file=sys.stderr)
    return 0


def redact_stream(redactor: Redactor, inp: BinaryIO, out: BinaryIO) -> Counter[str]:
    """Copy ``inp`` to ``out`` redacted, one line at a time; returns how many of each label."""
    counts: Counter[str] = Counter()
    for raw in inp:
        body = raw.rstrip(b"\r\n")
        ending = raw[len(body):]
        text, found = redactor.redact_with_findings(body.decode("utf-8", errors="replace"))
        counts.update(f.label for f in found)
        out.write(text.encode("utf-8") + ending)
        out.flush()
    return counts
