"""The one seam between the conversation engine and the rest of the agent (see DESIGN.md).

The engine never does I/O: the call orchestrator (or the text chat, or the evaluation harness) feeds
it these events and carries out the actions it returns. Everything here is plain, immutable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class CallStarted:
    caller_id: str = ""
    dnid: str = ""
    vars: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Utterance:
    text: str
    confidence: float = 1.0
    is_final: bool = True
    unsure: bool = False  # the recognisers disagreed on the value in it: read it back before using it
    # an identity code answer checked against the caller's record, and the audio does not say the code on it
    off_record: bool = False
    # How much louder than the caller's median of their earlier turns (dB; the call layer measures it,
    # media/loudness.py). None: not measured (text, too short) or too few earlier turns to compare with.
    raised_db: float | None = None


@dataclass(frozen=True)
class Dtmf:
    digits: str


@dataclass(frozen=True)
class ToolResult:
    call_id: str  # the CallTool.call_id this answers
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # True when the write was accepted for asynchronous processing (RQ) rather than completed.
    submitted: bool = False


TimeoutKind = Literal["silence", "no_input", "tool", "max_call"]


@dataclass(frozen=True)
class Timeout:
    kind: TimeoutKind


@dataclass(frozen=True)
class BargeIn:
    """The caller spoke over a prompt; ``heard_text`` is the part of it they actually heard."""

    heard_text: str


Event = CallStarted | Utterance | Dtmf | ToolResult | Timeout | BargeIn

# ---------------------------------------------------------------- actions out


@dataclass(frozen=True)
class Say:
    text: str
    prompt_id: str | None = None  # a cached fixed prompt, when this is one
    interruptible: bool = True


@dataclass(frozen=True)
class RecordQuery:
    """A read of the caller's record (the map's ``verification.record``): ``tool`` with ``args``, and the
    result field that holds the code."""

    tool: str
    args: tuple[tuple[str, str], ...]
    result_field: str


@dataclass(frozen=True)
class Expectation:
    """What the engine expects the caller to say next: lets the recogniser use a grammar and the
    endpointer decide when a turn is complete."""

    kind: Literal[
        "open", "yes_no", "digits", "number", "date", "time", "choice", "letters", "free_text"
    ] = "open"
    phrases: tuple[str, ...] = ()
    # what the turn is about, in words, for a recogniser that takes a text prompt (whisper's initial prompt);
    # open turns: the map's intent descriptions (IntentMap.open_context)
    context: str = ""
    min_digits: int | None = None
    max_digits: int | None = None
    choices: tuple[str, ...] = ()
    slot: str | None = None  # the slot this turn fills, when it fills one
    dtmf: bool = False  # the keypad is accepted for this turn
    # letters turns: the code's format, when the map gives one ("uk_postcode": whisper may decode it again,
    # constrained to postcodes, when its free transcript holds none)
    code_format: Literal["uk_postcode"] | None = None
    # An identity code the caller's record holds: the lookup that fetches it (the engine sets it), then the
    # code itself ("SW1A1AA", the call layer sets it) for the recogniser to check the audio against
    # (speech/code_check.py). Personal data: kept out of repr, and so out of logs and traces.
    record_lookup: RecordQuery | None = field(default=None, repr=False, compare=False)
    on_record: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Listen:
    expect: Expectation = Expectation()
    timeout_s: float = 6.0


@dataclass(frozen=True)
class CallTool:
    name: str
    args: dict[str, Any]
    idempotency_key: str
    call_id: str  # correlates the ToolResult
    budget_ms: int = 700  # past this the speech loop plays an acknowledgement


@dataclass(frozen=True)
class Transfer:
    queue: str
    reason: str
    context: dict[str, str] = field(default_factory=dict)  # intent, summary, verified identity, ...


@dataclass(frozen=True)
class Hangup:
    reason: str


Action = Say | Listen | CallTool | Transfer | Hangup
