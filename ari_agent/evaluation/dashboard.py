"""The KPI dashboard: both views of ``records.kpi`` as a web page, and the same figures for Prometheus.

``ari-agent kpi serve --db URL`` (aiohttp, 127.0.0.1 by default). Sign-in uses the screen-pop's
accounts (``screenpop.agents`` of the service config: the same names and scrypt hashes, checked
by ``ops.screenpop.passwords``), with a session cookie (HttpOnly, SameSite=Strict) and a lock-out
after repeated failures. The page is rendered on the server: its charts are matplotlib PNGs
embedded as base64 and it loads nothing from anywhere (a strict Content-Security-Policy says so);
filters: ``?from=YYYY-MM-DD&to=YYYY-MM-DD&intent=NAME``. ``/metrics`` is the Prometheus text
format of the same figures for the last ``metrics_days`` days (unauthenticated, like any scrape
target: keep the bind on loopback or behind the proxy that guards your other targets).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import html
import io
import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from ari_agent.ops.web_sign_in import SignIn
from ari_agent.records.kpi import CostInputs, Kpis, SlaTargets, compute_kpis
from ari_agent.records.store import CallRecordStore

log = logging.getLogger(__name__)

COOKIE = "ari_agent_kpi"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


class KpiDashboard:
    def __init__(self, store: CallRecordStore, users: Mapping[str, str], *, costs: CostInputs | None = None,
                 sla: SlaTargets | None = None, session_ttl_s: float = 43200, secure_cookie: bool = False,
                 metrics_days: int = 30,
                 today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date()) -> None:
        self.store = store
        self.users = dict(users)  # name -> scrypt hash
        self.sign_in = SignIn(COOKIE, lambda: self.users, ttl_s=session_ttl_s, secure_cookie=secure_cookie)
        self.costs = costs or CostInputs()
        self.sla = sla or SlaTargets()
        self.metrics_days = metrics_days
        self.today = today

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers])
        app.router.add_get("/", self.index)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/metrics", self.metrics)
        return app

    # ------------------------------------------------------------------ auth
    def _user(self, request: web.Request) -> str | None:
        return self.sign_in.user(request)

    async def login_form(self, request: web.Request) -> web.Response:
        return _html(_login_page())

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name = str(form.get("username", "")).strip()[:100]
        verdict = await self.sign_in.check(name, str(form.get("password", ""))[:1000])
        if verdict == "locked":
            return _html(_login_page("Too many failed sign-ins; try again in a minute."), status=429)
        if verdict == "wrong":
            log.info("kpi dashboard: failed sign-in for %r", name)
            return _html(_login_page("Wrong name or password."), status=401)
        raise self.sign_in.start_session(name)

    async def logout(self, request: web.Request) -> web.Response:
        raise self.sign_in.end_session(request)

    # ------------------------------------------------------------------ pages
    async def index(self, request: web.Request) -> web.Response:
        if self._user(request) is None:
            raise web.HTTPSeeOther("/login")
        try:
            end_day = _day(request.query.get("to")) or self.today() + dt.timedelta(days=1)
            start_day = _day(request.query.get("from")) or end_day - dt.timedelta(days=30)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if end_day <= start_day:
            raise web.HTTPBadRequest(text="'to' must be after 'from'")
        intent = request.query.get("intent") or None
        start, end = _midnight(start_day), _midnight(end_day)
        records = await asyncio.to_thread(self.store.kpi_window, start, end)
        intents = sorted({i for r in records if start <= r.started_at < end for i in r.intents})
        k = compute_kpis(records, start, end, self.costs, intent=intent, sla=self.sla)
        page = await asyncio.to_thread(render_page, k, self.costs, intents, intent, self.sla)
        return _html(page)

    async def metrics(self, request: web.Request) -> web.Response:
        end_day = self.today() + dt.timedelta(days=1)
        start, end = _midnight(end_day - dt.timedelta(days=self.metrics_days)), _midnight(end_day)
        records = await asyncio.to_thread(self.store.kpi_window, start, end)
        text = prometheus_text(compute_kpis(records, start, end, self.costs, sla=self.sla),
                               self.metrics_days)
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"Cache-Control": "no-store"})


def prometheus_text(k: Kpis, days: int) -> str:
    """The KPIs as Prometheus text exposition (gauges; unmeasured figures are left out)."""
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float | None]]) -> None:
        samples = [(labels, v) for labels, v in samples if v is not None]
        if not samples:
            return
        lines.append(f"# HELP ari_agent_kpi_{name} {help_text} (last {days} days)")
        lines.append(f"# TYPE ari_agent_kpi_{name} gauge")
        for labels, value in samples:
            label = ",".join(f'{key}="{_escape(v)}"' for key, v in labels.items())
            lines.append(f"ari_agent_kpi_{name}{{{label}}} {value}" if label else f"ari_agent_kpi_{name} {value}")

    gauge("calls", "calls recorded", [({}, float(k.calls))])
    gauge("containment_ratio", "calls ended without a transfer", [({}, k.containment)])
    gauge("first_contact_resolution_ratio", "calls no later call repeated within 7 days", [({}, k.fcr)])
    gauge("average_handling_seconds", "mean call duration", [({"kind": "all"}, k.aht_s),
                                                              ({"kind": "automated"}, k.aht_automated_s),
                                                              ({"kind": "transferred"}, k.aht_transferred_s)])
    gauge("transfer_ratio", "transferred calls, by reason",
          [({"reason": r}, v) for r, v in k.transfer_rate_by_reason.items()])
    gauge("transfer_correctness_ratio", "labelled transfers that were right", [({}, k.transfer_correctness)])
    gauge("repeat_call_ratio", "calls repeating an earlier one", [({}, k.repeat_call_rate)])
    gauge("sla_adherence_ratio", "calls that met every service-level target applying to them",
          [({}, k.sla_adherence)])
    gauge("sla_answer_ratio", "service level per target: the agent's first prompt, a person after a transfer",
          [({"target": "agent_answer"}, k.sla_agent_answer), ({"target": "queue_answer"}, k.sla_queue_answer)])
    gauge("sla_queue_answer_ratio", "transfers a person answered within the queue's target, by queue",
          [({"queue": q}, v) for q, v in k.sla_queue_by_queue.items()])
    gauge("cost_per_resolved_call", "cost per call resolved at first contact", [({}, k.cost_per_resolved_call)])
    gauge("latency_milliseconds", "latency per stage",
          [({"stage": s, "quantile": q}, f[q]) for s, f in k.latency_ms.items() for q in ("p50", "p95")])
    gauge("tool_failure_ratio", "failed tool calls", [({}, k.tool_failure_rate)])
    gauge("transfer_loops", "transferred calls repeating a transferred call", [({}, float(k.transfer_loops))])
    gauge("policy_alerts", "policy events, by rule", [({"rule": r}, float(n)) for r, n in k.policy_alerts.items()])
    gauge("recognition_no_match_ratio", "caller utterances the agent did not understand", [({}, k.no_match_rate)])
    return "\n".join(lines) + "\n"


def render_page(k: Kpis, costs: CostInputs, intents: list[str], intent: str | None,
                sla: SlaTargets | None = None) -> str:
    from ari_agent.records.kpi_report import rows

    e = html.escape
    options = "".join(f"<option value='{e(i)}'{' selected' if i == intent else ''}>{e(i)}</option>"
                      for i in intents)
    end_shown = (k.end - dt.timedelta(days=1)).date()
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ari-agent KPIs</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px}.tiles{display:flex;gap:1em;flex-wrap:wrap}"
        ".tile{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}.tile b{font-size:1.6em;display:block}",
        "</style></head><body>",
        f"<h1>Call KPIs: {k.start:%Y-%m-%d} to {end_shown}{' — ' + e(intent) if intent else ''}</h1>",
        "<form method='get' action='/'>from <input type='date' name='from' value='"
        f"{k.start:%Y-%m-%d}'> to (exclusive) <input type='date' name='to' value='{k.end:%Y-%m-%d}'> intent "
        f"<select name='intent'><option value=''>all</option>{options}</select> <button>show</button></form>",
        "<form method='post' action='/logout'><button>sign out</button></form>",
        "<h2>Business view</h2><div class='tiles'>",
    ]
    for label, value in (("calls", str(k.calls)), ("containment", _pct(k.containment)),
                         ("first-contact resolution", _pct(k.fcr)), ("transfer rate", _pct(k.transfer_rate)),
                         ("transfer correctness", _pct(k.transfer_correctness)),
                         ("repeat calls", _pct(k.repeat_call_rate)),
                         ("SLA adherence", _pct(k.sla_adherence)),
                         ("AHT", "–" if k.aht_s is None else f"{k.aht_s:.0f} s"),
                         ("cost / resolved call", "–" if k.cost_per_resolved_call is None
                          else f"{k.cost_per_resolved_call:.2f} {costs.currency}")):
        parts.append(_tile(label, value))
    sla = sla or SlaTargets()
    per_queue = "".join(f", {e(q)} {t:g} s" for q, t in sla.per_queue.items())
    parts.append(f"</div><p id='sla-targets'>SLA targets: the agent's first prompt within {sla.answer_s:g} s "
                 f"({_pct(k.sla_agent_answer)} of {k.sla_agent_measured} calls); a person answers a transfer "
                 f"within {sla.queue_answer_s:g} s{per_queue} ({_pct(k.sla_queue_answer)} of "
                 f"{k.sla_queue_reported} reported transfers).</p>")
    for title, png in _charts(k):
        parts.append(f"<h3>{e(title)}</h3><img alt='{e(title)}' src='data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}'>")
    by_view: dict[str, list[tuple[str, str, str, str]]] = {}
    for row in rows(k, costs):
        by_view.setdefault(row[0], []).append(row)
    for view in ("business", "engineering"):
        if view == "engineering":
            parts.append("<h2>Engineering view</h2><div class='tiles'>"
                         + _tile("recognition no-match", _pct(k.no_match_rate))
                         + _tile("tool failures", _pct(k.tool_failure_rate)) + "</div>")
        body = "".join(f"<tr><td>{e(m)}</td><td>{e(key)}</td><td>{e(v or '–')}</td></tr>"
                       for _, m, key, v in by_view.get(view, []))
        parts.append(f"<table id='{view}'><tr><th>metric</th><th></th><th>value</th></tr>{body}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _tile(label: str, value: str) -> str:
    e = html.escape
    return f"<div class='tile' id='kpi-{e(label.replace(' ', '-').replace('/', ''))}'>{e(label)}<b>{e(value)}</b></div>"


def _charts(k: Kpis) -> list[tuple[str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[tuple[str, bytes]] = []
    if k.transfer_rate_by_reason:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        reasons = list(k.transfer_rate_by_reason)
        ax.barh(reasons, [100 * k.transfer_rate_by_reason[r] for r in reasons])
        ax.set_xlabel("% of calls")
        out.append(("Transfers by reason", _png(fig, plt)))
    if k.per_intent:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        names = list(k.per_intent)
        ax.barh(names, [100 * float(k.per_intent[n]["containment"] or 0) for n in names])
        ax.set_xlabel("containment %")
        ax.set_xlim(0, 100)
        out.append(("Containment per intent", _png(fig, plt)))
    sla_all = [("agent's first prompt", k.sla_agent_answer), ("a person, all queues", k.sla_queue_answer),
               *((f"a person, {q}", v) for q, v in k.sla_queue_by_queue.items())]
    sla_bars = [(name, v) for name, v in sla_all if v is not None]
    if sla_bars:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        ax.barh([n for n, _ in sla_bars], [100 * v for _, v in sla_bars])
        ax.set_xlabel("% within target")
        ax.set_xlim(0, 100)
        out.append(("Service level (SLA) by target", _png(fig, plt)))
    if k.latency_ms:
        fig, ax = plt.subplots(figsize=(7, 2.8))
        stages = list(k.latency_ms)
        ax.bar([i - 0.2 for i in range(len(stages))], [k.latency_ms[s]["p50"] for s in stages], 0.4, label="p50")
        ax.bar([i + 0.2 for i in range(len(stages))], [k.latency_ms[s]["p95"] for s in stages], 0.4, label="p95")
        ax.set_xticks(range(len(stages)), stages)
        ax.set_ylabel("ms")
        ax.legend()
        out.append(("Latency per stage", _png(fig, plt)))
    return out


def _png(fig: object, plt: object) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(buf, format="png", dpi=80)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _day(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {text[:20]!r}") from None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status,
                        headers={"Cache-Control": "no-store"})


def _login_page(message: str = "") -> str:
    note = f"<p role='alert'>{html.escape(message)}</p>" if message else ""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Sign in: ari-agent KPIs</title></head><body>"
            f"<h1>ari-agent KPIs</h1>{note}<form method='post' action='/login'>"
            "<label>Name <input name='username' autocomplete='username'></label> "
            "<label>Password <input type='password' name='password' autocomplete='current-password'></label> "
            "<button>Sign in</button></form></body></html>")


@web.middleware
async def _security_headers(request: web.Request, handler: Callable[[web.Request], object]) -> web.StreamResponse:
    try:
        resp: web.StreamResponse = await handler(request)  # type: ignore[misc]
    except web.HTTPException as exc:
        _harden(exc)
        raise
    _harden(resp)
    return resp


def _harden(resp: web.StreamResponse) -> None:
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("X-Frame-Options", "DENY")
