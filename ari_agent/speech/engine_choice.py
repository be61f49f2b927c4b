"""``stt.engine`` / ``tts.engine`` = ``auto``: which engine a service runs, decided once at its start.

Pure logic, no I/O: the facts (is the prepared model there and valid, does the runtime import) come in
as :class:`Probe` callables from :mod:`ari_agent.ops.engines`, which runs them; a probe is called only
when the answer matters (``auto``), the runtime first (cheap) and the model only if the runtime is there.

``auto`` resolves to the neural engines when they can run here, else to the low-CPU embedded ones:

- stt: ``both`` (whisper tiny.en on every turn, pocketsphinx's grammar beside it on value turns)
  when pywhispercpp imports and the whisper model is prepared and valid; else ``pocketsphinx``;
- tts: ``piper`` when onnxruntime imports and the Piper voice is prepared and valid; else ``espeak-ng``.

An explicit value is kept as is (and fails at start, as before, when its model is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

AUTO: Final = "auto"
STT_NEURAL: Final = "both"
STT_FALLBACK: Final = "pocketsphinx"
TTS_NEURAL: Final = "piper"
TTS_FALLBACK: Final = "espeak-ng"


@dataclass(frozen=True)
class Probe:
    """One fact about this host: ``ok``, and in ``detail`` what was found (or what is missing and the fix)."""

    ok: bool
    detail: str


ProbeFn = Callable[[], Probe]


@dataclass(frozen=True)
class EngineChoice:
    setting: str  # "stt.engine" / "tts.engine"
    configured: str  # as configured ("auto" or an engine)
    engine: str  # what runs
    reason: str

    @property
    def auto(self) -> bool:
        return self.configured == AUTO

    @property
    def fell_back(self) -> bool:
        """``auto`` could not have the neural engine here (``reason`` says why)."""
        return self.auto and self.engine in (STT_FALLBACK, TTS_FALLBACK)

    def describe(self) -> str:
        """``stt.engine auto -> both (...)`` or ``tts.engine espeak-ng (configured)``."""
        head = f"{self.setting} {AUTO} -> {self.engine}" if self.auto else f"{self.setting} {self.engine}"
        return f"{head} ({self.reason})"


def choose(setting: str, configured: str, neural: str, fallback: str, *, runtime: ProbeFn,
           model: ProbeFn) -> EngineChoice:
    """The engine ``configured`` stands for: itself, or for ``auto`` ``neural`` when ``runtime`` and then
    ``model`` are ok, else ``fallback`` with the failed probe's detail as the reason."""
    if configured != AUTO:
        return EngineChoice(setting, configured, configured, "configured")
    rt = runtime()
    if not rt.ok:
        return EngineChoice(setting, configured, fallback, f"fallback: {rt.detail}")
    md = model()
    if not md.ok:
        return EngineChoice(setting, configured, fallback, f"fallback: {md.detail}")
    return EngineChoice(setting, configured, neural, f"{md.detail}; {rt.detail}")


def choose_stt(configured: str, *, runtime: ProbeFn, model: ProbeFn) -> EngineChoice:
    return choose("stt.engine", configured, STT_NEURAL, STT_FALLBACK, runtime=runtime, model=model)


def choose_tts(configured: str, *, runtime: ProbeFn, model: ProbeFn) -> EngineChoice:
    return choose("tts.engine", configured, TTS_NEURAL, TTS_FALLBACK, runtime=runtime, model=model)


def summary(choices: tuple[EngineChoice, ...]) -> str:
    """The one log line of a service start: each engine chosen, and why."""
    return "speech engines: " + "; ".join(c.describe() for c in choices)


def unresolved(stt_engine: str, tts_engine: str) -> list[str]:
    """The settings still ``auto`` (a service builds its engines only from resolved ones)."""
    return [name for name, value in (("stt.engine", stt_engine), ("tts.engine", tts_engine)) if value == AUTO]
