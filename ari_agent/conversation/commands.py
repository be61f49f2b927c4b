"""Things a caller can say at any point of the call, whatever was asked: ask for a person, ask for
the last prompt again, say goodbye, start over, go back to the previous question. Matched on whole
words, before any other reading.

Also here: the cues of a correction ("sorry, it's 4568", "no wait", "actually, make it Wednesday"),
which let an answer replace what the caller said before instead of answering the question asked."""

from __future__ import annotations

from enum import Enum

from ari_agent import spoken_words
from ari_agent.conversation.slots.words import tokens


class Command(Enum):
    HUMAN = "human"
    REPEAT = "repeat"
    GOODBYE = "goodbye"
    START_OVER = "start_over"
    GO_BACK = "go_back"


_HUMAN_WORDS = frozenset((*spoken_words.PERSON_TITLES, *"human advisor adviser manager supervisor".split()))
_HUMAN_PHRASES = (
    "real person", "live person", "a person", "actual person", "speak to someone", "talk to someone",
    "speak with someone", "talk with someone", "speak to somebody", "talk to somebody", "speak to anyone",
    "customer service", "customer services",
)
_NOT_HUMAN = ("in person", "agent said", "the agent told")
_REPEAT_PHRASES = (
    "repeat", "say that again", "say it again", "come again", "one more time", "didn't catch", "did not catch",
    "didn't hear", "did not hear", "what did you say", "missed that", "again please",
)
_REPEAT_ALONE = frozenset({"what", "sorry", "pardon", "huh", "again", "sorry what", "pardon me", "excuse me",
                           "what was that", "sorry what was that"})
_GOODBYE_PHRASES = ("bye", "goodbye", "good bye", "bye bye", "hang up")
_START_OVER_PHRASES = ("start over", "start again", "never mind", "nevermind", "forget it", "cancel that",
                       "scratch that")
_GO_BACK_PHRASES = ("go back", "back up", "previous question", "last question", "step back", "undo that",
                    "undo", "one step back")
_GO_BACK_MAX_WORDS = 6  # "can we go back to my order" is a request, not a command
_CORRECTION_CUES = ("sorry", "actually", "no wait", "wait", "i mean", "i meant", "oops", "correction",
                    "make it", "make that", "change it to", "change that to", "change the", "it should be",
                    "should be", "my mistake", "i said", "no it's", "no no", "no sorry", "rather", "instead",
                    "i got that wrong", "that was wrong", "let me correct")
# Said to "is there anything else?": the caller is done.
# "That's fine, thanks" is one too: read as a yes it asked "What else can I help you with?" of a caller who had
# just said goodbye (whisper heard "no, that's fine, thanks" as "Know that's fine, thanks.").
CLOSING_PHRASES = ("that's all", "that is all", "that's it", "that is it", "nothing else", "i'm good",
                   "i am good", "i'm done", "all good", "no thanks", "no thank you", "that's everything",
                   "i'm fine", "that will be all", "that'll be all", "that's fine", "that is fine", "i'm all set",
                   "all set", "nothing more", "nope", "no")


def _has(padded: str, phrase: str) -> bool:
    return f" {phrase} " in padded


def _pad(text: str) -> tuple[str, list[str]]:
    words = tokens(text)
    return f" {' '.join(words)} ", words


def detect_command(text: str) -> Command | None:
    """The command in ``text``, if the caller gave one."""
    padded, words = _pad(text)
    if not words:
        return None
    bare = " ".join(words)
    if not any(_has(padded, p) for p in _NOT_HUMAN) and (
        any(w in _HUMAN_WORDS for w in words) or any(_has(padded, p) for p in _HUMAN_PHRASES)
    ):
        return Command.HUMAN
    if bare in _REPEAT_ALONE or any(_has(padded, p) for p in _REPEAT_PHRASES):
        return Command.REPEAT
    if any(_has(padded, p) for p in _START_OVER_PHRASES):
        return Command.START_OVER
    if len(words) <= _GO_BACK_MAX_WORDS and any(_has(padded, p) for p in _GO_BACK_PHRASES):
        return Command.GO_BACK
    if any(_has(padded, p) for p in _GOODBYE_PHRASES):
        return Command.GOODBYE
    return None


def is_closing(text: str) -> bool:
    """True when ``text`` says the caller needs nothing more ("no thanks", "that's all")."""
    padded, words = _pad(text)
    if not words or len(words) > 8:
        return False
    return any(_has(padded, " ".join(tokens(p))) for p in CLOSING_PHRASES)


def contains_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first of ``phrases`` heard in ``text`` (whole words), or None."""
    padded, _ = _pad(text)
    for p in phrases:
        norm = " ".join(tokens(p))
        if norm and _has(padded, norm):
            return p
    return None


def is_correction(text: str) -> bool:
    """True when ``text`` sounds like the caller correcting themselves ("sorry, it's 4568")."""
    padded, words = _pad(text)
    return bool(words) and any(_has(padded, p) for p in _CORRECTION_CUES)


def slot_named(text: str, name: str) -> bool:
    """True when ``text`` names the slot ``name`` ("the time", "my order number", "the date")."""
    padded, _ = _pad(text)
    parts = [p for p in name.split("_") if p not in ("new", "of", "the")]
    synonyms = {"date": ("date", "day"), "time": ("time",), "birth": ("birth", "birthday"),
                "postcode": ("postcode", "post code", "zip", "zip code")}
    return any(_has(padded, w) for p in parts for w in synonyms.get(p, (p,)))
