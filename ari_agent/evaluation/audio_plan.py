"""How a scenario is played by the reactive test caller on a real call. Pure: a scenario in, a plan out.

The caller (``[ari-agent-test-dialog]``, ``devtools/test_caller.py``) speaks each turn after the agent has
spoken and fallen silent ("t"), or over the agent's prompt ("b", a turn with ``bargein``), or keys the
scenario's digits ("d"). A ``#silence`` turn is a stretch of line silence longer than the agent's
no-input timeout; a ``#hangup`` turn ends the caller's script (the caller hangs up a moment later).

Not playable by voice (refused with the reason, reported as not run): a kill switch turned on mid-call or
from the start (an operator's act, not the caller's), ``timeout: tool`` / ``timeout: max_call`` (the
agent's own timers), and different digit strings in one call (the test caller keys one string).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ari_agent.errors import AriAgentError
from ari_agent.evaluation.scenario import Scenario, Synth

# Caller voices, rotated over the scenarios that name none (devtools/voices.py).
DEFAULT_VOICES = ("flite:rms", "flite:slt", "flite:awb", "flite:kal16", "espeak:en-us")
SILENT_TURN_S = 9.0  # longer than the demo map's no-input timeouts (6 s; digits 8 s)
BARGE_AFTER_S = 1.5


class NotPlayable(AriAgentError):
    """The scenario cannot be played by a caller's voice (the reason says why)."""


@dataclass(frozen=True)
class PlannedTurn:
    kind: Literal["speech", "audio", "silence", "dtmf"]
    mode: Literal["t", "b", "d"]
    text: str | None = None  # what the caller says (the WER reference); None for silence / keys
    audio: str | None = None  # a recording to play instead of synthesis
    voice: str = DEFAULT_VOICES[0]
    synth: Synth | None = None
    pause_ms: int = 0


@dataclass(frozen=True)
class AudioPlan:
    turns: tuple[PlannedTurn, ...]
    dtmf: str = ""
    hangs_up: bool = False  # the script ends in the caller hanging up

    @property
    def modes(self) -> str:
        return "".join(t.mode for t in self.turns)

    @property
    def reference(self) -> list[str]:
        """The words the caller speaks, turn by turn (known references only: synthesised text)."""
        return [t.text for t in self.turns if t.kind == "speech" and t.text]

    @property
    def voices(self) -> list[str]:
        return list(dict.fromkeys(t.voice for t in self.turns if t.kind == "speech"))


def plan_scenario(scenario: Scenario, default_voice: str) -> AudioPlan:
    if scenario.kill_switch:
        raise NotPlayable("the kill switch is an operator's act: not played by voice")
    turns: list[PlannedTurn] = []
    digits: set[str] = set()
    hangs_up = False
    for turn in scenario.turns:
        if turn.hangup:
            hangs_up = True
            break
        if turn.kill_switch:
            raise NotPlayable("a kill switch turned on mid-call is an operator's act: not played by voice")
        if turn.timeout is not None and turn.timeout != "no_input":
            raise NotPlayable(f"timeout: {turn.timeout} is the agent's own timer: not played by voice")
        if turn.dtmf is not None:
            digits.add(turn.dtmf)
            turns.append(PlannedTurn("dtmf", "d"))
        elif turn.silence or turn.timeout == "no_input":
            turns.append(PlannedTurn("silence", "t"))
        else:
            voice = (turn.synth.voice if turn.synth and turn.synth.voice else None) or default_voice
            mode: Literal["t", "b"] = "b" if turn.bargein is not None else "t"
            kind: Literal["speech", "audio"] = "audio" if turn.audio is not None else "speech"
            turns.append(PlannedTurn(kind, mode, turn.say, turn.audio, voice, turn.synth, turn.pause_ms or 0))
    if len(digits) > 1:
        raise NotPlayable(f"the test caller keys one digit string per call, this scenario has {sorted(digits)}")
    if not turns:
        raise NotPlayable("no caller turn to play")
    return AudioPlan(tuple(turns), next(iter(digits), ""), hangs_up)


def voice_for(index: int, voices: tuple[str, ...] = DEFAULT_VOICES) -> str:
    """The caller voice of the ``index``-th scenario that names none (rotated)."""
    return voices[index % len(voices)]
