"""The speech figures of an audio-mode run: latency per stage, recognition WER, results per voice. Pure.

- latency, p50/p95 (nearest rank) per stage: ``response_caller_side`` (end of a caller turn → start
  of the agent's next speech) and ``barge_stop_caller_side`` (caller starts over a prompt → the agent's
  audio stops) from the caller-side recordings; the agent's own stages (``stt_final``, ``engine``,
  ``tts_first_audio``, ``first_rtp``, ... measured from the end of the caller's turn) from the records;
- WER: word edit distance of what the recogniser heard (the record's redacted ``heard``) against what the
  caller was made to say (the scenario's text, redacted alike), summed over calls, per voice too;
- per voice: scenarios and scenarios passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ari_agent.devtools.bench_stt import word_errors
from ari_agent.evaluation.audio_runner import AudioEvidence
from ari_agent.evaluation.judge import Verdict
from ari_agent.records.kpi import percentile
from ari_agent.redaction import redact


@dataclass
class SpeechFigures:
    calls: int
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> p50, p95, n
    wer: float | None = None
    wer_ref_words: int = 0
    per_voice: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    not_played: dict[str, str] = field(default_factory=dict)  # scenario id -> why not

    def to_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "latency_ms": self.latency_ms, "wer": self.wer,
                "wer_ref_words": self.wer_ref_words, "per_voice": self.per_voice, "not_played": self.not_played}


def speech_figures(played: Sequence[tuple[Verdict, AudioEvidence]], not_played: Mapping[str, str]) -> SpeechFigures:
    f = SpeechFigures(len(played), not_played=dict(not_played))
    stages: dict[str, list[float]] = {}
    for v, _ in played:
        for stage, values in v.trace.stage_ms.items():
            stages.setdefault(stage, []).extend(values)
    f.latency_ms = {s: {"p50": percentile(vs, 50), "p95": percentile(vs, 95), "n": float(len(vs))}
                    for s, vs in sorted(stages.items()) if vs}
    errors = words = 0
    voices: dict[str, list[tuple[bool, int, int]]] = {}
    for v, ev in played:
        e, n = call_word_errors(ev)
        errors, words = errors + e, words + n
        for voice in ev.voices or ["(none)"]:
            voices.setdefault(voice, []).append((v.passed, e, n))
    f.wer = errors / words if words else None
    f.wer_ref_words = words
    f.per_voice = {voice: {"scenarios": len(rows), "passed": sum(p for p, _, _ in rows),
                           "wer": (sum(e for _, e, _ in rows) / n) if (n := sum(n for _, _, n in rows)) else None}
                   for voice, rows in sorted(voices.items())}
    return f


def call_word_errors(ev: AudioEvidence) -> tuple[int, int]:
    """(word errors, reference words) of one call; (0, 0) without a record or a spoken reference."""
    if ev.record is None or not ev.reference:
        return 0, 0
    return word_errors(redact(" ".join(ev.reference)), " ".join(ev.record.heard))
