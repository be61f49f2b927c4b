"""``ari-agent eval``: score the agent on scenario suites; gate a release on the figures.

``ari-agent eval SUITE... --mode text [--baseline results.json] [--gate] [--report-dir DIR]
[--records DB_URL]`` plays every scenario of the suites (files, or shipped suite names:
``regression``, ``per-intent``, ``red-team``, ``known-issues``; ``shipped`` = all gated shipped
suites) against the real engine and demo backend, prints one line per scenario and the figures,
writes report.md / report.html / results.json, and with ``--gate`` exits 1 when a gated suite
misses a threshold or regresses from the baseline.

``--mode audio`` places a real call per scenario through the local Asterisk (``ari-agent pbx up``
first): the caller's turns are synthesised at phone quality in several voices (``--voices``), an agent
runs in this process with the service config (``-c``) and writes a call record per call (``--records``,
default ``<report dir>/audio-records.sqlite3``); each call is judged from its record and the
caller-side recordings. The shipped voice suites: ``voice`` (the full set), ``voice-smoke`` (CI).
The report puts the same scenarios' text-mode figures beside the audio ones, with latency per stage
and the recognition WER (docs/evaluation.md).

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
    parser = sub.add_parser("eval", help="score scenario suites (text or audio mode), gate on the figures; "
                                         "'eval import'",
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
    parser.add_argument("--voices", help="audio mode: caller voices, comma-separated, rotated over the scenarios "
                                         "that name none (default flite:rms,flite:slt,flite:awb,flite:kal16,"
                                         "espeak:en-us)")
    parser.add_argument("--work-dir", help="audio mode: rendered caller turns (default: the report dir or a "
                                           "temporary folder)")
    parser.add_argument("--out", help="eval import: write the draft suite here (default: stdout)")
    parser.add_argument("--name", help="eval import: suite name (default: the first file's name)")
    parser.add_argument("--no-redact", action="store_true", help="eval import: keep personal data as it is")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.suites[0] == "import":
        return _import(args)
    from ari_agent.evaluation.scenario import resolve_suite_path, shipped_suites

    paths: list[Path] = []
    for name in args.suites:
        if name == "shipped":
            paths += [p for p in shipped_suites() if p.stem != "known-issues"]
        else:
            paths.append(resolve_suite_path(name))
    if args.mode == "audio":
        return asyncio.run(_evaluate_audio(args, paths))
    return asyncio.run(_evaluate(args, paths))


async def _evaluate(args: argparse.Namespace, paths: list[Path]) -> int:
    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.evaluation.judge import Verdict
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
    n = sum(s.metrics.scenarios for s in result.suites)
    return _summarise(args, result, f"records: {n} call records written to the records database"
                      if args.records else None)


async def _evaluate_audio(args: argparse.Namespace, paths: list[Path]) -> int:
    import tempfile

    from ari_agent.conversation.nlu import build_classifier
    from ari_agent.evaluation.audio_plan import DEFAULT_VOICES
    from ari_agent.evaluation.audio_run import evaluate_audio
    from ari_agent.evaluation.audio_runner import AudioEvidence
    from ari_agent.evaluation.judge import Verdict
    from ari_agent.evaluation.run import load_baseline
    from ari_agent.evaluation.scenario import Suite

    if args.kill_switch or args.map or args.lexical:
        raise AriAgentError("--kill-switch, --map and --lexical are text-mode options")
    voices = tuple(v.strip() for v in args.voices.split(",") if v.strip()) if args.voices else DEFAULT_VOICES
    baseline = load_baseline(args.baseline) if args.baseline else None
    work = Path(args.work_dir or args.report_dir or tempfile.mkdtemp(prefix="ari-agent-eval-audio-"))
    records = args.records or f"sqlite:///{(work / 'audio-records.sqlite3').resolve()}"

    def show(suite: Suite, v: Verdict, ev: AudioEvidence | None) -> None:
        if args.quiet:
            return
        mark = "ok  " if v.passed else "FAIL"
        why = "" if v.passed else "  <- " + "; ".join(v.failures)
        lat = ev.response_s if ev is not None else []
        extra = f" [{', '.join(ev.voices)}; response {', '.join(f'{s:.2f}' for s in lat)} s]" if ev else ""
        print(f"{mark} {suite.name}/{v.scenario.id}{extra}{why}", flush=True)

    try:
        result = await evaluate_audio(
            paths, lambda m: build_classifier(m.nlu_intents()), records_url=records, work_dir=work,
            config_path=getattr(args, "config", None), voices=voices, baseline=baseline, on_scenario=show)
    except TimeoutError:
        raise AriAgentError("the agent could not connect to Asterisk's ARI: start the PBX first "
                            "(ari-agent pbx up)") from None
    return _summarise(args, result, records_note=f"records: one call record per call in {records}")


def _summarise(args: argparse.Namespace, result: Any, records_note: str | None) -> int:
    from ari_agent.evaluation.report import HEADLINE, fmt, overall, write_reports

    for s in result.suites:
        figures = ", ".join(f"{k} {fmt(k, s.metrics.get(k))}" for k in HEADLINE)
        print(f"suite {s.suite.name}{'' if s.suite.spec.gated else ' (not gated)'}: "
              f"{s.metrics.passed}/{s.metrics.scenarios} passed; {figures}")
        if s.text_metrics is not None:
            t = s.text_metrics
            print(f"  same scenarios in text mode: {t.passed}/{t.scenarios} passed; "
                  + ", ".join(f"{k} {fmt(k, t.get(k))}" for k in HEADLINE))
        if s.speech is not None:
            sp = s.speech
            lat = "; ".join(f"{stage} p50 {f['p50']:.0f} / p95 {f['p95']:.0f} ms (n {int(f['n'])})"
                            for stage, f in sp.latency_ms.items())
            wer = "–" if sp.wer is None else f"{100 * sp.wer:.1f}% of {sp.wer_ref_words} words"
            print(f"  speech: WER {wer}; {lat}")
            for sid, why in sp.not_played.items():
                print(f"  not played by voice: {sid}: {why}")
    total = overall(result)
    print(f"all: {total.passed}/{total.scenarios} passed; "
          + ", ".join(f"{k} {fmt(k, total.get(k))}" for k in HEADLINE))
    if args.report_dir:
        written = write_reports(result, Path(args.report_dir))
        print("reports: " + ", ".join(str(p) for p in written.values()))
    if records_note:
        print(records_note)
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
