"""Stage times of each caller turn, for logs, metrics and the benchmarks' agent-side profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ari_agent.metrics import TURN_STAGE


@dataclass
class TurnTiming:
    """Stage times of one caller turn, seconds on the agent's monotonic clock (for logs/benchmarks;
    the benchmark's headline figures come from the caller-side recordings, not from these)."""

    speech_end: float = 0.0  # when the endpointer declared the end of the turn
    endpoint_wait_ms: int = 0  # silence the endpointer waited after the last voiced frame
    stt_final: float = 0.0
    engine_done: float = 0.0
    tool_done: float | None = None
    tts_first_audio: float | None = None
    first_rtp: float | None = None
    text: str = ""
    ack_played: bool = False

    def observe(self) -> None:
        """Export this turn's stage times to the metrics (once the reply has started playing)."""
        for stage, ms in self.profile_ms().items():
            if ms is not None:
                TURN_STAGE.labels(stage).observe(ms / 1000)

    def profile_ms(self) -> dict[str, float | None]:
        def rel(t: float | None) -> float | None:
            return None if t is None else round((t - self.speech_end) * 1000, 1)

        return {"endpoint_wait": float(self.endpoint_wait_ms), "stt_final": rel(self.stt_final),
                "engine": rel(self.engine_done), "tool": rel(self.tool_done),
                "tts_first_audio": rel(self.tts_first_audio), "first_rtp": rel(self.first_rtp)}


class TurnTimings(list[TurnTiming]):
    """The call's turns in order; the stages after the end of turn land on the latest one."""

    def open_turn(self) -> TurnTiming | None:
        """The latest turn while its reply has not started playing yet (else None)."""
        return self[-1] if self and self[-1].tts_first_audio is None else None

    def latest(self) -> TurnTiming | None:
        return self[-1] if self else None


def describe(timings: list[TurnTiming]) -> list[dict[str, Any]]:
    return [{"text": t.text, "ack": t.ack_played, **t.profile_ms()} for t in timings]
