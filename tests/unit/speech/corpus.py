"""Simulated caller audio for the recognition checks: flite / espeak-ng voices through G.711 at 8 kHz.

The open-turn phrasings below are NOT in the demo intent map (the LM's training text): they say the
same things the way a caller might, with words the map never used.
"""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path

import numpy as np
import yaml

from ari_agent.devtools.voices import synthesize_caller
from ari_agent.media.g711 import ulaw_decode, ulaw_encode
from ari_agent.media.pcm import Pcm, resample

VOICES = ("flite:rms", "flite:slt", "flite:awb", "flite:kal16", "espeak:en-us")
CACHE = Path(tempfile.gettempdir()) / "ari-agent-test-voices"
DEMO_MAP = Path(__file__).resolve().parents[3] / "ari_agent" / "data" / "demo-intent-map.yaml"

YES_NO: tuple[tuple[str, bool], ...] = (
    ("yes", True), ("no", False), ("yes please", True), ("no thanks", False), ("that's right", True),
    ("yeah", True), ("nope", False), ("correct", True), ("no thank you", False), ("sure", True),
)
DIGITS: tuple[str, ...] = (
    "four five six seven", "one two three four", "nine eight seven six", "five five two one",
    "three oh eight nine", "two seven four zero", "eight one six three", "six six nine two",
    "seven three five eight", "zero four one nine",
)
# (caller phrasing, intent): none of these sentences is in the demo map.
OPEN: tuple[tuple[str, str], ...] = (
    ("I'm ringing to find out where my order has got to", "order_status"),
    ("can you tell me if my package has been sent", "order_status"),
    ("I ordered something last week and it still hasn't arrived", "order_status"),
    ("when is my delivery coming", "order_status"),
    ("I'd like to confirm my appointment for tomorrow", "appointment_confirm"),
    ("is the technician still coming on Friday", "appointment_confirm"),
    ("I need to change my appointment to another day", "appointment_reschedule"),
    ("can I move my booking to next Tuesday", "appointment_reschedule"),
    ("what time do you open tomorrow", "faq_hours"),
    ("are you open on Sunday", "faq_hours"),
    ("what time do you close on Saturday", "faq_hours"),
    ("where is your shop", "faq_address"),
    ("can you give me your address please", "faq_address"),
    ("I can't sign in to my account", "account_unlock"),
    ("my account has been locked", "account_unlock"),
    ("I need to pay my bill", "bill_payment"),
    ("I'd like to make a payment on my account", "bill_payment"),
    ("can I talk to a real person please", "speak_to_human"),
    ("I want to speak to someone", "speak_to_human"),
    ("I forgot my password", "account_unlock"),
)


def demo_examples() -> tuple[str, ...]:
    data = yaml.safe_load(DEMO_MAP.read_text())
    return tuple(e for intent in data["intents"] for e in intent["examples"])


def demo_intents() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load(DEMO_MAP.read_text())
    return {i["name"]: tuple(i["examples"]) for i in data["intents"]}


def caller_audio(text: str, voice: str, lead_ms: int = 400, trail_ms: int = 1500, noise_db: float = -60.0,
                 seed: int = 0) -> Pcm:
    """``text`` spoken by ``voice``, at 8 kHz through a G.711 µ-law round trip, with quiet line noise
    around it (``lead_ms`` before, ``trail_ms`` after)."""
    path = synthesize_caller(text, voice, CACHE)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    speech = resample(pcm, rate, 8000)
    rng = np.random.default_rng(seed)
    lead = np.zeros(lead_ms * 8, dtype=np.int16)
    trail = np.zeros(trail_ms * 8, dtype=np.int16)
    audio = np.concatenate([lead, speech, trail]).astype(np.float64)
    audio += rng.normal(0.0, 32768.0 * 10 ** (noise_db / 20.0), audio.size)
    line = np.clip(np.rint(audio), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(line))


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    r, h = ref.lower().replace("'", "'").split(), hyp.lower().split()
    row = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, row = row, [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return row[len(h)], len(r)
