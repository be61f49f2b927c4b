"""``ari-agent call --wav FILE``: place a test call whose caller plays FILE and records what it hears."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ari_agent.cli.common import ari_client, config_from
from ari_agent.config import Config
from ari_agent.devtools.test_caller import TestCaller, TestCallResult
from ari_agent.devtools.voices import synthesize_caller


def register(sub: Any) -> None:
    p = sub.add_parser("call", help="place a test call: the caller plays a WAV and records what it hears")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--wav", type=Path, help="what the caller says (mono 16-bit WAV, any rate)")
    what.add_argument("--say", action="append", metavar="TEXT",
                      help="a caller utterance, synthesised (repeat for a conversation: each is spoken after "
                           "the agent's prompt ends)")
    p.add_argument("--voice", default="flite:rms",
                   help="caller voice for --say: flite:rms|slt|awb|kal16, espeak:en-us")
    p.add_argument("--barge-in", action="store_true", help="speak the first --say utterance over the greeting")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--pre-wait", type=float, default=1.0, help="seconds before the caller speaks")
    p.add_argument("--tail-wait", type=float, default=6.0, help="seconds the caller listens after speaking")
    p.add_argument("--no-hangup", action="store_true", help="the caller never hangs up (the agent must)")
    p.add_argument("--max-duration", type=float, default=120.0)
    p.set_defaults(func=handle)


async def place(cfg: Config, args: argparse.Namespace) -> TestCallResult:
    async with ari_client(cfg) as ari:
        caller = TestCaller(ari, cfg.pbx)
        if args.say:
            voice_dir = cfg.tts.cache_dir.parent / "caller-voices"
            wavs = [synthesize_caller(text, args.voice, voice_dir) for text in args.say]
            modes = ("b" if args.barge_in else "t") + "t" * (len(wavs) - 1)
            return await caller.place_dialog(wavs, modes, tail_wait_s=args.tail_wait,
                                             max_duration_s=args.max_duration)
        return await caller.place(
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
