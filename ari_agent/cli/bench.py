"""``ari-agent bench media --calls N``: measured on real calls through the running PBX."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ari_agent.cli.common import config_from
from ari_agent.config import Config


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmarks on real calls (needs a running PBX: ari-agent pbx up)")
    bsub = p.add_subparsers(dest="bench", metavar="WHAT")
    bsub.required = True
    media = bsub.add_parser("media", help="CPU/RSS per call, pacing jitter and loss for N concurrent calls")
    media.add_argument("--calls", type=int, default=1)
    media.add_argument("--work-dir", type=Path, default=None)
    media.set_defaults(func=handle_media)
    nlu = bsub.add_parser("nlu", help="NLU accuracy (test set) and engine CPU per turn, classification included")
    nlu.add_argument("--map", type=Path, default=None,
                     help="intent map or NLU-only YAML (intents: name, examples, keywords); default: the demo map")
    nlu.add_argument("--test", "--testset", dest="testset", type=Path, default=None, help="labelled JSON lines")
    nlu.add_argument("--turns", type=int, default=1000)
    nlu.add_argument("--engine-intents", type=int, default=150,
                     help="with --map: engine CPU per turn measured with a classifier of this many intents")
    nlu.add_argument("--errors", action="store_true", help="list every misclassified utterance")
    nlu.set_defaults(func=handle_nlu)
    lat = bsub.add_parser("latency", help="turn latency and barge-in stop time from caller-side recordings")
    lat.add_argument("--calls", type=int, default=1)
    lat.add_argument("--work-dir", type=Path, default=None)
    lat.add_argument("--rounds", type=int, default=1, help="rounds of N concurrent calls, one after another")
    lat.add_argument("--plot", type=Path, default=None, help="PNG of the latency distribution")
    lat.set_defaults(func=handle_latency)
    load = bsub.add_parser("load", help="N concurrent calls held for M minutes: dropped calls, leaks, RSS growth, "
                                        "turn latency under load")
    load.add_argument("--calls", type=int, default=30)
    load.add_argument("--minutes", type=float, default=10.0)
    load.add_argument("--work-dir", type=Path, default=None)
    load.set_defaults(func=handle_load)
    _register_killswitch(bsub)
    register_stt(bsub)
    from ari_agent.cli.drill import register_drill

    register_drill(bsub)


def engines_config(args: argparse.Namespace) -> Config:
    """The config with its speech engines resolved (``auto``: as ``ari-agent run`` would, logged once)."""
    from ari_agent.ops.engines import resolve_engines

    return resolve_engines(config_from(args)).config


def handle_media(args: argparse.Namespace) -> int:
    cfg = engines_config(args)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-bench-"))
    result = asyncio.run(_media(cfg, args.calls, work))
    print(json.dumps(result, indent=2))
    return 0 if result["calls_served"] == args.calls else 1


async def _media(cfg: Any, calls: int, work: Path) -> dict[str, Any]:
    from ari_agent.devtools.bench_media import run_media_bench

    return await run_media_bench(cfg, calls, work)


def handle_latency(args: argparse.Namespace) -> int:
    from ari_agent.devtools.bench_latency import run_latency_bench

    cfg = engines_config(args)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-bench-"))
    plot = args.plot or work / "latency.png"
    result = asyncio.run(run_latency_bench(cfg, args.calls, work, plot, args.rounds))
    print(json.dumps(result, indent=2))
    return 0


def handle_load(args: argparse.Namespace) -> int:
    from ari_agent.devtools.bench_load import run_load_bench

    cfg = engines_config(args)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ari-agent-bench-"))
    result = asyncio.run(run_load_bench(cfg, args.calls, args.minutes, work))
    print(json.dumps(result, indent=2))
    clean = not (result["dropped_calls"] or result["leaked_channels"] or result["leaked_bridges"])
    return 0 if clean else 1


def handle_nlu(args: argparse.Namespace) -> int:
    from ari_agent.devtools import bench_nlu as nlu_bench
    from ari_agent.devtools.bench_engine import engine_turn_benchmark

    if args.map is not None and args.testset is not None:
        # Anyone's map: classifier vs the embedding + logistic-regression baseline, accuracy against
        # intents and examples per intent, engine CPU per turn at --engine-intents intents.
        report = nlu_bench.scaling_report(args.map, args.testset, engine_intents=args.engine_intents,
                                          engine_turns=min(args.turns, 500))
        print(json.dumps(report, indent=2, default=str))
        return 0 if "skipped" not in report else 1
    nlu = nlu_bench.run_nlu_benchmark(args.map or nlu_bench.DEFAULT_MAP, args.testset or nlu_bench.DEFAULT_TESTSET)
    if not args.errors:
        for path in ("lexical", "combined"):
            nlu.get(path, {}).pop("errors", None)
    engine = engine_turn_benchmark(args.turns)
    print(json.dumps({"nlu": nlu, "engine_turn": engine}, indent=2, default=str))
    return 0


# ------------------------------------------------------------------ bench stt


def register_stt(bsub: Any) -> None:
    stt = bsub.add_parser("stt", help="recognition per turn kind x engine on the generated phone-audio test set")
    stt.add_argument("--engines", default="both",
                     help="pocketsphinx, whisper, both (comma-separated; 'both' alone runs all three rows)")
    stt.add_argument("--kinds", default=None,
                     help="comma-separated: open,out_of_scope,digits,postcode,yes_no,date,time")
    stt.add_argument("--limit", type=int, default=None, help="at most N utterances per kind")
    stt.add_argument("--voices", default=None, help="caller voices (default: the set's five)")
    stt.add_argument("--cache-dir", type=Path, default=None, help="rendered audio cache (default: $TMPDIR)")
    stt.add_argument("--set", type=Path, default=None, dest="set_path",
                     help="another labelled set in the phone set's YAML format (default: the shipped one)")
    stt.add_argument("--json", action="store_true", help="the whole result as JSON (records included)")
    stt.add_argument("--no-record-check", action="store_true",
                     help="do not check postcode turns against codes on record (whisper and both engines)")
    stt.set_defaults(func=handle_stt)


def _stt_progress(done: int, total: int) -> None:
    if done % 50 == 0 or done == total:
        print(f"bench stt: {done}/{total} utterances", file=sys.stderr, flush=True)


def handle_stt(args: argparse.Namespace) -> int:
    from ari_agent.devtools import bench_stt
    from ari_agent.devtools.phone_set import DEFAULT_CACHE, PhoneSetError
    from ari_agent.ops.models import prepared_whisper_model
    from ari_agent.speech.code_check import CheckLimits
    from ari_agent.speech.tts_factory import prepared_piper_voice

    cfg = config_from(args)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if engines == ["both"]:
        engines = list(bench_stt.ENGINES)
    whisper = cfg.stt.whisper.model_path or prepared_whisper_model(cfg.models.dir)
    try:
        result = bench_stt.run_stt_bench(
            engines=engines, kinds=args.kinds.split(",") if args.kinds else None, limit=args.limit,
            whisper_model=whisper, piper_model=cfg.tts.piper.model_path or prepared_piper_voice(cfg.models.dir),
            voices=args.voices.split(",") if args.voices else None, cache_dir=args.cache_dir or DEFAULT_CACHE,
            whisper_threads=cfg.stt.whisper.threads, whisper_audio_ctx_floor=cfg.stt.whisper.audio_ctx_floor,
            progress=_stt_progress, check_limits=None if args.no_record_check else CheckLimits(),
            set_path=args.set_path)
    except (ValueError, PhoneSetError) as exc:
        print(f"ari-agent bench stt: {exc}")
        return 2
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{result['utterances']} utterances, voices {', '.join(result['voices'])}, conditions "
          f"{result['conditions']}; {result['cpus']} CPUs; wall {result['wall_s']} s")
    print(result["table"])
    return 0


# ---------------------------------------------------------------------- kill switch (governance)
def _register_killswitch(bsub: Any) -> None:
    ks = bsub.add_parser("killswitch", help="time from `killswitch on` to transfer-only in N agent processes")
    ks.add_argument("--agents", type=int, default=3)
    ks.add_argument("--flips", type=int, default=50, help="on/off rounds through Redis")
    ks.add_argument("--cli-flips", type=int, default=5, help="rounds through the `ari-agent killswitch` command")
    ks.add_argument("--override-flips", type=int, default=10, help="rounds through the override file")
    ks.add_argument("--redis-url", default=None, help="default: a private redis-server on a free port")
    ks.set_defaults(func=handle_killswitch)


def handle_killswitch(args: argparse.Namespace) -> int:
    from ari_agent.devtools.bench_killswitch import run_killswitch_bench

    result = run_killswitch_bench(args.agents, args.flips, args.cli_flips, args.override_flips, args.redis_url)
    print(json.dumps(result, indent=2))
    return 0
