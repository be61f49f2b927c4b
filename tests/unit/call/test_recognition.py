"""The final decode started at the caller's first pause (whole-utterance engines like whisper): used when
the turn ends with nothing voiced after the pause, dropped when the caller went on. Real endpointer and
listener; the recogniser is a stand-in that says which audio it decoded (the logic under test is the
call layer's bookkeeping, not recognition)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from ari_agent.call.call_log import CallLog
from ari_agent.call.listening import Listener
from ari_agent.call.recognition import RecognizerFeed
from ari_agent.media.endpointer import Endpointer, EndpointerConfig, SpeechEnd
from ari_agent.seam import Expectation, Utterance
from ari_agent.speech.recognizer import SpeculativeRecognizer, Transcript
from ari_agent.speech.turn_completion import TurnCompletion

from .conftest import SILENCE, buzz


class WholeUtteranceRecognizer:
    """Buffers the turn like the whisper front end; ``decode``/``finish`` name the audio they decoded."""

    engine = "whole"

    def __init__(self) -> None:
        self.fed = 0
        self.decoded: list[int] = []
        self.finished = 0
        self.discarded = 0

    def start(self, expect: Expectation) -> None:
        self.fed = 0

    def feed(self, pcm8k: Any) -> None:
        self.fed += int(np.asarray(pcm8k).size)

    def partial(self) -> str:
        return ""

    def decode(self, pcm8k: Any) -> Transcript:
        n = int(np.asarray(pcm8k).size)
        self.decoded.append(n)
        return Transcript(text=f"early {n}", engine=self.engine)

    def finish(self) -> Transcript:
        self.finished += 1
        return Transcript(text=f"final {self.fed}", engine=self.engine)

    def discard(self) -> None:
        self.discarded += 1

    def close(self) -> None:
        pass


class _NoAnswers:
    """Turn rules' word knowledge that never finds an answer complete."""

    def is_yes_no(self, text: str) -> bool:
        return False

    def digit_count(self, text: str) -> int:
        return 0

    def confident_request(self, text: str) -> bool:
        return False

    def unfinished(self, text: str) -> bool:
        return False


def _listener(rec: WholeUtteranceRecognizer, speculate_after_ms: int = 200) -> Listener:
    rules = TurnCompletion(_NoAnswers())
    feed = RecognizerFeed(rec, rules)
    ep = Endpointer(EndpointerConfig(silence_ms=500), partial_text=lambda: feed.partial)
    return Listener(ep, feed, rules, CallLog("call-test", 0.0), speculate_after_ms=speculate_after_ms)


async def _speak(listener: Listener, pattern: list[tuple[str, int]]) -> None:
    i = 0
    for kind, ms in pattern:
        for _ in range(ms // 20):
            await listener._push(buzz(i) if kind == "speech" else SILENCE)
            i += 1
            await asyncio.sleep(0)  # let the feeding / decoding tasks run, as the event loop would


async def test_the_whole_utterance_engine_is_speculative() -> None:
    assert isinstance(WholeUtteranceRecognizer(), SpeculativeRecognizer)


async def test_a_decode_started_at_the_pause_is_the_turns_result() -> None:
    rec = WholeUtteranceRecognizer()
    listener = _listener(rec)
    await listener.begin(Expectation(kind="open"), 6.0)
    await _speak(listener, [("silence", 100), ("speech", 800), ("silence", 700)])
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance)
    assert event.text.startswith("early ") and rec.decoded and rec.finished == 0 and rec.discarded == 1
    assert listener.transcripts[-1].speculative
    assert listener.feed.speculations == 1 and listener.feed.speculation_hits == 1


