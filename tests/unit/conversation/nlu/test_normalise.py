from __future__ import annotations

import pytest

from ari_agent.conversation.nlu import normalise_transcript


@pytest.mark.parametrize(
    ("spoken", "expected"),
    [
        ("Um, uh, where's my order?", "where is my order"),
        ("I'd like to pay my bill", "i would like to pay my bill"),  # "like" as a verb stays
        ("it's like, you know, locked", "it is locked"),  # "like" and "you know" as fillers go
        ("yeah so hi I I wanna check my my order", "i want to check my order"),  # openers, stutters
        ("I can't I can't log in", "i can not log in"),  # a restarted phrase
        ("the ord- order [noise] number <unk> five", "the order number five"),  # cut word, ASR tags
        ("I mean, erm, hmm, can I talk to someone", "can i talk to someone"),
        ("dont wont cant im", "do not will not can not i am"),  # apostrophes dropped by the recogniser
        ("THE TECHNICIAN’S VISIT", "the technician visit"),  # curly apostrophe, possessive
        ("so", "so"),  # an opener alone is kept: it is all there is
        ("", ""),
        ("um uh hmm", ""),
        ("!!! ??? ...", ""),
    ],
)
def test_normalise_transcript(spoken: str, expected: str) -> None:
    assert normalise_transcript(spoken) == expected


def test_normalise_is_idempotent() -> None:
    once = normalise_transcript("Uh so yeah I'd, um, like to, like, reschedule my my appointment")
    assert once == "i would like to reschedule my appointment"
    assert normalise_transcript(once) == once
