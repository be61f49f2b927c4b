"""``ari-agent kpi report``: the business and engineering KPIs of the call records, as Markdown or CSV.

``ari-agent kpi report --db sqlite:///call-records.sqlite3 --from 2026-01-01 --to 2026-04-01
[--format md|csv] [--telephony-per-min 0.01 --compute-per-min 0.002 --human-per-min 0.6
--human-minutes 6 --baseline-minutes 7 --currency USD]``. ``--to`` is exclusive (a quarter is
``--from 2026-01-01 --to 2026-04-01``). Definitions: ``ari_agent/records/kpi.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

from ari_agent.errors import AriAgentError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _money(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v < 0 or v != v:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return v


def register(sub: Any) -> None:
    parser = sub.add_parser("kpi", help="KPIs from the call records (kpi report)", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    kpi_sub = parser.add_subparsers(dest="kpi_command", metavar="SUBCOMMAND")
    kpi_sub.required = True
    report = kpi_sub.add_parser("report", help="business and engineering KPIs for a date range")
    report.add_argument("--db", required=True, metavar="URL", help="records database (sqlite:///..., postgresql://...)")
    report.add_argument("--from", dest="start", type=_date, required=True, help="first day (YYYY-MM-DD, UTC)")
    report.add_argument("--to", dest="end", type=_date, required=True, help="day after the last (exclusive)")
    report.add_argument("--format", choices=("md", "csv"), default="md")
    report.add_argument("--telephony-per-min", type=_money, default=0.0)
    report.add_argument("--compute-per-min", type=_money, default=0.0)
    report.add_argument("--human-per-min", type=_money, default=0.0)
    report.add_argument("--human-minutes", type=_money, default=6.0,
                        help="a person's minutes on a transferred call when the ACD reports none (default 6)")
    report.add_argument("--baseline-minutes", type=_money, help="human-only baseline: a person's minutes per call")
    report.add_argument("--currency", default="USD")
    report.set_defaults(func=run)
    serve = kpi_sub.add_parser("serve", help="the KPI dashboard (web page, /metrics); sign-in: screenpop.agents")
    serve.add_argument("--db", required=True, metavar="URL", help="records database")
    serve.add_argument("--bind", default="127.0.0.1:8766", help="host:port (default 127.0.0.1:8766)")
    serve.add_argument("--telephony-per-min", type=_money, default=0.0)
    serve.add_argument("--compute-per-min", type=_money, default=0.0)
    serve.add_argument("--human-per-min", type=_money, default=0.0)
    serve.add_argument("--human-minutes", type=_money, default=6.0)
    serve.add_argument("--baseline-minutes", type=_money)
    serve.add_argument("--currency", default="USD")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from ari_agent.cli.common import config_from
    from ari_agent.records.kpi import CostInputs
    from ari_agent.records.store import CallRecordStore

    host, _, port_s = args.bind.rpartition(":")
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise AriAgentError(f"--bind must be host:port, got {args.bind!r}")
    cfg = config_from(args)
    users = {name: a.password_hash.get_secret_value() for name, a in cfg.screenpop.agents.items()}
    if not users:
        raise AriAgentError("no accounts to sign in with: add screenpop.agents to the config "
                            "(the dashboard uses the screen-pop's accounts)")
    costs = CostInputs(args.telephony_per_min, args.compute_per_min, args.human_per_min, args.human_minutes,
                       args.baseline_minutes, args.currency)
    store = CallRecordStore(args.db)
    try:
        asyncio.run(_serve(store, users, costs, host, int(port_s), cfg.screenpop.secure_cookie,
                           float(cfg.screenpop.session_ttl_s)))
    finally:
        store.close()
    return 0


async def _serve(store: Any, users: dict[str, str], costs: Any, host: str, port: int, secure: bool,
                 ttl: float) -> None:
    from aiohttp import web

    from ari_agent.evaluation.dashboard import KpiDashboard

    runner = web.AppRunner(KpiDashboard(store, users, costs=costs, secure_cookie=secure, session_ttl_s=ttl).app(),
                           access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"KPI dashboard on http://{host}:{port}/ ({len(users)} accounts)", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    from ari_agent.records.kpi import CostInputs, compute_kpis
    from ari_agent.records.kpi_report import to_csv, to_markdown
    from ari_agent.records.store import CallRecordStore

    if args.end <= args.start:
        raise AriAgentError(f"--to ({args.end}) must be after --from ({args.start})")
    start = dt.datetime.combine(args.start, dt.time(), dt.UTC)
    end = dt.datetime.combine(args.end, dt.time(), dt.UTC)
    costs = CostInputs(args.telephony_per_min, args.compute_per_min, args.human_per_min, args.human_minutes,
                       args.baseline_minutes, args.currency)
    store = CallRecordStore(args.db)
    try:
        records = store.kpi_window(start, end)
    finally:
        store.close()
    kpis = compute_kpis(records, start, end, costs)
    sys.stdout.write(to_csv(kpis, costs) if args.format == "csv" else to_markdown(kpis, costs))
    return 0
