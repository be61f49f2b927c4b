"""The supervisor's page: every live call, with the voice agent or in a queue, and a takeover form for
each call the agent is serving. Plain forms (they work without script); ``static/supervisor.js``
redraws the two tables from the server-sent snapshots (DOM nodes and textContent only)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ari_agent.ops.screenpop.page import document

QUEUE_STATES = {"ringing": "Ringing a member", "connected": "With a member"}


def _since(started_at: object, now: float) -> str:
    try:
        seconds = max(0, int(now - float(str(started_at))))
    except ValueError:
        return ""
    return f"{seconds // 60}:{seconds % 60:02d}"


def _last_words(card: Mapping[str, Any], n: int = 2) -> str:
    lines = [t for t in card.get("transcript") or [] if isinstance(t, dict)][-n:]
    return " / ".join(f"{'Agent' if t.get('who') == 'agent' else 'Caller'}: {t.get('text', '')}" for t in lines)


def takeover_form(call_id: str, csrf: str, targets: Sequence[tuple[str, str]]) -> str:
    options = "".join(f"<option value=\"{escape(v)}\">{escape(label)}</option>" for v, label in targets)
    sid = escape(f"to-{call_id}")
    return ("<form method=\"post\" action=\"/supervisor/takeover\" class=\"takeover\">"
            f"<input type=\"hidden\" name=\"call_id\" value=\"{escape(call_id)}\">"
            f"<input type=\"hidden\" name=\"csrf\" value=\"{escape(csrf)}\">"
            f"<label for=\"{sid}\">Send to</label> <select id=\"{sid}\" name=\"target\">{options}</select> "
            "<button type=\"submit\">Take over</button></form>")


def agent_rows(calls: Sequence[Mapping[str, Any]], csrf: str, targets: Sequence[tuple[str, str]],
               now: float) -> str:
    if not calls:
        return "<tr><td colspan=\"7\">No calls with the voice agent.</td></tr>"
    rows = []
    for c in calls:
        cid = str(c.get("call_id", ""))
        cells = [c.get("caller_id") or "unknown", _since(c.get("started_at"), now),
                 c.get("intent") or "(not yet known)", c.get("phase", ""), c.get("verification", ""), _last_words(c)]
        rows.append(f"<tr data-call=\"{escape(cid)}\">" + "".join(f"<td>{escape(str(v))}</td>" for v in cells) +
                    f"<td>{takeover_form(cid, csrf, targets)}</td></tr>")
    return "".join(rows)


def queue_rows(calls: Sequence[Mapping[str, Any]]) -> str:
    if not calls:
        return "<tr><td colspan=\"6\">No calls in the queues.</td></tr>"
    return "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
            c.get("queue", ""), c.get("member", ""), QUEUE_STATES.get(str(c.get("state")), c.get("state", "")),
            c.get("caller_id", ""), c.get("intent", ""), c.get("reason", ""))) + "</tr>"
        for c in calls)


def supervisor_page(name: str, display_name: str, csrf: str, targets: Sequence[tuple[str, str]],
                    snapshot: Mapping[str, Sequence[Mapping[str, Any]]], notice: str = "",
                    now: float | None = None) -> str:
    t = time.time() if now is None else now
    with_agent = snapshot.get("with_agent", ())
    in_queues = snapshot.get("in_queues", ())
    return document("Supervisor", (
        "<header><h1>Supervisor view</h1>"
        f"<p>Signed in as <strong>{escape(display_name or name)}</strong> (supervisor). "
        "<a href=\"/\">My own calls</a>. <span id=\"conn\" role=\"status\">Connecting…</span></p>"
        "<form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form></header>"
        f"<main data-csrf=\"{escape(csrf)}\">"
        f"<p id=\"notice\" role=\"status\">{escape(notice)}</p>"
        f"<section id=\"agent-calls\" aria-labelledby=\"agent-calls-title\" "
        f"data-targets=\"{escape(json.dumps(list(targets)))}\">"
        f"<h2 id=\"agent-calls-title\">With the voice agent (<span class=\"count\">{len(with_agent)}</span>)</h2>"
        "<table aria-labelledby=\"agent-calls-title\"><thead><tr><th scope=\"col\">Caller</th>"
        "<th scope=\"col\">Since</th><th scope=\"col\">Intent</th><th scope=\"col\">Phase</th>"
        "<th scope=\"col\">Verification</th><th scope=\"col\">Last words</th><th scope=\"col\">Take over</th>"
        f"</tr></thead><tbody>{agent_rows(with_agent, csrf, targets, t)}</tbody></table></section>"
        "<section id=\"queue-calls\" aria-labelledby=\"queue-calls-title\">"
        f"<h2 id=\"queue-calls-title\">In the queues (<span class=\"count\">{len(in_queues)}</span>)</h2>"
        "<table aria-labelledby=\"queue-calls-title\"><thead><tr><th scope=\"col\">Queue</th>"
        "<th scope=\"col\">Member</th><th scope=\"col\">State</th><th scope=\"col\">Caller</th>"
        "<th scope=\"col\">Intent</th><th scope=\"col\">Reason</th></tr></thead>"
        f"<tbody>{queue_rows(in_queues)}</tbody></table></section>"
        "</main><script src=\"/static/supervisor.js\" defer></script>"))