async def test_speech_after_the_pause_drops_the_early_decode() -> None:
    rec = WholeUtteranceRecognizer()
    listener = _listener(rec)
    await listener.begin(Expectation(kind="open"), 6.0)
    # a 300 ms pause mid-sentence (early decode starts), then the caller goes on, then the turn ends
    await _speak(listener, [("speech", 600), ("silence", 300), ("speech", 600), ("silence", 700)])
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance)
    # The second pause may get its own early decode (used) or none (the first still running): never the
    # first one's, which misses the words after the pause.
    first = rec.decoded[0]
    assert event.text != f"early {first}"
    if listener.transcripts[-1].speculative:
        assert len(rec.decoded) == 2 and event.text == f"early {rec.decoded[1]}" and rec.decoded[1] > first
    else:
        assert rec.finished == 1 and event.text.startswith("final ")


async def test_no_speculation_when_switched_off_or_the_engine_streams() -> None:
    rec = WholeUtteranceRecognizer()
    listener = _listener(rec, speculate_after_ms=0)
    await listener.begin(Expectation(kind="open"), 6.0)
    await _speak(listener, [("speech", 600), ("silence", 700)])
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance) and event.text.startswith("final ") and rec.decoded == []

    class Streaming:  # pocketsphinx-like: no decode(), so nothing speculative
        engine = "streaming"

        def start(self, expect: Expectation) -> None: ...
        def feed(self, pcm8k: Any) -> None: ...
        def partial(self) -> str:
            return ""

        def finish(self) -> Transcript:
            return Transcript(text="streamed")

        def close(self) -> None: ...

    feed = RecognizerFeed(Streaming(), TurnCompletion(_NoAnswers()))
    await feed.start(Expectation(kind="open"))
    assert feed.speculate(100, np.zeros(160, dtype=np.int16)) is False


async def test_a_failed_early_decode_is_decoded_again_at_the_end() -> None:
    class Failing(WholeUtteranceRecognizer):
        def decode(self, pcm8k: Any) -> Transcript:
            self.decoded.append(int(np.asarray(pcm8k).size))
            return Transcript(text="", engine=self.engine, error="worker crashed")

    rec = Failing()
    listener = _listener(rec)
    await listener.begin(Expectation(kind="open"), 6.0)
    await _speak(listener, [("speech", 600), ("silence", 700)])
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance) and event.text.startswith("final ") and rec.finished == 1


def test_speech_end_key_is_the_last_voiced_time() -> None:
    """The key the listener matches: the endpointer's last voiced time at the pause equals SpeechEnd's."""
    ep = Endpointer(EndpointerConfig(silence_ms=500))
    ep.start_turn(0)
    now, at_pause, end = 0, None, None
    for i in range(30):
        ep.push(buzz(i), now)
        now += 20
    for _ in range(40):
        ev = ep.push(SILENCE, now)
        now += 20
        if ep.trailing_silence_ms == 200:
            at_pause = ep.voiced_until_ms
        if isinstance(ev, SpeechEnd):
            end = ev.end_ms
    assert at_pause is not None and at_pause == end


# ---------------------------------------------------------------- the early decode as the partial result


class _Sure:
    """Word knowledge that is sure of one request (and finds nothing unfinished)."""

    def __init__(self, sure: str) -> None:
        self.sure = sure
        self.classified: list[str] = []

    def is_yes_no(self, text: str) -> bool:
        return False

    def digit_count(self, text: str) -> int:
        return 0

    def confident_request(self, text: str) -> bool:
        self.classified.append(text)
        return text == self.sure

    def unfinished(self, text: str) -> bool:
        return False


class Scripted(WholeUtteranceRecognizer):
    """Early decodes say the given words in turn (the last one again after that)."""

    def __init__(self, *texts: str) -> None:
        super().__init__()
        self.texts = list(texts)

    def decode(self, pcm8k: Any) -> Transcript:
        self.decoded.append(int(np.asarray(pcm8k).size))
        return Transcript(text=self.texts[min(len(self.decoded), len(self.texts)) - 1], engine=self.engine)


def _sure_listener(rec: WholeUtteranceRecognizer, sure: str, speculate_after_ms: int = 100) -> Listener:
    rules = TurnCompletion(_Sure(sure))
    feed = RecognizerFeed(rec, rules)
    ep = Endpointer(EndpointerConfig(silence_ms=500), partial_text=lambda: feed.partial)
    return Listener(ep, feed, rules, CallLog("call-test", 0.0), speculate_after_ms=speculate_after_ms)


