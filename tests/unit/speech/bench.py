"""Recognition check: per voice and mode, through the real endpointer and the pocketsphinx recogniser.

Run the full table:  .venv/bin/python -m tests.unit.speech.bench [--upsample LQ] [--voices flite:rms,...]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ari_agent.config import PocketsphinxSettings
from ari_agent.conversation.slots.digits import digit_runs
from ari_agent.conversation.slots.yes_no import parse_yes_no
from ari_agent.media.endpointer import Endpointer, SpeechEnd
from ari_agent.media.pcm import SAMPLES_PER_FRAME
from ari_agent.seam import Expectation
from ari_agent.speech.grammar_lm import NO_GRAMMAR_PHRASES, YES_GRAMMAR_PHRASES, words_of
from ari_agent.speech.pocketsphinx_stt import PocketsphinxRecognizer
from ari_agent.speech.recognizer import Transcript
from ari_agent.speech.turn_completion import TurnCompletion, is_patient

from .corpus import DIGITS, OPEN, VOICES, YES_NO, caller_audio, demo_examples, word_errors


class _Answers:
    """The call layer's answer reader without a classifier: open turns never end early here."""

    def is_yes_no(self, text: str) -> bool:
        return parse_yes_no(text) is not None

    def digit_count(self, text: str) -> int:
        return sum(len(run) for run in digit_runs(text))

    def confident_request(self, text: str) -> bool:
        return False

    def unfinished(self, text: str) -> bool:
        return False


_YES = {" ".join(words_of(p)) for p in YES_GRAMMAR_PHRASES}
_NO = {" ".join(words_of(p)) for p in NO_GRAMMAR_PHRASES}


@dataclass
class ModeResult:
    n: int = 0
    correct: int = 0  # phrase-level: polarity (yes/no), whole string (digits), exact sentence (open)
    word_err: int = 0
    words: int = 0
    audio_ms: int = 0
    cpu_s: float = 0.0
    finish_ms: list[float] = field(default_factory=list)
    hyps: list[tuple[str, str]] = field(default_factory=list)
    confidences: list[tuple[bool, float]] = field(default_factory=list)  # (phrase right, confidence)
    intent_ok: int = 0  # open turn: the NLU found the right intent in the transcript

    @property
    def wer(self) -> float:
        return self.word_err / self.words if self.words else 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def rtf(self) -> float:
        return self.cpu_s / (self.audio_ms / 1000.0) if self.audio_ms else 0.0


