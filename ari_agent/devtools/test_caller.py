"""Places scripted test calls through ARI: the caller leg plays a WAV and records what it hears.

Used by ``ari-agent call``, the integration tests and the benchmarks. The caller is a Local channel
into ``[ari-agent-test-caller]`` (dialplan/test-caller.conf) whose other leg enters the agent's
inbound context like any real call. Recordings are made by Asterisk (MixMonitor), on the caller's
side of the line, never by the agent.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ari_agent.config import PbxConfig
from ari_agent.errors import AriAgentError
from ari_agent.media.pcm import resample
from ari_agent.telephony.ari import AriClient, AriNotFound


class TestCallError(AriAgentError):
    """The test call could not be placed."""

    __test__ = False  # not a pytest test class


@dataclass
class TestCallResult:
    call_id: str
    said_source: str
    heard: str
    said: str
    answered: bool
    duration_s: float
    channels: list[str]

    __test__ = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_wav_mono(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    try:
        with wave.open(str(path)) as w:
            rate, width, ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise TestCallError(f"{path}: not a readable WAV file ({exc})") from None
    if width != 2:
        raise TestCallError(f"{path}: {8 * width}-bit WAV; 16-bit PCM expected")
    pcm = np.frombuffer(raw, dtype="<i2")
    if ch > 1:
        pcm = pcm.reshape(-1, ch).mean(axis=1).astype(np.int16)
    return pcm.astype(np.int16), rate


def write_wav(path: Path, pcm: npt.NDArray[np.int16], rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


class TestCaller:
    __test__ = False

    def __init__(self, ari: AriClient, pbx: PbxConfig) -> None:
        self.ari = ari
        self.pbx = pbx

    def host_calls_dir(self) -> Path:
        return self.pbx.root / self.pbx.calls_dir.lstrip("/")

    def prepare(self, wav: Path, call_id: str | None = None) -> tuple[str, Path]:
        call_id = call_id or "c" + uuid.uuid4().hex[:12]
        pcm, rate = read_wav_mono(wav)
        if rate != 8000:
            pcm = resample(pcm, rate, 8000)
        call_dir = self.host_calls_dir() / call_id
        if call_dir.exists():
            shutil.rmtree(call_dir)
        call_dir.mkdir(parents=True)
        call_dir.chmod(0o777)
        write_wav(call_dir / "said-src.wav", pcm)
        return call_id, call_dir

    async def place(
        self,
        wav: Path,
        *,
        pre_wait_s: float = 1.0,
        tail_wait_s: float = 4.0,
        caller_hangs_up: bool = True,
        max_duration_s: float = 120.0,
        call_id: str | None = None,
        extension: str | None = None,
    ) -> TestCallResult:
        call_id, call_dir = self.prepare(wav, call_id)
        return await self._originate(call_id, call_dir, self.pbx.test_caller_context, extension, max_duration_s, {
            "__CALLER_PRE_WAIT": f"{pre_wait_s:g}",
            "__CALLER_TAIL_WAIT": f"{tail_wait_s:g}",
            "__CALLER_HANGUP": "yes" if caller_hangs_up else "no",
        })

    async def place_dialog(
        self,
        utterances: list[Path],
        modes: str | None = None,
        *,
        silence_ms: int = 1200,
        barge_after_s: float = 1.5,
        dtmf: str = "",
        tail_wait_s: float = 8.0,
        max_duration_s: float = 180.0,
        extension: str | None = None,
        call_id: str | None = None,
        poll_s: float = 0.1,
    ) -> TestCallResult:
        """A reactive caller: each utterance is spoken after the agent has spoken and then been silent
        for ``silence_ms`` ("t"), or ``barge_after_s`` after the agent starts talking ("b"); "d" keys
        ``dtmf`` on the keypad instead of speaking that utterance (its WAV is not played)."""
        modes = modes or "t" * len(utterances)
        if len(modes) != len(utterances) or set(modes) - {"t", "b", "d"}:
            raise TestCallError("modes must give one of 't'/'b'/'d' per utterance")
        call_id, call_dir = self.prepare(utterances[0], call_id)
        for i, wav in enumerate(utterances, start=1):
            pcm, rate = read_wav_mono(wav)
            write_wav(call_dir / f"utt{i}.wav", resample(pcm, rate, 8000) if rate != 8000 else pcm)
        return await self._originate(call_id, call_dir, "ari-agent-test-dialog", extension, max_duration_s, {
            "__DIALOG_N": str(len(utterances)), "__DIALOG_MODES": modes, "__DIALOG_SILENCE_MS": str(silence_ms),
            "__DIALOG_BARGE_S": f"{barge_after_s:g}", "__CALLER_TAIL_WAIT": f"{tail_wait_s:g}",
            "__DIALOG_DTMF": dtmf,
        }, poll_s)

    async def _originate(self, call_id: str, call_dir: Path, context: str, extension: str | None,
                         max_duration_s: float, variables: dict[str, str], poll_s: float = 0.1) -> TestCallResult:
        chan_id = f"{call_id}-leg"
        started = time.monotonic()
        await self.ari.originate(
            f"Local/{call_id}@{context}/n",
            extension=extension or self.pbx.inbound_extension,
            context=self.pbx.inbound_context,
            caller_id=f'"Test caller" <{call_id}>',
            channel_id=chan_id,
            formats="ulaw",
            timeout_s=30,
            variables=variables,
        )
        answered = await self._wait_gone(chan_id, started + max_duration_s, poll_s)
        heard, said = call_dir / "heard.wav", call_dir / "said.wav"
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not (heard.exists() and said.exists()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        return TestCallResult(call_id, str(call_dir / "said-src.wav"), str(heard), str(said), answered,
                              round(time.monotonic() - started, 3), [chan_id])

    async def _wait_gone(self, chan_id: str, deadline: float, poll_s: float = 0.1) -> bool:
        answered = False
        while time.monotonic() < deadline:
            try:
                info = await self.ari.get_channel(chan_id)
                answered = answered or info.get("state") == "Up"
            except AriNotFound:
                return answered
            await asyncio.sleep(poll_s)
        await self.ari.quietly(self.ari.hangup(chan_id))
        return answered
