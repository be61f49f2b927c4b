"""``ari-agent bench drill ...``: fault drills on real processes (docs/fault-drills.md).

- ``redis-outage``: redis stopped for ``--down-s`` seconds, ``--cycles`` times, while writes go on;
  accepted vs applied vs duplicated counted in the demo backend. With ``--calls-per-cycle N``: N real
  calls through the PBX (``ari-agent pbx up``) during each outage make the writes, in the agent's speech loop.
- ``worker-kill``: RQ workers SIGKILLed at random points over ``--jobs`` write jobs; duplicate side
  effects counted in the demo backend.

Each prints its figures as JSON (and writes them to ``--out``) and exits 0 only when the drill passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def register_drill(bsub: Any) -> None:
    drill = bsub.add_parser("drill", help="fault drills: redis outages, RQ worker kills (docs/fault-drills.md)")
    dsub = drill.add_subparsers(dest="drill", metavar="DRILL")
    dsub.required = True
    ro = dsub.add_parser("redis-outage", help="stop redis N times while writes go on; count them in the backend")
    ro.add_argument("--cycles", type=int, default=100)
    ro.add_argument("--down-s", type=float, default=30.0, help="seconds redis stays down per cycle")
    ro.add_argument("--up-s", type=float, default=5.0, help="seconds redis stays up between outages (±20 %%)")
    ro.add_argument("--rate", type=float, default=2.0, help="writes per second, all through the outages")
    ro.add_argument("--stop-mode", choices=["kill", "term"], default="kill",
                    help="kill: SIGKILL redis (a crash); term: a clean shutdown")
    ro.add_argument("--calls-per-cycle", type=int, default=0,
                    help="N > 0: N real calls through the PBX per outage make the writes (needs ari-agent pbx up; "
                         "--rate is then unused); 0: the tool path alone, --rate writes per second")
    _common(ro)
    ro.set_defaults(func=handle_redis_outage)
    wk = dsub.add_parser("worker-kill", help="SIGKILL RQ workers mid-job over N jobs; count side effects")
    wk.add_argument("--jobs", type=int, default=1000)
    wk.add_argument("--workers", type=int, default=2)
    wk.add_argument("--kill-every-s", type=float, default=1.5, help="mean seconds between kills")
    _common(wk)
    wk.set_defaults(func=handle_worker_kill)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--work-dir", type=Path, default=None, help="logs, databases, spool (default: a temp dir)")
    p.add_argument("--out", type=Path, default=None, help="also write the figures (JSON) here")
    p.add_argument("--seed", type=int, default=13)


def _progress(what: str) -> Any:
    def report(done: int, total: int, count: int) -> None:
        print(f"drill {what}: {done}/{total} ({count} so far)", file=sys.stderr, flush=True)

    return report


def _finish(figures: dict[str, Any], ok: bool, out: Path | None) -> int:
    figures["passed"] = ok
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0 if ok else 1


def handle_redis_outage(args: argparse.Namespace) -> int:
    from ari_agent.devtools.drill_redis import OutageSettings, passed, run_redis_outage_drill

    if args.cycles < 1 or args.down_s <= 0 or args.up_s <= 0 or args.rate <= 0:
        print("ari-agent bench drill redis-outage: --cycles, --down-s, --up-s and --rate must be positive")
        return 2
    if args.calls_per_cycle < 0:
        print("ari-agent bench drill redis-outage: --calls-per-cycle must be 0 or more")
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-drill-"))
    if args.calls_per_cycle > 0:
        return _redis_outage_with_calls(args, work)
    settings = OutageSettings(cycles=args.cycles, down_s=args.down_s, up_s=args.up_s, rate_per_s=args.rate,
                              stop_mode=args.stop_mode, seed=args.seed)
    figures = asyncio.run(run_redis_outage_drill(settings, work, _progress("redis-outage")))
    figures["work_dir"] = str(work)
    return _finish(figures, passed(figures), args.out)


def _redis_outage_with_calls(args: argparse.Namespace, work: Path) -> int:
    from ari_agent.cli.common import config_from
    from ari_agent.devtools.drill_redis_calls import RealCallSettings, passed, run_real_call_outage_drill
    from ari_agent.ops.engines import resolve_engines

    settings = RealCallSettings(cycles=args.cycles, calls_per_cycle=args.calls_per_cycle, down_s=args.down_s,
                                up_s=args.up_s, stop_mode=args.stop_mode)
    cfg = resolve_engines(config_from(args)).config  # stt/tts "auto": as `ari-agent run` decides it
    figures = asyncio.run(run_real_call_outage_drill(settings, cfg, work, _progress("redis-outage (real calls)")))
    figures["engines"] = {"stt": cfg.stt.engine, "tts": cfg.tts.engine}
    figures["work_dir"] = str(work)
    return _finish(figures, passed(figures), args.out)


def handle_worker_kill(args: argparse.Namespace) -> int:
    from ari_agent.devtools.drill_worker import KillSettings, passed, run_worker_kill_drill

    if args.jobs < 1 or args.workers < 1 or args.kill_every_s <= 0:
        print("ari-agent bench drill worker-kill: --jobs, --workers and --kill-every-s must be positive")
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-drill-"))
    settings = KillSettings(jobs=args.jobs, workers=args.workers, kill_every_s=args.kill_every_s, seed=args.seed)
    figures = asyncio.run(run_worker_kill_drill(settings, work, _progress("worker-kill")))
    figures["work_dir"] = str(work)
    return _finish(figures, passed(figures), args.out)
