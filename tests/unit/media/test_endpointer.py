from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest

from ari_agent.errors import MediaError
from ari_agent.media.endpointer import Endpointer, EndpointerConfig, EndpointEvent, NoInput, SpeechEnd, SpeechStart
from ari_agent.media.vad import Vad, VadFrame
from tests.unit.speech.corpus import caller_audio

FRAME = np.zeros(160, dtype=np.int16)


class ScriptedVad(Vad):
    """Speech/non-speech decided by the frame's first sample (1 = speech), energy by the second."""

    def analyse(self, frame: object) -> VadFrame:
        arr = np.asarray(frame)
        speech = bool(arr[0] == 1)
        energy = float(arr[1]) if arr[1] else (-30.0 if speech else -70.0)
        return VadFrame(speech=speech, voiced=speech, energy_db=energy, floor_db=-70.0)


def frame(speech: bool, energy_db: float = 0.0, marker: int = 0) -> np.ndarray:
    f = FRAME.copy()
    f[0] = 1 if speech else 0
    f[1] = int(energy_db)
    f[2] = marker
    return f


def run(ep: Endpointer, pattern: Iterable[bool | tuple[bool, float]],
        start_ms: int = 0) -> list[tuple[int, EndpointEvent]]:
    out = []
    now = start_ms
    for i, item in enumerate(pattern):
        speech, energy = item if isinstance(item, tuple) else (item, 0.0)
        ev = ep.push(frame(speech, energy, marker=i % 1000), now)
        if ev is not None:
            out.append((now, ev))
        now += 20
    return out


def endpointer(**kw: object) -> Endpointer:
    return Endpointer(EndpointerConfig(**kw), vad=ScriptedVad())  # type: ignore[arg-type]


def test_a_click_never_starts_a_turn() -> None:
    ep = endpointer()
    events = run(ep, [False] * 10 + [True] * 5 + [False] * 20)  # 100 ms < 120 ms
    assert events == []


def test_speech_start_after_min_speech_and_end_after_base_silence() -> None:
    ep = endpointer()
    events = run(ep, [False] * 20 + [True] * 30 + [False] * 40)
    (t_start, start), (t_end, end) = events
    assert isinstance(start, SpeechStart) and start.start_ms == 400 and t_start == 400 + 100  # 6th voiced frame
    assert isinstance(end, SpeechEnd) and end.reason == "silence"
    assert end.start_ms == 400 and end.end_ms == 1000
    assert t_end + 20 - end.end_ms == 500  # base silence
    # pre-roll 200 ms + 600 ms speech + tail 300 ms
    assert end.audio.size == (200 + 600 + 300) * 8
    assert end.audio[0 * 160] == 0 and end.audio[10 * 160] == 1  # pre-roll is silence, then speech


def test_short_gaps_inside_an_onset_are_bridged_but_long_ones_discard_it() -> None:
    ep = endpointer()
    assert run(ep, [True] * 3 + [False] * 2 + [True] * 3 + [False] * 30)[0][1] == SpeechStart(start_ms=0)
    ep = endpointer()
    assert run(ep, [True] * 4 + [False] * 4 + [True] * 2 + [False] * 30) == []


def test_patient_turns_wait_longer() -> None:
    ep = endpointer()
    ep.start_turn(0, patient=True)
    pattern = [True] * 20 + [False] * 40 + [True] * 20 + [False] * 60  # an 800 ms pause between groups
    events = run(ep, pattern)
    ends = [e for _, e in events if isinstance(e, SpeechEnd)]
    assert len(ends) == 1 and ends[0].end_ms == 80 * 20
    ep = endpointer()
    ends = [e for _, e in run(ep, pattern) if isinstance(e, SpeechEnd)]
    assert len(ends) == 2  # the base timeout splits it


def test_a_complete_answer_ends_the_turn_early() -> None:
    heard: list[str] = []
    ep = Endpointer(EndpointerConfig(), vad=ScriptedVad(), partial_text=lambda: "yes")
    def completes(text: str) -> bool:
        heard.append(text)
        return text == "yes"

    ep.start_turn(0, completes=completes)
    events = run(ep, [True] * 20 + [False] * 40)
    t_end, end = events[-1]
    assert isinstance(end, SpeechEnd) and 250 <= t_end + 20 - end.end_ms < 270  # 20 ms frames
    assert heard == ["yes"]


