"""Caller scripts: one caller turn per line, as typed in ``ari-agent chat`` or read by ``--script``.

- a plain line is something the caller says (``Utterance``);
- ``#dtmf 4567#`` presses keys (``Dtmf``); ``#silence`` and ``#noinput`` are the caller saying
  nothing until the listen timeout (``Timeout``); ``#timeout tool|max_call`` other timeouts;
- ``#bargein <the part of the prompt heard>`` is the caller speaking over the last prompt; the next
  line is what they said;
- ``#killswitch`` turns transfer-only mode on (as an operator would, mid-call);
- ``#hangup`` is the caller hanging up; blank lines and ``# comments`` are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ari_agent.seam import BargeIn, Dtmf, Event, Timeout, TimeoutKind, Utterance


@dataclass(frozen=True)
class Control:
    """A script line that is not an event for the engine."""

    kind: Literal["kill_switch", "hangup"]


class ScriptError(ValueError):
    pass


def parse_script_line(line: str) -> Event | Control | None:
    """The event (or control) a script line stands for; None for blank lines and comments."""
    text = line.strip()
    if not text:
        return None
    if not text.startswith("#"):
        return Utterance(text)
    if text.startswith("# ") or text == "#":
        return None
    directive, _, rest = text[1:].partition(" ")
    directive = directive.lower()
    rest = rest.strip()
    if directive == "dtmf":
        if not rest or any(c not in "0123456789*#ABCD" for c in rest.replace(" ", "")):
            raise ScriptError(f"#dtmf needs keys 0-9, *, #: {line!r}")
        return Dtmf(rest.replace(" ", ""))
    if directive in ("silence", "noinput"):
        return Timeout("silence" if directive == "silence" else "no_input")
    if directive == "timeout":
        if rest not in get_args(TimeoutKind):
            raise ScriptError(f"#timeout takes one of {', '.join(get_args(TimeoutKind))}: {line!r}")
        kind: TimeoutKind = rest  # type: ignore[assignment]
        return Timeout(kind)
    if directive == "bargein":
        return BargeIn(rest)
    if directive in ("killswitch", "kill-switch"):
        return Control("kill_switch")
    if directive == "hangup":
        return Control("hangup")
    return None  # "#something" unknown: a comment
