"""``ari-agent eval``: score the agent on scenario suites; gate a release on the figures.

``ari-agent eval SUITE... --mode text [--baseline results.json] [--gate] [--report-dir DIR]
[--records DB_URL]`` plays every scenario of the suites (files, or shipped suite names:
``regression``, ``per-intent``, ``red-team``, ``known-issues``; ``shipped`` = all gated shipped
suites) against the real engine and demo backend, prints one line per scenario and the figures,
writes report.md / report.html / results.json, and with ``--gate`` exits 1 when a gated suite
misses a threshold or regresses from the baseline.

``ari-agent eval import FILE... [--out DRAFT.yaml] [--name NAME] [--no-redact]`` turns exported
transcripts (``caller: ...`` / ``agent: ...`` lines, a blank line between calls) into a draft,
unlabelled suite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ari_agent.errors import AriAgentError


def register(sub: Any) -> None:
    parser = sub.add_parser("eval", help="score scenario suites (text mode), gate on the figures; 'eval import'",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="+", metavar="SUITE",
                        help="suite files or shipped suite names; or 'import FILE...'")
    parser.add_argument("--mode", choices=("text", "audio"), default="text")
    parser.add_argument("--baseline", help="results.json of an earlier run: fail on regressions past the tolerance")
    parser.add_argument("--gate", action="store_true", help="exit 1 when a gated suite misses its thresholds")
    parser.add_argument("--report-dir", help="write report.md, report.html and results.json here")
    parser.add_argument("--records", metavar="DB_URL", help="write a call record per scenario (e.g. sqlite:///r.db)")
    parser.add_argument("--map", help="run every suite on this intent map instead of the suites' own")
    parser.add_argument("--kill-switch", action="store_true", help="every call in transfer-only mode")
    parser.add_argument("--lexical", action="store_true", help="lexical classifier only (no sentence embeddings)")
    parser.add_argument("--quiet", action="store_true", help="no per-scenario lines")
    parser.add_argument("--out", help="eval import: write the draft suite here (default: stdout)")
    parser.add_argument("--name", help="eval import: suite name (default: the first file's name)")
    parser.add_argument("--no-redact", action="store_true", help="eval import: keep personal data as it is")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.suites[0] == "import":
        return _import(args)
    if args.mode == "audio":
        raise AriAgentError("--mode audio is not implemented yet: audio-mode evaluation (real calls through "
                            "Asterisk) is still to come; use --mode text")
    from ari_agent.evaluation.scenario import resolve_suite_path, shipped_suites

    paths: list[Path] = []
    for name in args.suites:
        if name == "shipped":
            paths += [p for p in shipped_suites() if p.stem != "known-issues"]
        else:
            paths.append(resolve_suite_path(name))
    return asyncio.run(_evaluate(args, paths))


async def _evaluate(args: argparse.Namespace, paths: list[Path]) -> int:
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.evaluation.judge import Verdict
    from ari_agent.evaluation.report import HEADLINE, fmt, overall, write_reports
    from ari_agent.evaluation.run import evaluate, load_baseline
    from ari_agent.evaluation.scenario import Suite

    baseline = load_baseline(args.baseline) if args.baseline else None
    store = None
    if args.records:
        from ari_agent.records.store import CallRecordStore

        store = CallRecordStore(args.records)

    def show(suite: Suite, v: Verdict) -> None:
        if not args.quiet:
            mark = "ok  " if v.passed else "FAIL"
            why = "" if v.passed else "  <- " + "; ".join(v.failures)
            print(f"{mark} {suite.name}/{v.scenario.id}{why}", flush=True)

    try:
        result = await evaluate(
            paths, lambda m: build_classifier(m.nlu_intents(), embeddings=False if args.lexical else None),
            map_override=Path(args.map) if args.map else None, force_kill_switch=args.kill_switch,
            baseline=baseline, on_scenario=show, on_record=store.add if store is not None else None,
            classifier_name="lexical" if args.lexical else "default")
    finally:
        if store is not None:
            store.close()
    for s in result.suites:
        figures = ", ".join(f"{k} {fmt(k, s.metrics.get(k))}" for k in HEADLINE)
        print(f"suite {s.suite.name}{'' if s.suite.spec.gated else ' (not gated)'}: "
              f"{s.metrics.passed}/{s.metrics.scenarios} passed; {figures}")
    total = overall(result)
    print(f"all: {total.passed}/{total.scenarios} passed; "
          + ", ".join(f"{k} {fmt(k, total.get(k))}" for k in HEADLINE))
    if args.report_dir:
        written = write_reports(result, Path(args.report_dir))
        print("reports: " + ", ".join(str(p) for p in written.values()))
    if args.records:
        print(f"records: {total.scenarios} call records written to the records database")
    failures = result.gate_failures
    for f in failures:
        print(f"GATE FAIL {f}", file=sys.stderr)
    if args.gate:
        print("gate: " + ("passed" if not failures else f"FAILED ({len(failures)})"))
        return 1 if failures else 0
    return 0


def _import(args: argparse.Namespace) -> int:
    from ari_agent.evaluation.transcript_import import draft_suite, parse_transcripts

    files = [Path(f) for f in args.suites[1:]]
    if not files:
        raise AriAgentError("eval import needs at least one transcript file")
    calls = [c for f in files for c in parse_transcripts(f)]
    if not calls:
        raise AriAgentError("no calls found in " + ", ".join(str(f) for f in files))
    text = draft_suite(calls, args.name or files[0].stem, redact_pii=not args.no_redact)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(calls)} draft scenario(s) written to {args.out}: label each 'expect' before running")
    else:
        sys.stdout.write(text)
    return 0