def test_an_incomplete_answer_is_rechecked_and_keeps_the_base_timeout() -> None:
    calls: list[str] = []
    ep = Endpointer(EndpointerConfig(), vad=ScriptedVad(), partial_text=lambda: "four five")
    def completes(text: str) -> bool:
        calls.append(text)
        return False

    ep.start_turn(0, patient=True, completes=completes)
    events = run(ep, [True] * 20 + [False] * 60)
    t_end, end = events[-1]
    assert isinstance(end, SpeechEnd)
    assert t_end + 20 - end.end_ms == 1000
    assert len(calls) > 3  # asked at 250 ms then every 100 ms


def test_a_partial_that_lands_between_rechecks_is_judged_at_once() -> None:
    """An early whole-utterance decode lands at any frame (here at 300 ms of silence, between the asks at
    250 and 350 ms): the turn ends on that frame, not at the next recheck; an unchanged partial is asked
    again only on the recheck schedule (the digits rule counts asks)."""
    frames = {"n": 0}
    asked: list[tuple[int, str]] = []

    def partial() -> str:
        return "where is my order" if frames["n"] >= 20 + 15 else ""  # 15 silent frames = 300 ms

    def completes(text: str) -> bool:
        asked.append((frames["n"], text))
        return text == "where is my order"

    ep = Endpointer(EndpointerConfig(), vad=ScriptedVad(), partial_text=partial)
    ep.start_turn(0, completes=completes)
    end_gap = None
    for i, speech in enumerate([True] * 20 + [False] * 30):
        frames["n"] = i + 1
        ev = ep.push(frame(speech), i * 20)
        if isinstance(ev, SpeechEnd):
            end_gap = (i + 1) * 20 - ev.end_ms
            break
    assert end_gap == 300
    assert asked == [(35, "where is my order")]  # an empty partial is never put to `completes`


def test_max_utterance_cap() -> None:
    ep = endpointer(max_utterance_ms=1000)
    events = run(ep, [True] * 100)
    ends = [e for _, e in events if isinstance(e, SpeechEnd)]
    assert ends[0].reason == "max_length" and ends[0].duration_ms == 1000


def test_no_input_timeout_fires_once_and_not_after_speech() -> None:
    ep = endpointer()
    ep.start_turn(1000, no_input_ms=400)
    events = run(ep, [False] * 60, start_ms=1000)
    assert events == [(1380, NoInput(at_ms=1400))]
    ep = endpointer()
    ep.start_turn(0, no_input_ms=400)
    events = run(ep, [False] * 5 + [True] * 20 + [False] * 60)
    assert not any(isinstance(e, NoInput) for _, e in events)


def test_echo_aware_barge_in_needs_louder_and_longer_speech() -> None:
    ep = endpointer()
    ep.set_playing(True)
    # Echo of the prompt: voiced but only 20 dB over the floor's -70 => below echo_min_db (-40).
    assert run(ep, [(True, -50.0)] * 40 + [False] * 30) == []
    # Loud but short (200 ms < 300 ms).
    assert run(ep, [(True, -20.0)] * 10 + [False] * 30) == []
    events = run(ep, [(True, -20.0)] * 20 + [False] * 30)
    start = events[0][1]
    assert start == SpeechStart(start_ms=0, barge_in=True) and events[0][0] == 280
    ep.set_playing(False)
    assert run(ep, [(True, -50.0)] * 10 + [False] * 30)[0][1] == SpeechStart(start_ms=0, barge_in=False)


def test_frame_size_and_config_checks() -> None:
    with pytest.raises(MediaError):
        endpointer().push(np.zeros(80, dtype=np.int16), 0)
    with pytest.raises(MediaError):
        EndpointerConfig(silence_ms=0)


def test_real_speech_gives_one_turn_with_its_boundaries() -> None:
    audio = caller_audio("I need to reschedule my appointment", "flite:slt", lead_ms=1000, trail_ms=1200)
    speech_ms = audio.size // 8 - 2200
    ep = Endpointer()
    ep.start_turn(0)
    events = [(i // 8, ev) for i in range(0, audio.size - 159, 160) if (ev := ep.push(audio[i : i + 160], i // 8))]
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["SpeechStart", "SpeechEnd"]
    end = events[1][1]
    assert isinstance(end, SpeechEnd)
    assert 900 <= end.start_ms <= 1200
    assert abs(end.end_ms - (1000 + speech_ms)) <= 300
