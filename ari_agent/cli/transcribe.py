"""``ari-agent transcribe FILE...``: what the agent's ears make of recordings, one JSON line per file.

For admins testing their own recordings: each WAV (16-bit PCM, any rate, mono or stereo) is brought to
the phone line's 8 kHz and fed, 20 ms at a time, to the configured recogniser (``stt.engine`` in the
service config, ``-c``), biased as on a call: ``--expect open`` uses the intent map's example
phrasings (the domain LM / the whisper prompt), the other kinds the turn's grammar. Output, in the
order given: ``{"file", "text", "confidence", "engine", "audio_ms", "finish_ms", "decode_ms", "rtf",
"error"}`` (``finish_ms``: the wait after the audio ended; ``decode_ms``: feeding + finishing, wall clock,
worker processes included; ``rtf`` = decode_ms / audio_ms); a file that cannot be read gets a line with
``error`` set and the exit status is 1.

``--against CODE`` (a UK postcode; the whisper or both engine): each recording is also checked against that
code as if it were the one on record (``speech/code_check.py``): ``"record_check": {"matches", "heard",
"gap", "weakest", "check_ms", "error"}``, to see whether recordings of callers saying their postcode would
pass a check against the record, and by how much.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ari_agent.config import load_config
from ari_agent.conversation.intent_map import DEMO_MAP_PATH, IntentMap, load_intent_map
from ari_agent.errors import AriAgentError, MediaError
from ari_agent.media.pcm import Pcm, wav_to_line_rate
from ari_agent.seam import Expectation
from ari_agent.speech.recognizer import SpeechRecognizer
from ari_agent.speech.utterance import recognise_utterance

KINDS = ("open", "yes_no", "digits", "number", "date", "time", "letters", "free_text")


def register(sub: Any) -> None:
    parser = sub.add_parser("transcribe", help="transcribe WAV files with the configured recogniser (JSON lines)",
                            description=__doc__)
    parser.add_argument("files", nargs="+", type=Path, help="WAV files (16-bit PCM)")
    parser.add_argument("--expect", choices=KINDS, default="open", help="the turn kind to bias for (default: open)")
    parser.add_argument("--digits", metavar="MIN-MAX", help="with --expect digits: how many digits (e.g. 4-8)")
    parser.add_argument("--map", help="intent map whose examples bias open turns (default: the configured map)")
    parser.add_argument("--json", action="store_true", help="JSON lines (the default; kept for scripts)")
    parser.add_argument("--against", metavar="POSTCODE",
                        help="also check each recording against this UK postcode as the one on record "
                             "(whisper or both engine)")
    parser.set_defaults(func=run)


def expectation(kind: str, digits: str | None, intent_map: IntentMap) -> Expectation:
    if kind == "open":
        return intent_map.open_expectation()
    if kind == "digits" and digits:
        lo, _, hi = digits.partition("-")
        try:
            return Expectation(kind="digits", min_digits=int(lo), max_digits=int(hi or lo))
        except ValueError:
            raise AriAgentError(f"--digits {digits!r}: expected MIN-MAX, e.g. 4-8") from None
    return Expectation(kind=kind)  # type: ignore[arg-type]  # KINDS are Expectation kinds


def run(args: argparse.Namespace) -> int:
    from ari_agent.call.services import call_recognizer
    from ari_agent.ops.engines import resolve_engines

    cfg = resolve_engines(load_config(args.config)).config  # stt.engine auto: as `ari-agent run` decides it
    intent_map = load_intent_map(args.map or cfg.conversation.intent_map or DEMO_MAP_PATH)
    expect = expectation(args.expect, args.digits, intent_map)
    record = record_code(args.against, cfg.stt.engine) if args.against else None
    pool = None
    if cfg.stt.engine in ("whisper", "both"):
        from ari_agent.speech.whisper_stt import create_whisper_pool

        pool = create_whisper_pool(cfg.stt, cfg.models.dir)
    try:
        recognizer = call_recognizer(cfg.stt, intent_map, pool)
        check = None
        if record is not None and pool is not None:
            check = functools.partial(check_against, pool, record)
        try:
            return transcribe_files(recognizer, expect, args.files, sys.stdout, check)
        finally:
            recognizer.close()
    finally:
        if pool is not None:
            pool.close()


def record_code(text: str, engine: str) -> str:
    """``--against``'s postcode, checked (AriAgentError: a plain one-line error)."""
    from ari_agent.uk_postcodes import compact, is_postcode

    code = compact(text)
    if not is_postcode(code):
        raise AriAgentError(f"--against {text!r}: not a UK postcode (e.g. SW1A 1AA)")
    if engine not in ("whisper", "both"):
        raise AriAgentError(f"--against needs the whisper or both engine (stt.engine is {engine}): run "
                            "`ari-agent models prepare`, or set ARI_AGENT__STT__ENGINE=both")
    return code


def check_against(pool: Any, record: str, pcm: Pcm) -> dict[str, Any]:
    from ari_agent.speech.code_check import matches

    got = pool.check_code(pcm, record)
    return {"matches": matches(got), "heard": got.heard, "gap": _rounded(got.gap), "weakest": round(got.weakest, 2),
            "check_ms": round(got.latency_ms, 1), "error": got.error}


def _rounded(x: float) -> float | None:
    return round(x, 2) if math.isfinite(x) else None  # JSON has no infinity: the record could not be written


def transcribe_files(recognizer: SpeechRecognizer, expect: Expectation, files: list[Path], out: TextIO,
                     check: Callable[[Pcm], dict[str, Any]] | None = None) -> int:
    """One JSON line per file, in order; 1 if any file could not be transcribed. ``check``: a check of each
    recording against a code on record (``--against``), added to its line as ``record_check``."""
    status = 0
    for path in files:
        line = transcribe_one(recognizer, expect, path, check)
        if line["error"]:
            status = 1
        out.write(json.dumps(line) + "\n")
        out.flush()
    return status


def transcribe_one(recognizer: SpeechRecognizer, expect: Expectation, path: Path,
                   check: Callable[[Pcm], dict[str, Any]] | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"file": str(path), "text": "", "confidence": 0.0, "engine": recognizer.engine,
                            "audio_ms": 0, "finish_ms": None, "decode_ms": None, "rtf": None, "error": None}
    try:
        pcm = wav_to_line_rate(path.read_bytes())
    except OSError as exc:
        line["error"] = f"cannot read: {exc.strerror or exc}"
        return line
    except MediaError as exc:
        line["error"] = str(exc)
        return line
    line["audio_ms"] = pcm.size // 8
    got = recognise_utterance(recognizer, expect, pcm)
    result, decode_ms = got.transcript, got.decode_ms
    line.update(text=result.text, confidence=round(result.confidence, 3), engine=result.engine or recognizer.engine,
                finish_ms=round(got.finish_ms, 1), decode_ms=round(decode_ms, 1),
                rtf=round(decode_ms / line["audio_ms"], 4) if line["audio_ms"] else None, error=result.error)
    if check is not None:
        line["record_check"] = check(pcm)
    return line
