"""``conversation.mode: greet_and_listen``: greet the caller, then listen (the session records what it
hears) until they hang up or ``agent.listen_after_greeting_s`` passes.

A media check that exercises both audio directions on a real call with no recognition or conversation
engine; the default mode, ``voice``, runs the full VAD -> STT -> engine -> TTS loop instead
(``call/voice_loop.py``).
"""

from __future__ import annotations

from ari_agent.call.session import CallSession
from ari_agent.media.pcm import Pcm


class GreetAndListen:
    def __init__(self, greeting: Pcm, listen_s: float) -> None:
        self.greeting = greeting
        self.listen_s = listen_s

    async def run(self, call: CallSession) -> None:
        if not await call.play(self.greeting):
            return
        await call.wait_caller_gone(self.listen_s)
