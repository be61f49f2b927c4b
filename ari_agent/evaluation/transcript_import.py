"""Exported call transcripts -> draft scenarios for an analyst to label (``ari-agent eval import``).

The transcript format (UTF-8 text, one turn a line)::

    # anything after '#' at the start of a line is a comment
    caller: where is my order
    agent: Sure, I can check on your order. What's your order number?
    caller: four five six seven
    agent: Order 4567 has shipped ...

    caller: (the next call starts after a blank line)

``caller:`` / ``agent:`` (case-insensitive; ``customer:``, ``user:`` and ``bot:``, ``assistant:`` are
read the same). ``caller: [dtmf 4567]`` is a keypress, ``caller: [silence]`` a silence,
``caller: [hangup]`` the caller hanging up. Any other line is an error with file:line.

The drafts keep the caller's turns, show the agent's as comments, and are **unlabelled on
purpose**: ``expect: {outcome: TODO}`` is refused when the suite is loaded, so a draft cannot be
run (and pass) before someone has said what should have happened. Personal data is redacted from
the caller's words by default (``ari_agent.redaction``): test data is put back by the analyst.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ari_agent.errors import AriAgentError
from ari_agent.yaml_source import NotUtf8, decode_utf8

_SPEAKER = re.compile(r"^\s*(caller|customer|user|agent|bot|assistant)\s*:\s?(.*)$", re.I)
_CALLER = {"caller", "customer", "user"}
_DIRECTIVE = re.compile(r"^\[(dtmf\s+[0-9*#A-D ]+|silence|hangup)\]$", re.I)


@dataclass
class ImportedCall:
    source: str  # file:line of its first turn
    turns: list[tuple[str, str]] = field(default_factory=list)  # (caller|agent, text)


def parse_transcripts(path: Path) -> list[ImportedCall]:
    try:
        text = decode_utf8(path.read_bytes())
    except NotUtf8 as exc:
        raise AriAgentError(f"{path}:{exc.line}: {exc}") from None
    except OSError as exc:
        raise AriAgentError(f"cannot read {path}: {exc.strerror or exc}") from None
    calls: list[ImportedCall] = []
    current: ImportedCall | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            current = None
            continue
        if line.lstrip().startswith("#"):
            continue
        m = _SPEAKER.match(line)
        if m is None:
            raise AriAgentError(f"{path}:{n}: expected 'caller: ...' or 'agent: ...', got {line.strip()[:60]!r}")
        who = "caller" if m.group(1).lower() in _CALLER else "agent"
        said = m.group(2).strip()
        if current is None:
            current = ImportedCall(f"{path.name}:{n}")
            calls.append(current)
        if who == "caller" and said.startswith("[") and not _DIRECTIVE.match(said):
            raise AriAgentError(f"{path}:{n}: unknown caller action {said!r} (use [dtmf 1234], [silence], [hangup])")
        current.turns.append((who, said))
    return calls


def draft_suite(calls: list[ImportedCall], name: str, *, redact_pii: bool = True) -> str:
    """The YAML text of a draft suite holding ``calls`` (unlabelled: see the module doc)."""
    from ari_agent.redaction import redact

    lines = [
        "# Draft scenarios imported from call transcripts: label each 'expect' before running.",
        "# (outcome: resolved | transferred (+ queue, reason) | caller_hung_up; intents; tools; forbidden_tools)",
        f"suite: {_ident(name)}",
        "description: imported transcripts (draft, unlabelled)",
        "gated: false",
        "scenarios:",
    ]
    for i, call in enumerate(calls, 1):
        lines += [f"  - id: {_ident(name)}-{i:03d}", f"    description: {_q('imported from ' + call.source)}",
                  "    tags: [imported]", "    turns:"]
        if not any(w == "caller" for w, _ in call.turns):
            lines.append("      []")
        for who, said in call.turns:
            if who == "agent":
                lines.append(f"      # agent: {redact(said) if redact_pii else said}")
                continue
            d = _DIRECTIVE.match(said)
            if d:
                word = d.group(1).lower()
                if word.startswith("dtmf"):
                    lines.append(f"      - {{dtmf: {_q(word[4:].replace(' ', ''))}}}")
                else:
                    lines.append(f"      - {{{word}: true}}")
            else:
                lines.append(f"      - {{say: {_q(redact(said) if redact_pii else said)}}}")
        lines += ["    expect:", "      outcome: TODO", ""]
    return "\n".join(lines) + "\n"


def _ident(name: str) -> str:
    s = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-.")
    return s or "imported"


def _q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
