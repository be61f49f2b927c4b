"""Evaluation scenarios: what a caller does, turn by turn, and what must come of it.

A suite is one YAML file (``docs/evaluation.md`` has the full format)::

    suite: regression
    today: 2026-03-04                 # the date the engine and the demo data assume
    gate:                             # thresholds --gate enforces (see gate.py)
      tolerance: 0.02                 # allowed regression against --baseline
      thresholds: {pass_rate: {min: 1.0}, policy_violations: {max: 0}}
    scenarios:
      - id: order-status-shipped
        turns:
          - where is my order                # a plain string: the caller says it
          - "#dtmf 4567#"                    # the same directives as ``ari-agent chat --script``
          - {say: "four five six seven", synth: {voice: "flite:slt", noise_snr_db: 20}}
        expect:
          intents: [order_status]
          outcome: resolved                  # resolved | transferred | caller_hung_up
          tools: [lookup_order]
          forbidden_tools: [unlock_account]
          says: ["has shipped with UPS"]

A turn's audio fields (``audio``, ``synth``, ``pause_ms``) are for audio mode; text mode uses
``say``. Loading is strict: an unknown key, a duplicate key or a malformed turn is refused with
file:line (``yaml_source``), so a typo never silently weakens a test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ari_agent.conversation.script import Control, ScriptError, parse_script_line
from ari_agent.errors import ConfigError
from ari_agent.seam import BargeIn, Dtmf, Timeout, Utterance
from ari_agent.yaml_source import LineIndex, load_yaml, validate

SUITES_DIR = Path(__file__).resolve().parent / "suites"
AUDIO_SUITES_DIR = SUITES_DIR / "audio"  # by voice (audio mode); not part of "shipped"
_ID = r"^[a-z0-9][a-z0-9_.-]*$"

Outcome = Literal["resolved", "transferred", "caller_hung_up"]
MetricName = Literal[
    "pass_rate", "intent_success", "intent_recognition", "outcome_accuracy", "transfer_correctness",
    "containment", "policy_violations", "mean_turns",
]
# Metrics where a higher figure is better (the rest: lower is better).
HIGHER_IS_BETTER: frozenset[str] = frozenset({
    "pass_rate", "intent_success", "intent_recognition", "outcome_accuracy", "transfer_correctness", "containment",
})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Synth(_Model):
    """How audio mode synthesises a spoken turn at phone quality (ignored in text mode)."""

    voice: str | None = None  # e.g. "flite:slt", "espeak-ng:en-us"
    rate: float | None = Field(None, gt=0.3, le=3.0)  # speaking-rate factor
    noise_snr_db: float | None = Field(None, ge=-10, le=60)
    packet_loss: float | None = Field(None, ge=0, le=0.5)


class Turn(_Model):
    """One thing the caller does. Exactly one of: speech (``say``/``audio``), ``dtmf``, ``silence``,
    ``timeout``, ``hangup``, ``kill_switch`` (an operator switching automation off mid-call)."""

    say: str | None = None
    audio: str | None = None  # a recording to play (audio mode); text mode needs ``say`` as well
    synth: Synth | None = None
    pause_ms: int | None = Field(None, ge=0, le=60000)  # audio mode: wait before speaking
    bargein: str | None = None  # speaks over the prompt after hearing this much of it; ``say``: what they said
    confidence: float = Field(1.0, ge=0, le=1)  # the recogniser's confidence text mode reports
    dtmf: str | None = Field(None, pattern=r"^[0-9*#A-D]+$")
    silence: bool = False
    timeout: Literal["no_input", "tool", "max_call"] | None = None
    hangup: bool = False
    kill_switch: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Turn:
        speech = self.say is not None or self.audio is not None
        kinds = [speech, self.dtmf is not None, self.silence, self.timeout is not None, self.hangup, self.kill_switch]
        if sum(kinds) != 1:
            raise ValueError("a turn is exactly one of: say/audio, dtmf, silence, timeout, hangup, kill_switch")
        if not speech and (self.synth or self.pause_ms is not None or self.bargein is not None):
            raise ValueError("synth, pause_ms and bargein go with a spoken turn (say/audio)")
        return self

    def events(self) -> list[Utterance | Dtmf | Timeout | BargeIn]:
        """The engine events of this turn in text mode (empty for hangup / kill switch / audio only)."""
        if self.say is not None:
            lead: list[Utterance | Dtmf | Timeout | BargeIn] = [BargeIn(self.bargein)] if self.bargein is not None \
                else []
            return [*lead, Utterance(self.say, confidence=self.confidence)]
        if self.dtmf is not None:
            return [Dtmf(self.dtmf)]
        if self.silence:
            return [Timeout("silence")]
        if self.timeout is not None:
            return [Timeout(self.timeout)]
        return []


class Expect(_Model):
    intents: tuple[str, ...] = ()  # recognised in this order (others may come between)
    outcome: Outcome
    queue: str | None = None  # with outcome: transferred
    reason: str | None = None  # the handoff condition (verification_failed, restricted, caller_request, ...)
    tools: tuple[str, ...] = ()  # each called at least once
    forbidden_tools: tuple[str, ...] = ()  # any call is a policy violation
    max_turns: int | None = Field(None, ge=0)  # caller turns
    says: tuple[str, ...] = ()  # the agent says each (substring, case-insensitive)
    never_says: tuple[str, ...] = ()  # the agent never says any: a disclosure is a policy violation
    max_latency_ms: dict[str, float] = {}  # per stage (engine, tool, ...): p95 bound, judged where measured

    @model_validator(mode="after")
    def _transfer_fields(self) -> Expect:
        if self.outcome != "transferred" and (self.queue or self.reason):
            raise ValueError("queue and reason go with outcome: transferred")
        return self


class Scenario(_Model):
    id: str = Field(pattern=_ID)
    description: str = ""
    tags: tuple[str, ...] = ()
    caller_id: str = "+15551230001"
    kill_switch: bool = False  # transfer-only mode from the start
    backend_faults: dict[str, int | str] | None = None  # PUT /_faults on the demo backend before the call
    turns: tuple[Turn, ...] = ()
    expect: Expect

    @property
    def text_only_gap(self) -> bool:
        """True when a spoken turn has audio but no text: text mode cannot play it."""
        return any(t.audio is not None and t.say is None for t in self.turns)


class Bound(_Model):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if (self.min is None) == (self.max is None):
            raise ValueError("a threshold is {min: X} or {max: X}")
        return self


class GateSpec(_Model):
    thresholds: dict[MetricName, Bound] = {}
    tolerance: float = Field(0.0, ge=0, le=1)  # allowed regression against a baseline (absolute)


class SuiteSpec(_Model):
    suite: str = Field(pattern=_ID)
    description: str = ""
    map: str | None = None  # intent map, relative to this file; default: the demo map
    today: dt.date | None = None
    gated: bool = True  # False: reported, never fails --gate (known issues)
    gate: GateSpec = GateSpec()
    scenarios: tuple[Scenario, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Suite:
    spec: SuiteSpec
    path: Path
    index: LineIndex

    @property
    def name(self) -> str:
        return self.spec.suite

    def map_path(self) -> Path | None:
        if self.spec.map is None:
            return None
        p = Path(self.spec.map)
        return p if p.is_absolute() else (self.path.parent / p)

    def error(self, key_path: tuple[str | int, ...], reason: str) -> ConfigError:
        """A ConfigError naming the file, line and key path of ``key_path``."""
        from ari_agent.yaml_source import format_key_path

        return ConfigError(str(self.path), format_key_path(key_path), reason, line=self.index.line_of(key_path))


def shipped_suites() -> list[Path]:
    return sorted(SUITES_DIR.glob("*.yaml"))


def resolve_suite_path(name: str) -> Path:
    """A suite file path, or the name of a shipped suite (``regression``, ``red-team``, ..., ``voice``)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for shipped in (SUITES_DIR / f"{name}.yaml", AUDIO_SUITES_DIR / f"{name}.yaml"):
        if shipped.exists():
            return shipped
    names = ", ".join(s.stem for s in [*shipped_suites(), *sorted(AUDIO_SUITES_DIR.glob("*.yaml"))])
    raise ConfigError(name, "", f"no such suite file or shipped suite (shipped: {names})")


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite file; every error is a ConfigError naming file:line and key."""
    p = Path(path)
    data, index = load_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(str(p), "", "a suite is a mapping with 'suite' and 'scenarios'", line=index.line_of(()))
    data = _expand_turns(data, str(p), index)
    spec = validate(SuiteSpec, data, str(p), index)
    suite = Suite(spec, p, index)
    seen: dict[str, int] = {}
    for i, sc in enumerate(spec.scenarios):
        if sc.id in seen:
            raise suite.error(("scenarios", i, "id"),
                              f"duplicate scenario id '{sc.id}' (first: scenarios[{seen[sc.id]}])")
        seen[sc.id] = i
    return suite


def _expand_turns(data: dict[str, Any], file: str, index: LineIndex) -> dict[str, Any]:
    """Plain-string turns read as ``ari-agent chat`` script lines ("#dtmf 4567", "#silence", ...)."""
    scenarios = data.get("scenarios")
    if not isinstance(scenarios, list):
        return data
    out = []
    for i, sc in enumerate(scenarios):
        if isinstance(sc, dict) and isinstance(sc.get("turns"), list):
            turns = [_turn_from_line(t, file, index, ("scenarios", i, "turns", j)) if isinstance(t, str)
                     else _not_bool(t, file, index, ("scenarios", i, "turns", j)) for j, t in enumerate(sc["turns"])]
            sc = {**sc, "turns": turns}
        out.append(sc)
    return {**data, "scenarios": out}


def _not_bool(value: Any, file: str, index: LineIndex, path: tuple[str | int, ...]) -> Any:
    """YAML reads an unquoted yes / no / on / off as true / false: say so instead of "not a mapping"."""
    from ari_agent.yaml_source import format_key_path

    if isinstance(value, bool):
        raise ConfigError(file, format_key_path(path), 'YAML read this turn as true/false: quote it ("yes", "no")',
                          line=index.line_of(path))
    return value


def _turn_from_line(line: str, file: str, index: LineIndex, path: tuple[str | int, ...]) -> dict[str, Any]:
    from ari_agent.yaml_source import format_key_path

    def fail(reason: str) -> ConfigError:
        return ConfigError(file, format_key_path(path), reason, line=index.line_of(path))

    try:
        item = parse_script_line(line)
    except ScriptError as exc:
        raise fail(str(exc)) from None
    if item is None:
        raise fail("an empty turn or a comment is not a turn")
    if isinstance(item, Control):
        return {"hangup": True} if item.kind == "hangup" else {"kill_switch": True}
    if isinstance(item, Utterance):
        return {"say": item.text}
    if isinstance(item, Dtmf):
        return {"dtmf": item.digits}
    if isinstance(item, Timeout):
        return {"silence": True} if item.kind == "silence" else {"timeout": item.kind}
    raise fail("#bargein needs the words said: write {say: ..., bargein: <heard>}")
