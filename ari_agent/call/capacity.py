"""How many calls one agent process serves at once (``agent.max_calls``) before a new caller is passed on.

A caller beyond what the machine can serve is not served badly: it is passed on like a draining agent's
new caller (:func:`ari_agent.call.sweep.pass_on`): to the next agent the dialplan lists, else straight to
the fallback queue, with reason ``capacity`` in ``ARI_AGENT_REASON`` for the human who answers.

``agent.max_calls = 0`` (the default) sizes the limit from the recogniser and the cores this process may
run on (its CPU affinity: a container's cpuset counts, not the host's cores). The calls per core are the
largest load ``ari-agent bench latency`` measured on a 2-core machine with the turn latency's p95 within
1.25x of one call's (README, "Performance"; docs/speech-bench.md):

- ``both`` / ``whisper`` (with the Piper voice): 4 calls on 2 cores, 2 per core. At 6 calls p95 was 1.6x,
  at 8 calls 1.75x; at 30 calls 456 of 1,052 turns were agent cut-ins (the agent answering a caller who
  had not finished);
- ``pocketsphinx`` (with espeak-ng): 12 calls on 2 cores, 6 per core. 16 calls were within 1.15x on
  2026-12-04 but at the edge on 2026-12-07 (1.25x, and 8 of 75 turns cut in: more than the 5 % a caller
  should meet), 12 clean both days (1.15x, 2 of 56); at 20 calls p95 was 1.34x with 9 cut-ins in 42 turns.

A GPU recogniser (``stt.whisper.use_gpu``) or other engines change the figures: measure with
``ari-agent bench latency --calls N`` and set ``agent.max_calls``.
"""

from __future__ import annotations

import os
from typing import Final

CALLS_PER_CORE: Final[dict[str, int]] = {"both": 2, "whisper": 2, "pocketsphinx": 6}
# An engine the table does not know ("auto" before it is resolved, in unit tests): the neural figure.
DEFAULT_CALLS_PER_CORE: Final = 2
CAPACITY_REASON: Final = "capacity"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask; the machine's count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def call_limit(configured: int, stt_engine: str, cores: int, *, voice: bool = True) -> int:
    """``agent.max_calls`` when set (> 0), else the measured calls per core of ``stt_engine`` times ``cores``
    for voice conversations; 0 (no limit) for the media-only ``greet_and_listen`` mode, which runs no
    recogniser (the call path test: 20 calls at once)."""
    if configured > 0:
        return configured
    if not voice:
        return 0
    return CALLS_PER_CORE.get(stt_engine, DEFAULT_CALLS_PER_CORE) * max(1, cores)
