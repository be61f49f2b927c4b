"""Yes/no answers in their spoken variants: "yeah", "yep", "sure", "that's right", "go ahead",
"nope", "not really", "that's wrong", "no thanks".

When a caller says both ("yes... no, wait") the last one counts; phrases are matched longest first,
so "no problem" is a yes and "not right" a no.
"""

from __future__ import annotations

from ari_agent.conversation.slots.words import tokens

_YES_PHRASES = (
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "aye", "sure", "surely", "certainly", "correct",
    "right", "exactly", "absolutely", "definitely", "indeed", "affirmative", "okay", "ok", "alright",
    "fine", "please", "uh huh", "mhm", "mm hmm", "that's right", "that is right", "that's correct",
    "that is correct", "thats right", "go ahead", "go for it", "please do", "do it", "sounds good",
    "of course", "no problem", "why not", "all right", "yes please", "i do", "it is", "that's it",
    "perfect", "great", "confirm", "confirmed",
)
_NO_PHRASES = (
    "no", "nope", "nah", "nay", "negative", "not really", "not quite", "not right", "not correct",
    "incorrect", "wrong", "that's wrong", "that is wrong", "no thanks", "no thank you", "don't",
    "do not", "dont", "i don't", "i do not", "it isn't", "it is not", "not at all", "never", "cancel",
    "stop", "not that", "it's not", "that's not", "not now", "no way", "absolutely not",
    "definitely not", "certainly not", "of course not", "i'd rather not", "rather not",
)

_PHRASES: list[tuple[tuple[str, ...], bool]] = sorted(
    [(tuple(tokens(p)), True) for p in _YES_PHRASES] + [(tuple(tokens(p)), False) for p in _NO_PHRASES],
    key=lambda item: -len(item[0]),
)


def yes_no_phrases() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The yes and the no phrases (for grammars)."""
    return _YES_PHRASES, _NO_PHRASES


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither."""
    words = tokens(text)
    verdict: bool | None = None
    i = 0
    while i < len(words):
        for phrase, polarity in _PHRASES:
            n = len(phrase)
            if tuple(words[i : i + n]) == phrase:
                verdict = polarity
                i += n
                break
        else:
            i += 1
    return verdict
