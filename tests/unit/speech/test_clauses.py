"""Where a spoken text is cut for streaming (ari_agent.speech.clauses), and the pieces PromptCache plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ari_agent.media.pcm import Pcm
from ari_agent.speech.clauses import sentence_clauses, split_clauses
from ari_agent.speech.tts import PromptCache


def test_cut_after_clause_punctuation_and_sentence_ends() -> None:
    text = ("Your order has shipped, it left the warehouse on Monday; it should arrive on Thursday. "
            "Is there anything else I can help with? Great!")
    assert split_clauses(text) == ["Your order has shipped,", "it left the warehouse on Monday;",
                                   "it should arrive on Thursday.", "Is there anything else I can help with?",
                                   "Great!"]
    assert split_clauses("Here is the plan: we call you back tomorrow.") == ["Here is the plan:",
                                                                             "we call you back tomorrow."]


def test_short_pieces_join_the_next_never_across_a_sentence() -> None:
    assert split_clauses("Sure, I can check on your order.") == ["Sure, I can check on your order."]
    assert split_clauses("First the good news: it shipped, ok.") == ["First the good news:", "it shipped, ok."]
    # a short last piece joins the one before; a short sentence stays a sentence of its own
    assert split_clauses("I found your order for the blue chair, ok? Thanks.") == \
        ["I found your order for the blue chair, ok?", "Thanks."]
    assert split_clauses("Okay. Thanks, bye.") == ["Okay.", "Thanks, bye."]


def test_long_clauses_are_cut_before_a_conjunction() -> None:
    long = "I have booked the technician for Tuesday morning and you will get a text message the day before"
    assert sentence_clauses(long) == ["I have booked the technician for Tuesday morning",
                                      "and you will get a text message the day before"]
    short = "I can check that and call you back"  # not long: stays whole
    assert sentence_clauses(short) == [short]
    # a conjunction too near either end is no cut
    assert sentence_clauses("So I have booked the technician for Tuesday morning at nine sharp for you") == \
        ["So I have booked the technician for Tuesday morning at nine sharp for you"]


def test_numbers_and_times_are_not_cut_and_no_word_is_lost() -> None:
    text = "The total is 1,250 dollars, due at 10:30 tomorrow, and the reference is A-12."
    clauses = split_clauses(text)
    assert clauses == ["The total is 1,250 dollars,", "due at 10:30 tomorrow,", "and the reference is A-12."]
    assert " ".join(clauses).split() == text.split()
    assert split_clauses("") == [] and split_clauses("   ") == []


class Counting:
    cache_key = "counting"

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Pcm:
        self.spoken.append(text)
        return np.ones(80 * len(text.split()), dtype=np.int16)


async def test_plan_clauses_for_a_clause_streaming_voice_and_whole_fixed_prompts(tmp_path: Path) -> None:
    voice = Counting()
    cache = PromptCache(voice, tmp_path, clauses=True)
    fixed = "Thanks for calling, this is the assistant. How can I help you today?"
    await cache.warm([fixed, "Anything else, or are we all done for today?"])
    rendered = len(voice.spoken)
    assert cache.plan(fixed) == [fixed]  # a fixed prompt rendered whole is played whole, from the cache
    # a fixed sentence inside another text stays whole; the rest is cut at clauses
    assert cache.plan("Your order shipped on Monday, it arrives Thursday. Anything else, or are we all done "
                      "for today?") == ["Your order shipped on Monday,", "it arrives Thursday.",
                                        "Anything else, or are we all done for today?"]
    pieces = [c.text async for c in cache.stream(fixed)]
    assert pieces == [fixed] and len(voice.spoken) == rendered  # no engine call
    # a voice that does not stream clauses (espeak-ng) is cut at sentences only
    assert PromptCache(voice, tmp_path).plan("Sure, I can check that for you right away. Bye.") == \
        ["Sure, I can check that for you right away.", "Bye."]


async def test_a_clause_heard_again_is_not_rendered_again(tmp_path: Path) -> None:
    voice = Counting()
    cache = PromptCache(voice, tmp_path, clauses=True)
    text = "Your order has shipped, it left the warehouse on Monday."
    assert [c.text async for c in cache.stream(text)] == ["Your order has shipped,", "it left the warehouse on Monday."]
    assert [c.text async for c in cache.stream("Your order has shipped, it arrives on Thursday.")] == \
        ["Your order has shipped,", "it arrives on Thursday."]
    assert voice.spoken == ["Your order has shipped,", "it left the warehouse on Monday.", "it arrives on Thursday."]
