"""The screen-pop's HTML: plain, accessible markup (landmarks, labelled regions, a live region for the
call card), every value escaped. The same card is rendered here for the first paint and updated by
``static/screenpop.js`` (textContent only) from the server-sent events."""

from __future__ import annotations

from html import escape
from typing import Any

_STATE_TITLES = {"ringing": "Incoming call", "connected": "On a call", "completed": "Call ended",
                 "abandoned": "Caller hung up"}
FIELDS = (("caller_id", "Caller ID"), ("caller_name", "Caller name"), ("intent", "Intent"), ("reason", "Reason"),
          ("summary", "Summary"), ("verification", "Verification"), ("queue", "Queue"))


def document(title: str, body: str) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)} · ari-agent screen-pop</title>"
            "<link rel=\"stylesheet\" href=\"/static/screenpop.css\"></head>\n"
            f"<body>{body}</body></html>\n")


def login_page(error: str = "", username: str = "") -> str:
    err = f"<p class=\"error\" role=\"alert\">{escape(error)}</p>" if error else ""
    return document("Sign in", (
        "<main class=\"login\"><h1>Screen-pop sign in</h1>" + err +
        "<form method=\"post\" action=\"/login\">"
        "<label for=\"username\">Agent name</label>"
        f"<input id=\"username\" name=\"username\" autocomplete=\"username\" required value=\"{escape(username)}\">"
        "<label for=\"password\">Password</label>"
        "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>"
        "<button type=\"submit\">Sign in</button></form></main>"))


def agent_page(agent: str, display_name: str, interface: str, card: dict[str, Any] | None, *,
               supervisor: bool = False) -> str:
    link = "<a href=\"/supervisor\">Supervisor view</a>. " if supervisor else ""
    return document("Screen-pop", (
        "<header><h1>Screen-pop</h1>"
        f"<p>Signed in as <strong>{escape(display_name or agent)}</strong>, queue member "
        f"<code>{escape(interface)}</code>. {link}<span id=\"conn\" role=\"status\">Connecting…</span></p>"
        "<form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form></header>"
        "<main>" + card_html(card) + "</main>"
        "<script src=\"/static/screenpop.js\" defer></script>"))


def card_html(card: dict[str, Any] | None) -> str:
    c = card or {}
    state = str(c.get("state", "idle"))
    title = _STATE_TITLES.get(state, "No call")
    status = "Waiting for a caller." if card is None else (
        "" if c.get("has_context") else "This caller did not come through the voice agent: no context.")
    rerouted = ""
    if c.get("rerouted_because"):
        rerouted = (f"Sent here from {escape(str(c.get('requested_queue', '')))} "
                    f"({escape(str(c.get('rerouted_because', '')))}).")
    facts = "".join(f"<dt>{escape(label)}</dt><dd data-field=\"{name}\">{escape(str(c.get(name, '') or ''))}</dd>"
                    for name, label in FIELDS)
    slots = c.get("slots") if isinstance(c.get("slots"), dict) else {}
    slot_rows = "".join(f"<tr><th scope=\"row\">{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                        for k, v in (slots or {}).items())
    transcript = c.get("transcript") if isinstance(c.get("transcript"), list) else []
    lines = "".join(f"<li class=\"{'agent' if t.get('who') == 'agent' else 'caller'}\"><span class=\"who\">"
                    f"{'Agent' if t.get('who') == 'agent' else 'Caller'}:</span> {escape(str(t.get('text', '')))}</li>"
                    for t in (transcript or []) if isinstance(t, dict))
    return (
        f"<section id=\"call\" class=\"card\" data-state=\"{escape(state)}\" aria-labelledby=\"call-title\" "
        "aria-live=\"polite\">"
        f"<h2 id=\"call-title\">{escape(title)}</h2>"
        f"<p id=\"status\">{escape(status)}</p><p id=\"rerouted\">{rerouted}</p>"
        f"<dl id=\"facts\">{facts}</dl>"
        "<h3 id=\"slots-title\">What the caller gave</h3>"
        "<table id=\"slots\" aria-labelledby=\"slots-title\"><thead><tr><th scope=\"col\">Slot</th>"
        f"<th scope=\"col\">Value</th></tr></thead><tbody>{slot_rows}</tbody></table>"
        "<h3 id=\"transcript-title\">Transcript so far (redacted)</h3>"
        f"<ol id=\"transcript\" aria-labelledby=\"transcript-title\">{lines}</ol>"
        "</section>")
