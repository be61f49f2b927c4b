"""``ari-agent bench media --calls N``: measured on real calls through the running PBX."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from ari_agent.cli.common import config_from


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks on real calls (needs a running PBX: ari-agent pbx up)")
    bsub = p.add_subparsers(dest="bench", metavar="WHAT")
    bsub.required = True
    media = bsub.add_parser("media", help="CPU/RSS per call, pacing jitter and loss for N concurrent calls")
    media.add_argument("--calls", type=int, default=1)
    media.add_argument("--work-dir", type=Path, default=None)
    media.set_defaults(func=handle_media)


def handle_media(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-bench-"))
    result = asyncio.run(_media(cfg, args.calls, work))
    print(json.dumps(result, indent=2))
    return 0 if result["calls_served"] == args.calls else 1


async def _media(cfg: Any, calls: int, work: Path) -> dict[str, Any]:
    from ari_agent.ops.bench_media import run_media_bench

    return await run_media_bench(cfg, calls, work)
