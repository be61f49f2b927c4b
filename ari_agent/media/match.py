"""Does one recording contain another? Energy-envelope correlation, robust to G.711 and to offsets.

Used by the integration tests and benchmarks to judge calls from recordings alone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ari_agent.media.pcm import energy_envelope, envelope_correlation


def audio_similarity(
    recorded: npt.NDArray[np.int16], reference: npt.NDArray[np.int16], rate: int = 8000, *, max_lag_s: float = 15.0,
    win_ms: int = 20,
) -> float:
    """Best Pearson correlation of the two 20 ms energy envelopes over offsets up to ``max_lag_s``.

    The overlap must cover at least 90 % of the shorter signal, so a short burst of noise cannot
    score high against a long prompt."""
    env_rec = energy_envelope(recorded, rate, win_ms)
    env_ref = energy_envelope(reference, rate, win_ms)
    if env_rec.size < 2 or env_ref.size < 2:
        return 0.0
    shorter = min(env_rec.size, env_ref.size)
    max_lag = int(max_lag_s * 1000 / win_ms)
    return envelope_correlation(env_rec, env_ref, max_lag, min_overlap_windows=max(2, int(shorter * 0.9)))
