"""``ari-agent call --wav FILE``: place a test call whose caller plays FILE and records what it hears."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ari_agent.cli.common import ari_client, config_from
from ari_agent.config import Config
from ari_agent.ops.test_caller import TestCaller, TestCallResult


def register(sub: Any) -> None:
    p = sub.add_parser("call", help="place a test call: the caller plays a WAV and records what it hears")
    p.add_argument("--wav", required=True, type=Path, help="what the caller says (mono 16-bit WAV, any rate)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--pre-wait", type=float, default=1.0, help="seconds before the caller speaks")
    p.add_argument("--tail-wait", type=float, default=6.0, help="seconds the caller listens after speaking")
    p.add_argument("--no-hangup", action="store_true", help="the caller never hangs up (the agent must)")
    p.add_argument("--max-duration", type=float, default=120.0)
    p.set_defaults(func=handle)


async def place(cfg: Config, args: argparse.Namespace) -> TestCallResult:
    async with ari_client(cfg) as ari:
        return await TestCaller(ari, cfg.pbx).place(
            args.wav, pre_wait_s=args.pre_wait, tail_wait_s=args.tail_wait, caller_hangs_up=not args.no_hangup,
            max_duration_s=args.max_duration,
        )


def handle(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    res = asyncio.run(place(cfg, args))
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        print(f"call {res.call_id}: answered={res.answered} duration={res.duration_s:.1f}s")
        print(f"  caller said:  {res.said}")
        print(f"  caller heard: {res.heard}")
    return 0 if res.answered else 1
