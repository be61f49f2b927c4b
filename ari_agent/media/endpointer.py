"""End-of-turn detection: a pure state machine fed 20 ms frames, one per call.

``push(frame, now_ms)`` returns at most one event:

- :class:`SpeechStart` once speech has lasted ``min_speech_ms`` (clicks and short noises never
  start a turn); ``start_ms`` is the first voiced frame. With ``barge_in`` True it was heard while the
  agent was playing a prompt (see *echo-aware mode*).
- :class:`SpeechEnd` with the utterance audio (``pre_roll_ms`` of audio before the onset, the speech,
  up to ``tail_ms`` of the trailing silence), once the caller has been silent long enough, or the
  utterance reached ``max_utterance_ms``.
- :class:`NoInput` when a listening turn started with :meth:`Endpointer.start_turn` hears no speech
  within its ``no_input_ms``.

Adaptive end of turn. The silence that ends a turn is ``silence_ms`` (500 ms) by default;
``patient_silence_ms`` (1000 ms) for turns where callers pause between groups (digits, spelled
letters: ``start_turn(patient=True)``); and ``complete_silence_ms`` (250 ms) as soon as what was heard
already completes the expectation: the ``completes`` callback is asked with the recogniser's partial
text (from the ``partial_text`` callback) once the silence reaches ``complete_silence_ms``, again each
``recheck_ms`` of silence after that (a partial result may settle late), and at once whenever the
partial text changes in that silence (a whole-utterance recogniser's early decode lands at any frame:
its words are judged when they come, not at the next recheck).

Echo-aware mode. While the agent plays a prompt (``set_playing(True)``), its own voice leaks back
from the line. A barge-in onset then needs more: frames must stand ``echo_margin_db`` over the noise
floor and ``echo_min_db`` absolute, for ``echo_min_speech_ms``.

Times are media time in milliseconds: ``now_ms`` is when the frame's first sample was captured;
frames are expected back to back. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from ari_agent.errors import MediaError
from ari_agent.media.pcm import SAMPLE_RATE, Pcm, as_pcm16
from ari_agent.media.vad import Vad, VadFrame


@dataclass(frozen=True)
class EndpointerConfig:
    frame_ms: int = 20
    min_speech_ms: int = 120
    """Voiced audio needed before a turn starts: shorter bursts (clicks, a cough) are ignored."""
    onset_gap_ms: int = 60
    """A gap in the voicing longer than this, before the onset is confirmed, discards the candidate."""
    pre_roll_ms: int = 200
    silence_ms: int = 500
    complete_silence_ms: int = 250
    patient_silence_ms: int = 1000
    recheck_ms: int = 100
    tail_ms: int = 300
    """Trailing silence kept at the end of the utterance audio (recognisers like a little)."""
    max_utterance_ms: int = 15_000
    no_input_ms: int = 6_000
    echo_min_speech_ms: int = 300
    echo_margin_db: float = 18.0
    echo_min_db: float = -40.0

    def __post_init__(self) -> None:
        if self.frame_ms <= 0:
            raise MediaError(f"frame_ms must be positive, got {self.frame_ms}")
        for name in ("min_speech_ms", "silence_ms", "complete_silence_ms", "patient_silence_ms",
                     "max_utterance_ms", "echo_min_speech_ms", "recheck_ms"):
            if getattr(self, name) <= 0:
                raise MediaError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("onset_gap_ms", "pre_roll_ms", "tail_ms", "no_input_ms"):
            if getattr(self, name) < 0:
                raise MediaError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class SpeechStart:
    start_ms: int
    barge_in: bool = False


@dataclass(frozen=True, eq=False)
class SpeechEnd:
    audio: Pcm
    start_ms: int  # first voiced frame
    end_ms: int  # end of the last voiced frame
    reason: Literal["silence", "max_length"] = "silence"
    barge_in: bool = False

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class NoInput:
    at_ms: int


EndpointEvent = SpeechStart | SpeechEnd | NoInput


class _State(enum.Enum):
    IDLE = "idle"
    ONSET = "onset"
    SPEECH = "speech"


@dataclass
class _Turn:
    patient: bool = False
    completes: Callable[[str], bool] | None = None
    no_input_deadline_ms: int | None = None


@dataclass
class _Utterance:
    start_ms: int
    barge_in: bool
    frames: list[Pcm] = field(default_factory=list)
    voiced_ms: int = 0
    gap_ms: int = 0  # current run of non-speech frames
    last_voiced_end_ms: int = 0
    next_check_ms: int = 0  # silence length at which `completes` is asked (again)
    asked: str = ""  # the partial text `completes` was last asked about in this silence
    complete: bool = False


class Endpointer:
    """Turns a stream of 20 ms frames into SpeechStart / SpeechEnd / NoInput events."""

    def __init__(
        self,
        config: EndpointerConfig | None = None,
        vad: Vad | None = None,
        partial_text: Callable[[], str] | None = None,
    ) -> None:
        self.config = config or EndpointerConfig()
        self.vad = vad or Vad()
        self.partial_text = partial_text
        self._playing = False
        self._state = _State.IDLE
        self._turn = _Turn()
        self._pre: deque[Pcm] = deque(maxlen=max(0, self.config.pre_roll_ms // self.config.frame_ms))
        self._utt: _Utterance | None = None
        self._frame_samples = SAMPLE_RATE * self.config.frame_ms // 1000

    # -- control -------------------------------------------------------------------------------

    @property
    def in_speech(self) -> bool:
        return self._state is _State.SPEECH

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def trailing_silence_ms(self) -> int:
        """How long the caller has been silent inside the utterance under way (0 outside one)."""
        return self._utt.gap_ms if self._state is _State.SPEECH and self._utt is not None else 0

    @property
    def voiced_until_ms(self) -> int | None:
        """Media time at which the utterance under way was last voiced: the same value at the turn's end
        means the caller said nothing more (what a decode started at a pause needs to stay valid)."""
        return self._utt.last_voiced_end_ms if self._state is _State.SPEECH and self._utt is not None else None

    def set_playing(self, playing: bool) -> None:
        """The agent started (True) or stopped (False) playing a prompt: echo-aware onsets."""
        self._playing = playing

    def start_turn(
        self,
        now_ms: int,
        *,
        patient: bool = False,
        completes: Callable[[str], bool] | None = None,
        no_input_ms: int | None = None,
    ) -> None:
        """A listening turn starts: arm the no-input timer and set how the turn's end is judged.

        ``patient``: callers pause inside the answer (digits, letters) - wait ``patient_silence_ms``.
        ``completes(partial_text)``: True once the words heard already make a complete answer.
        An utterance already under way (the caller barged in) keeps going under the new rules.
        """
        wait = self.config.no_input_ms if no_input_ms is None else no_input_ms
        deadline = now_ms + wait if wait > 0 else None
        if self._state is not _State.IDLE:
            deadline = None  # the caller is already speaking
        self._turn = _Turn(patient=patient, completes=completes, no_input_deadline_ms=deadline)

    def cancel_turn(self) -> None:
        """Stop the no-input timer (the turn was answered another way, e.g. DTMF)."""
        self._turn.no_input_deadline_ms = None

    def utterance_audio(self) -> Pcm:
        """The utterance so far (``pre_roll_ms`` before the onset included): what a recogniser started
        at :class:`SpeechStart` is fed first. Empty when no utterance is under way."""
        frames = self._utt.frames if self._utt is not None else []
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def reset(self) -> None:
        """Drop any utterance in progress and the pre-roll (keeps the VAD's noise floor)."""
        self._state = _State.IDLE
        self._utt = None
        self._pre.clear()
        self._turn.no_input_deadline_ms = None

    # -- frames --------------------------------------------------------------------------------

    def push(self, frame: npt.ArrayLike, now_ms: int) -> EndpointEvent | None:
        samples = as_pcm16(frame, "endpointer frame")
        if samples.size != self._frame_samples:
            raise MediaError(f"endpointer frame must hold {self._frame_samples} samples, got {samples.size}")
        verdict = self.vad.analyse(samples)
        if self._state is _State.IDLE:
            return self._idle(samples, verdict, now_ms)
        if self._state is _State.ONSET:
            return self._onset(samples, verdict, now_ms)
        return self._speech(samples, verdict, now_ms)

    def _is_onset_speech(self, v: VadFrame) -> bool:
        if not v.speech:
            return False
        if self._playing:
            cfg = self.config
            return v.snr_db >= cfg.echo_margin_db and v.energy_db >= cfg.echo_min_db
        return True

    def _idle(self, samples: Pcm, v: VadFrame, now_ms: int) -> EndpointEvent | None:
        if self._is_onset_speech(v):
            utt = _Utterance(start_ms=now_ms, barge_in=self._playing)
            utt.frames.extend(self._pre)
            utt.frames.append(samples)
            utt.voiced_ms = self.config.frame_ms
            utt.last_voiced_end_ms = now_ms + self.config.frame_ms
            self._pre.clear()
            self._utt = utt
            self._state = _State.ONSET
            return self._confirm_onset(now_ms)
        self._pre.append(samples)
        deadline = self._turn.no_input_deadline_ms
        if deadline is not None and now_ms + self.config.frame_ms >= deadline:
            self._turn.no_input_deadline_ms = None
            return NoInput(at_ms=now_ms + self.config.frame_ms)
        return None

    def _onset(self, samples: Pcm, v: VadFrame, now_ms: int) -> EndpointEvent | None:
        utt = self._utt
        assert utt is not None
        cfg = self.config
        utt.frames.append(samples)
        if self._is_onset_speech(v):
            utt.voiced_ms += cfg.frame_ms
            utt.gap_ms = 0
            utt.last_voiced_end_ms = now_ms + cfg.frame_ms
            return self._confirm_onset(now_ms)
        utt.gap_ms += cfg.frame_ms
        if utt.gap_ms > cfg.onset_gap_ms:
            # Too short to be speech: back to waiting, keeping the tail as pre-roll.
            keep = self._pre.maxlen or 0
            self._pre.extend(utt.frames[-keep:] if keep else [])
            self._utt = None
            self._state = _State.IDLE
            deadline = self._turn.no_input_deadline_ms
            if deadline is not None and now_ms + cfg.frame_ms >= deadline:
                self._turn.no_input_deadline_ms = None
                return NoInput(at_ms=now_ms + cfg.frame_ms)
        return None

    def _confirm_onset(self, now_ms: int) -> EndpointEvent | None:
        utt = self._utt
        assert utt is not None
        needed = self.config.echo_min_speech_ms if utt.barge_in else self.config.min_speech_ms
        if utt.voiced_ms < needed:
            return None
        self._state = _State.SPEECH
        self._turn.no_input_deadline_ms = None
        utt.next_check_ms = self.config.complete_silence_ms
        return SpeechStart(start_ms=utt.start_ms, barge_in=utt.barge_in)

    def _speech(self, samples: Pcm, v: VadFrame, now_ms: int) -> EndpointEvent | None:
        utt = self._utt
        assert utt is not None
        cfg = self.config
        utt.frames.append(samples)
        if v.speech:
            utt.gap_ms = 0
            utt.complete = False
            utt.asked = ""
            utt.next_check_ms = cfg.complete_silence_ms
            utt.last_voiced_end_ms = now_ms + cfg.frame_ms
        else:
            utt.gap_ms += cfg.frame_ms
        if now_ms + cfg.frame_ms - utt.start_ms >= cfg.max_utterance_ms:
            return self._end("max_length")
        if utt.gap_ms == 0:
            return None
        if not utt.complete and utt.gap_ms >= cfg.complete_silence_ms and self._turn.completes is not None:
            text = self.partial_text() if self.partial_text is not None else ""
            if utt.gap_ms >= utt.next_check_ms or text != utt.asked:
                utt.asked = text
                utt.complete = bool(text) and self._turn.completes(text)
                utt.next_check_ms = utt.gap_ms + cfg.recheck_ms
        if utt.gap_ms >= self.silence_needed_ms(utt.complete):
            return self._end("silence")
        return None

    def silence_needed_ms(self, complete: bool = False) -> int:
        """The trailing silence that ends the current turn."""
        cfg = self.config
        if complete:
            return cfg.complete_silence_ms
        return cfg.patient_silence_ms if self._turn.patient else cfg.silence_ms

    def _end(self, reason: Literal["silence", "max_length"]) -> SpeechEnd:
        utt = self._utt
        assert utt is not None
        cfg = self.config
        drop_frames = max(0, (utt.gap_ms - cfg.tail_ms) // cfg.frame_ms)
        frames = utt.frames[: len(utt.frames) - drop_frames] if drop_frames else utt.frames
        audio: Pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        self._utt = None
        self._state = _State.IDLE
        self._pre.clear()
        return SpeechEnd(audio=audio, start_ms=utt.start_ms, end_ms=utt.last_voiced_end_ms, reason=reason,
                         barge_in=utt.barge_in)
