"""``ari-agent kpi report``: the business and engineering KPIs of the call records, as Markdown or CSV.

``ari-agent kpi report --db sqlite:///call-records.sqlite3 --from 2026-01-01 --to 2026-04-01
[--format md|csv] [--telephony-per-min 0.01 --compute-per-min 0.002 --human-per-min 0.6
--human-minutes 6 --baseline-minutes 7 --currency USD] [--answer-target-s 3 --queue-answer-target-s 20
--queue-target billing=30]``. ``--to`` is exclusive (a quarter is ``--from 2026-01-01 --to 2026-04-01``).
Definitions: ``ari_agent/records/kpi.py``. ``kpi serve`` takes the same cost and SLA inputs.

``ari-agent records migrate --db URL [--to REVISION]`` brings a records database to the newest schema
(Alembic; the store also does it on open), ``records status --db URL`` says where one stands, and
``records follow-acd --db URL`` stores transferred calls' human legs from the ACD's AMI queue events
(the config's ``ami`` section), for the SLA's queue answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
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
    _add_inputs(report)
    report.set_defaults(func=run)
    serve = kpi_sub.add_parser("serve", help="the KPI dashboard (web page, /metrics); sign-in: screenpop.agents")
    serve.add_argument("--db", required=True, metavar="URL", help="records database")
    serve.add_argument("--bind", default="127.0.0.1:8766", help="host:port (default 127.0.0.1:8766)")
    _add_inputs(serve)
    serve.set_defaults(func=run_serve)

    records = sub.add_parser("records", help="the call-record database's schema (records migrate, records status)",
                             description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    records_sub = records.add_subparsers(dest="records_command", metavar="SUBCOMMAND")
    records_sub.required = True
    migrate = records_sub.add_parser("migrate", help="bring the database to the newest schema (or --to REVISION)")
    migrate.add_argument("--db", required=True, metavar="URL", help="records database (sqlite:///..., postgresql://...)")
    migrate.add_argument("--to", default="head", metavar="REVISION", help="target revision (default: head)")
    migrate.set_defaults(func=run_migrate)
    status = records_sub.add_parser("status", help="the database's schema revision and the newest one")
    status.add_argument("--db", required=True, metavar="URL", help="records database")
    status.set_defaults(func=run_status)
    follow = records_sub.add_parser("follow-acd", help="store transferred calls' human legs from AMI queue events "
                                                        "(the SLA's queue answer; runs until stopped)")
    follow.add_argument("--db", required=True, metavar="URL", help="records database")
    follow.set_defaults(func=run_follow_acd)


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    """The cost and service-level inputs the KPIs are computed with (report and serve alike)."""
    parser.add_argument("--telephony-per-min", type=_money, default=0.0)
    parser.add_argument("--compute-per-min", type=_money, default=0.0)
    parser.add_argument("--human-per-min", type=_money, default=0.0)
    parser.add_argument("--human-minutes", type=_money, default=6.0,
                        help="a person's minutes on a transferred call when the ACD reports none (default 6)")
    parser.add_argument("--baseline-minutes", type=_money, help="human-only baseline: a person's minutes per call")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--answer-target-s", type=_money, default=3.0,
                        help="SLA: the agent's first prompt within this many seconds of the call's arrival (default 3)")
    parser.add_argument("--queue-answer-target-s", type=_money, default=20.0,
                        help="SLA: a person answers a transferred call within this many seconds (default 20)")
    parser.add_argument("--queue-target", type=_queue_target, action="append", default=[], metavar="QUEUE=SECONDS",
                        help="SLA: one queue's own answer target (repeatable)")


def _queue_target(text: str) -> tuple[str, float]:
    queue, sep, seconds = text.partition("=")
    if not sep or not queue.strip():
        raise argparse.ArgumentTypeError(f"expected QUEUE=SECONDS, got {text!r}")
    return queue.strip(), _money(seconds)


def _inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    from ari_agent.records.kpi import CostInputs, SlaTargets

    costs = CostInputs(args.telephony_per_min, args.compute_per_min, args.human_per_min, args.human_minutes,
                       args.baseline_minutes, args.currency)
    return costs, SlaTargets(args.answer_target_s, args.queue_answer_target_s, dict(args.queue_target))


def _open_url(url: str) -> Any:
    """A bare engine for ``records migrate``/``status`` (the store would migrate on open)."""
    import sqlalchemy as sa

    from ari_agent.records.store import _make_sqlite_folder, _safe_url

    _make_sqlite_folder(url)
    try:
        return sa.create_engine(url), _safe_url(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise AriAgentError(f"bad records database URL {_safe_url(url)}: {exc}") from None


def run_migrate(args: argparse.Namespace) -> int:
    from ari_agent.records import migrate

    engine, shown = _open_url(args.db)
    try:
        with _schema_errors(shown), engine.begin() as conn:
            before = migrate.state(conn)
            after = migrate.upgrade(conn, args.to)
    finally:
        engine.dispose()
    was = before.revision or ("empty" if before.legacy_version is None else f"legacy {before.legacy_version}")
    print(f"{shown}: schema {was} -> {after.revision} (newest: {after.head})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from ari_agent.records import migrate

    engine, shown = _open_url(args.db)
    try:
        with _schema_errors(shown), engine.connect() as conn:
            st = migrate.state(conn)
    finally:
        engine.dispose()
    legacy = "" if st.legacy_version is None else f", legacy version row {st.legacy_version}"
    print(f"{shown}: revision {st.revision or 'none'}{legacy}; newest {st.head}"
          f"{' (up to date)' if st.at_head else ' (run: ari-agent records migrate)'}")
    return 0 if st.at_head else 1


def run_follow_acd(args: argparse.Namespace) -> int:
    from ari_agent.cli.common import config_from
    from ari_agent.records.acd import AcdFollower
    from ari_agent.records.store import CallRecordStore

    cfg = config_from(args)
    store = CallRecordStore(args.db)

    async def follow() -> None:
        follower = AcdFollower(store, cfg.ami)
        try:
            connected = await follower.start()
            print(f"following queue events on AMI {cfg.ami.host}:{cfg.ami.port}"
                  f"{'' if connected else ' (not connected yet: retrying)'}", flush=True)
            await asyncio.Event().wait()
        finally:
            await follower.close()

    try:
        asyncio.run(follow())
    finally:
        store.close()
    return 0


@contextlib.contextmanager
def _schema_errors(shown: str) -> Iterator[None]:
    import sqlalchemy as sa
    from alembic.util import CommandError

    try:
        yield
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        raise AriAgentError(f"records database {shown}: {exc.__class__.__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def run_serve(args: argparse.Namespace) -> int:
    from ari_agent.cli.common import config_from
    from ari_agent.records.store import CallRecordStore

    host, _, port_s = args.bind.rpartition(":")
    if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise AriAgentError(f"--bind must be host:port, got {args.bind!r}")
    cfg = config_from(args)
    users = {name: a.password_hash.get_secret_value() for name, a in cfg.screenpop.agents.items()}
    if not users:
        raise AriAgentError("no accounts to sign in with: add screenpop.agents to the config "
                            "(the dashboard uses the screen-pop's accounts)")
    costs, sla = _inputs(args)
    store = CallRecordStore(args.db)
    try:
        asyncio.run(_serve(store, users, costs, sla, host, int(port_s), cfg.screenpop.secure_cookie,
                           float(cfg.screenpop.session_ttl_s)))
    finally:
        store.close()
    return 0


async def _serve(store: Any, users: dict[str, str], costs: Any, sla: Any, host: str, port: int, secure: bool,
                 ttl: float) -> None:
    from aiohttp import web

    from ari_agent.evaluation.dashboard import KpiDashboard

    dashboard = KpiDashboard(store, users, costs=costs, sla=sla, secure_cookie=secure, session_ttl_s=ttl)
    runner = web.AppRunner(dashboard.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"KPI dashboard on http://{host}:{port}/ ({len(users)} accounts)", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    from ari_agent.records.kpi import compute_kpis
    from ari_agent.records.kpi_report import to_csv, to_markdown
    from ari_agent.records.store import CallRecordStore

    if args.end <= args.start:
        raise AriAgentError(f"--to ({args.end}) must be after --from ({args.start})")
    start = dt.datetime.combine(args.start, dt.time(), dt.UTC)
    end = dt.datetime.combine(args.end, dt.time(), dt.UTC)
    costs, sla = _inputs(args)
    store = CallRecordStore(args.db)
    try:
        records = store.kpi_window(start, end)
    finally:
        store.close()
    kpis = compute_kpis(records, start, end, costs, sla=sla)
    sys.stdout.write(to_csv(kpis, costs) if args.format == "csv" else to_markdown(kpis, costs, sla))
    return 0
