"""The first conversation: greet the caller, then listen (and record) until they hang up.

It proves both audio directions on a real call; the speech loop replaces it with the full
VAD -> STT -> engine -> TTS turn-taking.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ari_agent.call.session import CallSession


class GreetAndListen:
    def __init__(self, greeting: npt.NDArray[np.int16], listen_s: float) -> None:
        self.greeting = greeting
        self.listen_s = listen_s

    async def run(self, call: CallSession) -> None:
        if not await call.play(self.greeting):
            return
        await call.wait_caller_gone(self.listen_s)
