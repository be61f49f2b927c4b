"""Does a spoken code match the one on record? A check of the audio against a known code, not a reading of it.

Whisper tiny.en reads a postcode spelled on the phone line right about a third of the time (``bench stt``),
but a verification turn does not need to *read* the code: the caller's record holds one, and the question
is whether the audio says that one. The whisper worker decodes the turn twice, both times constrained to
postcodes (``speech/token_constraint.py``): once freely (the best code it can find, greedily) and once
forced to write the record's code. From the model's own log-probabilities (``speech/whisper_lib.py``,
before the filter):

- ``gap``: how much less likely the record is than the code the free decode found (0 or below when the
  record is the better explanation of the audio; a greedy decode is not always the best one);
- ``weakest``: along the record's own decode, the smallest lead of each character written over the best
  other character the model would have written there (negative: at some position the model preferred
  another character; the E-set letters, B D E G P T V, sit within a point or two of each other).

:func:`matches` accepts when both are within the limits of :class:`CheckLimits`. Measured on the phone
set's 80 spelled postcodes against codes one character off (the hardest impostor: a caller who has the
right area and district and a near guess) and against other real codes: ``ari-agent bench stt --kinds
postcode`` ("record check" rows). Pure logic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_GAP: Final = 2.0
DEFAULT_MAX_DOUBT: Final = 3.0


@dataclass(frozen=True)
class CheckLimits:
    """``max_gap``: how much less likely (log-probability) the record may be than the free decode's code;
    ``max_doubt``: how far (log-probability) another character may be preferred at any one position."""

    max_gap: float = DEFAULT_MAX_GAP
    max_doubt: float = DEFAULT_MAX_DOUBT


@dataclass(frozen=True)
class CodeCheck:
    """The worker's two constrained decodes of one turn against ``record``."""

    record: str  # the code checked, no spaces ("SW1A1AA")
    heard: str | None  # the free constrained decode's code (None: it made none within its token cap)
    heard_score: float
    record_score: float  # -inf: the record could not be written within the token cap
    weakest: float
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def gap(self) -> float:
        if self.heard is None:
            return 0.0 if math.isfinite(self.record_score) else math.inf
        return self.heard_score - self.record_score


def matches(check: CodeCheck, limits: CheckLimits = CheckLimits()) -> bool:
    """The audio says the code on record, within ``limits`` (never on an error or an unwritable record)."""
    if check.error is not None or not math.isfinite(check.record_score):
        return False
    return check.gap <= limits.max_gap and check.weakest >= -limits.max_doubt