def run_turn(rec: PocketsphinxRecognizer, expect: Expectation, audio: object) -> tuple[Transcript, float]:
    """Feed a turn frame by frame through the endpointer; finish at its SpeechEnd. Returns the
    transcript and the CPU seconds spent in the recogniser (feed + finish)."""
    import numpy as np

    pcm = np.asarray(audio)
    ep = Endpointer(partial_text=rec.partial)
    rules = TurnCompletion(_Answers())
    rules.begin(expect)
    ep.start_turn(0, patient=is_patient(expect), completes=rules.completes)
    rec.start(expect)
    spent = 0.0
    for i in range(0, pcm.size - SAMPLES_PER_FRAME + 1, SAMPLES_PER_FRAME):
        frame = pcm[i : i + SAMPLES_PER_FRAME]
        t0 = time.perf_counter()
        rec.feed(frame)
        spent += time.perf_counter() - t0
        if isinstance(ep.push(frame, i // 8), SpeechEnd):
            break
    t0 = time.perf_counter()
    got = rec.finish()
    spent += time.perf_counter() - t0
    return got, spent


def polarity(text: str) -> bool | None:
    """Yes/no as a slot parser would read it: the longest yes or no phrase the transcript starts with
    (a turn cut mid-phrase can leave "yes it" of "yes it is")."""
    words = words_of(text)
    best: tuple[int, bool | None] = (0, None)
    for phrases, value in ((_YES, True), (_NO, False)):
        for phrase in phrases:
            n = len(phrase.split())
            if n > best[0] and " ".join(words[:n]) == phrase:
                best = (n, value)
    return best[1]


def run_voice(voice: str, settings: PocketsphinxSettings, n_yes: int | None = None, n_digits: int | None = None,
              n_open: int | None = None, lm_phrases: Sequence[str] | None = None,
              open_kind: str = "open", classify: Callable[[str], str | None] | None = None
              ) -> dict[str, ModeResult]:
    """One simulated call in ``voice``: the yes/no, digits and open turns, in that order."""
    rec = PocketsphinxRecognizer(settings)
    out = {m: ModeResult() for m in ("yes_no", "digits", "open")}
    phrases = tuple(lm_phrases if lm_phrases is not None else demo_examples())
    turns: list[tuple[str, Expectation, str, object]] = []
    for text, yes in YES_NO[:n_yes]:
        turns.append(("yes_no", Expectation(kind="yes_no"), text, yes))
    for text in DIGITS[:n_digits]:
        turns.append(("digits", Expectation(kind="digits", min_digits=4, max_digits=4), text, None))
    for text, intent in OPEN[:n_open]:
        exp = Expectation(kind="open", phrases=phrases) if open_kind == "open" else Expectation(kind="free_text")
        turns.append(("open", exp, text, intent))
    for k, (mode, expect, text, truth) in enumerate(turns):
        audio = caller_audio(text, voice, seed=k)
        got, spent = run_turn(rec, expect, audio)
        r = out[mode]
        r.n += 1
        r.audio_ms += got.audio_ms
        r.cpu_s += spent
        r.finish_ms.append(got.latency_ms)
        ref = " ".join(words_of(text))
        errs, n = word_errors(ref, got.text)
        r.word_err += errs
        r.words += n
        r.hyps.append((text, got.text))
        right = polarity(got.text) is truth if mode == "yes_no" else got.text == ref
        r.correct += right
        r.confidences.append((right, got.confidence))
        if mode == "open" and classify is not None:
            r.intent_ok += classify(got.text) == truth
    rec.close()
    return out


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def demo_classifier() -> Callable[[str], str | None] | None:
    """The project's NLU (lexical evidence only), to score intents from transcripts; None if absent."""
    try:
        from ari_agent.conversation.nlu import IntentSpec, build_classifier

        from .corpus import demo_intents

        clf = build_classifier([IntentSpec(n, ex) for n, ex in demo_intents().items()], embeddings=False)
    except Exception:  # the NLU is another team's moving part: the bench runs without it
        return None
    return lambda text: clf.classify(text).intent


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--upsample", default="fold")
    ap.add_argument("--no-posterior", action="store_true")
    ap.add_argument("--generic", action="store_true", help="open turn with the bundled generic LM")
    ap.add_argument("--beam", type=float, default=None)
    ap.add_argument("--wbeam", type=float, default=None)
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args(argv)
    kw: dict[str, object] = {"upsample": args.upsample, "posterior": not args.no_posterior}
    if args.beam:
        kw["beam"] = args.beam
        kw["pbeam"] = args.beam
    if args.wbeam:
        kw["wbeam"] = args.wbeam
    settings = PocketsphinxSettings.model_validate(kw)
    all_fin: list[float] = []
    confs: dict[str, list[tuple[bool, float]]] = {}
    print(f"settings: {settings}")
    classify = demo_classifier()
    if classify is not None:
        ceiling = sum(classify(text) == intent for text, intent in OPEN)
        print(f"NLU on the reference texts of the open turn: {ceiling}/{len(OPEN)} intents right")
    print(f"{'voice':14} {'mode':7} {'n':>3} {'phrase acc':>10} {'WER':>6} {'intent':>6} {'RTF':>6} {'fin p50':>8} "
          f"{'p90':>6} {'max':>6}")
    for voice in args.voices.split(","):
        res = run_voice(voice, settings, open_kind="free_text" if args.generic else "open", classify=classify)
        for mode, r in res.items():
            all_fin += r.finish_ms
            confs.setdefault(mode, []).extend(r.confidences)
            intent = f"{r.intent_ok / r.n:6.0%}" if mode == "open" and classify is not None else " " * 6
            print(f"{voice:14} {mode:7} {r.n:3d} {r.accuracy:10.0%} {r.wer:6.1%} {intent} {r.rtf:6.3f} "
                  f"{percentile(r.finish_ms, .5):8.1f} {percentile(r.finish_ms, .9):6.1f} {max(r.finish_ms):6.1f}")
            if args.show:
                for ref, hyp in r.hyps:
                    print(f"      {ref!r:60} -> {hyp!r}")
    for mode, pairs in confs.items():
        right = [c for ok, c in pairs if ok]
        wrong = [c for ok, c in pairs if not ok]
        print(f"confidence {mode}: mean {_mean(right):.2f} when right ({len(right)}), {_mean(wrong):.2f} when wrong "
              f"({len(wrong)})")
    print(f"finish latency over all turns: p50 {percentile(all_fin, .5):.1f} ms, p90 {percentile(all_fin, .9):.1f} ms, "
          f"max {max(all_fin):.1f} ms")


if __name__ == "__main__":
    main()
