"""Simulated caller voices for demos, tests and benchmarks, from Debian's offline synthesisers.

espeak's formant voice alone misleads a recogniser (see the project notes): callers are simulated with
several voices (flite rms/slt/awb/kal16, espeak-ng) so results are reported per voice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from ari_agent.errors import AriAgentError

VOICES = ("flite:rms", "flite:slt", "flite:awb", "flite:kal16", "espeak:en-us")


class VoiceError(AriAgentError):
    pass


ESPEAK_DEFAULT_WPM = 175


def synthesize_caller(text: str, voice: str, out_dir: Path, rate: float | None = None) -> Path:
    """Render ``text`` in ``voice`` ("flite:rms", "espeak:en-us+m3", ...) to a WAV; cached by content.
    ``rate``: speaking-rate factor (1.5 = half as fast again; flite stretches durations, espeak-ng sets
    words per minute)."""
    engine, _, name = voice.partition(":")
    key = f"{voice}\n{text}" if rate in (None, 1.0) else f"{voice}\n{text}\nrate={rate:g}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    out = out_dir / f"{engine}-{name.replace('+', '_')}-{digest}.wav"
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    # rendered under a private name and renamed: a render cut off, or one in progress in another process,
    # is never read as the cached voice
    final, out = out, out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    if engine == "flite":
        stretch = [] if rate in (None, 1.0) else ["--setf", f"duration_stretch={1.0 / rate:.4f}"]
        cmd = ["flite", "-voice", name or "rms", *stretch, "-t", text, "-o", str(out)]
    elif engine == "espeak":
        speed = [] if rate in (None, 1.0) else ["-s", str(max(80, min(450, round(ESPEAK_DEFAULT_WPM * rate))))]
        cmd = ["espeak-ng", "-v", name or "en-us", *speed, "-w", str(out), text]
    else:
        raise VoiceError(f"unknown voice engine {engine!r} (flite:NAME or espeak:NAME)")
    if shutil.which(cmd[0]) is None:
        raise VoiceError(f"{cmd[0]} is not installed (apt-get install {cmd[0]})")
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        if res.returncode != 0 or not out.exists():
            raise VoiceError(f"{cmd[0]} failed: {res.stderr.decode(errors='replace')[:200]}")
        os.replace(out, final)
    finally:
        out.unlink(missing_ok=True)
    return final