async def _end_silence_ms(listener: Listener, pattern: list[tuple[str, int]]) -> list[int]:
    """Feed the pattern as a live call would (the decode thread gets time between frames); the trailing
    silence at which each SpeechEnd came."""
    out: list[int] = []
    i = 0
    for kind, ms in pattern:
        for _ in range(ms // 20):
            await listener._push(buzz(i) if kind == "speech" else SILENCE)
            i += 1
            for _ in range(3):
                await asyncio.sleep(0.001)
            while not listener._events.empty():
                ev = listener._events.get_nowait()
                if isinstance(ev, SpeechEnd):
                    out.append(listener.media_ms - ev.end_ms)
                    listener._events.put_nowait(ev)
                    return out
    return out


async def test_a_complete_early_decode_ends_the_turn_at_the_short_silence() -> None:
    rec = Scripted("where is my order")
    listener = _sure_listener(rec, "where is my order")
    await listener.begin(Expectation(kind="open"), 6.0)
    ends = await _end_silence_ms(listener, [("speech", 800), ("silence", 700)])
    assert ends and 250 <= ends[0] < 500, ends  # the whisper-only turn no longer waits the full 500 ms
    assert "where is my order" in listener.rules.reader.classified  # type: ignore[attr-defined]
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance) and event.text == "where is my order"
    assert listener.transcripts[-1].speculative and rec.finished == 0


async def test_an_early_decode_that_is_not_complete_keeps_the_full_silence() -> None:
    rec = Scripted("where is my")
    listener = _sure_listener(rec, "where is my order")
    await listener.begin(Expectation(kind="open"), 6.0)
    ends = await _end_silence_ms(listener, [("speech", 800), ("silence", 700)])
    assert ends and ends[0] >= 500


async def test_the_early_words_are_dropped_once_the_caller_goes_on() -> None:
    """The first pause's words were a whole request; the caller went on and the second pause's decode
    is not: the stale words must not end the turn at the second pause (an agent cut-in)."""
    rec = Scripted("where is my order", "where is my order and also")
    listener = _sure_listener(rec, "where is my order")
    await listener.begin(Expectation(kind="open"), 6.0)
    # a 200 ms pause: the early decode is back (its words are the partial), then the caller goes on
    await _end_silence_ms(listener, [("speech", 600), ("silence", 200)])
    assert listener.feed.partial == "where is my order"
    await listener._push(buzz(1))
    assert listener.feed.partial == ""
    ends = await _end_silence_ms(listener, [("speech", 600), ("silence", 700)])
    assert ends and ends[0] >= 500, ends
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance) and event.text == "where is my order and also"


async def test_a_pause_gets_its_own_decode_once_a_stale_one_is_back() -> None:
    """The first pause's decode is still running when the caller goes on and pauses again: the second
    pause gets a decode as soon as the first is back (not only at exactly ``speculate_after_ms``)."""
    gate = threading.Event()

    class Slow(WholeUtteranceRecognizer):
        def decode(self, pcm8k: Any) -> Transcript:
            if not self.decoded:
                gate.wait(5)
            return super().decode(pcm8k)

    rec = Slow()
    listener = _listener(rec, speculate_after_ms=100)
    await listener.begin(Expectation(kind="open"), 6.0)
    await _end_silence_ms(listener, [("speech", 600), ("silence", 160), ("speech", 400), ("silence", 200)])
    assert listener.feed.speculations == 1  # the second pause is waiting for the first decode
    gate.set()
    ends = await _end_silence_ms(listener, [("silence", 600)])
    assert ends
    event = await listener.next_utterance([])
    assert isinstance(event, Utterance)
    assert listener.feed.speculations == 2 and listener.transcripts[-1].speculative
    assert event.text == f"early {rec.decoded[1]}" and rec.decoded[1] > rec.decoded[0]
