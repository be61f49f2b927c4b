"""Normalisation of spoken-language transcripts before classification.

Callers do not speak in sentences: they hesitate ("um", "uh"), restart ("my my order"), cut words
("ord- order"), open with "yeah so hi" and recognisers add their own noise ("[noise]", "<unk>").
``normalise_transcript`` reduces all that to lowercase words separated by single spaces so that
both the lexical and the embedding paths see the content words.
"""

from __future__ import annotations

import re

# Spelled contractions, with and without the apostrophe (recognisers often drop it).
_CONTRACTIONS: dict[str, str] = {
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "wont": "will not",
    "shan't": "shall not",
    "ain't": "is not",
    "aint": "is not",
    "don't": "do not",
    "dont": "do not",
    "doesn't": "does not",
    "doesnt": "does not",
    "didn't": "did not",
    "didnt": "did not",
    "isn't": "is not",
    "isnt": "is not",
    "aren't": "are not",
    "arent": "are not",
    "wasn't": "was not",
    "wasnt": "was not",
    "weren't": "were not",
    "werent": "were not",
    "hasn't": "has not",
    "hasnt": "has not",
    "haven't": "have not",
    "havent": "have not",
    "hadn't": "had not",
    "hadnt": "had not",
    "couldn't": "could not",
    "couldnt": "could not",
    "wouldn't": "would not",
    "wouldnt": "would not",
    "shouldn't": "should not",
    "shouldnt": "should not",
    "mustn't": "must not",
    "i'm": "i am",
    "im": "i am",
    "i've": "i have",
    "ive": "i have",
    "i'll": "i will",
    "i'd": "i would",
    "you're": "you are",
    "youre": "you are",
    "you've": "you have",
    "you'll": "you will",
    "you'd": "you would",
    "we're": "we are",
    "we've": "we have",
    "we'll": "we will",
    "we'd": "we would",
    "they're": "they are",
    "theyre": "they are",
    "they've": "they have",
    "they'll": "they will",
    "it's": "it is",
    "its": "it is",
    "that's": "that is",
    "thats": "that is",
    "what's": "what is",
    "whats": "what is",
    "where's": "where is",
    "wheres": "where is",
    "when's": "when is",
    "who's": "who is",
    "how's": "how is",
    "there's": "there is",
    "theres": "there is",
    "here's": "here is",
    "let's": "let us",
    "lets": "let us",
    "he's": "he is",
    "she's": "she is",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "gimme": "give me",
    "lemme": "let me",
    "kinda": "kind of",
    "sorta": "sort of",
    "y'all": "you all",
    "ya": "you",
    "u": "you",
    "ur": "your",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "ok": "okay",
    "o.k.": "okay",
    "alright": "all right",
}

# Pure fillers: removed wherever they occur.
_FILLERS = frozenset("um umm ummm uh uhh uhhh uhm er erm err ah ahh eh hmm hm hmmm mm mmm mhm uh-huh huh".split())
# Multi-word fillers: removed wherever they occur.
_FILLER_PHRASES: tuple[tuple[str, ...], ...] = (
    ("you", "know", "what", "i", "mean"),
    ("you", "know"),
    ("i", "mean"),
    ("sort", "of"),
    ("kind", "of"),
    ("let", "me", "see"),
    ("let", "me", "think"),
)
# Openers: dropped while they lead the utterance (yeah so hi um ...).
_OPENERS = frozenset(
    "so yeah yes yep yup yea okay well hi hello hey right oh and but now anyway actually basically "
    "alright all good morning afternoon evening there sure erm listen look".split()
)
# "like" is a filler except after these words ("i would like", "feel like", "looks like").
_LIKE_KEEPERS = frozenset(
    "would i we you they do not feel feels felt look looks looked seem seems sound sounds just really also 'd".split()
)

_BRACKETED = re.compile(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)|\{[^}]*\}")
_NON_WORD = re.compile(r"[^a-z0-9'\-]+")


def _words(text: str) -> list[str]:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = _BRACKETED.sub(" ", text)
    out: list[str] = []
    for raw in _NON_WORD.sub(" ", text).split():
        if raw.endswith("-"):
            continue  # a cut-off word: "ord- order"
        word = raw.strip("'-")
        if not word:
            continue
        expanded = _CONTRACTIONS.get(word)
        if expanded is not None:
            out.extend(expanded.split())
            continue
        if word.endswith("'s"):
            word = word[:-2]  # possessive: "the technician's visit"
        elif word.endswith("n't"):
            out.extend((word[:-3], "not"))
            continue
        for part in word.split("-"):
            if part:
                out.append(part.replace("'", ""))
    return out


def _drop_phrases(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        for phrase in _FILLER_PHRASES:
            n = len(phrase)
            if tuple(words[i : i + n]) == phrase:
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def normalise_transcript(text: str) -> str:
    """Lowercase content words of a spoken transcript, fillers and restarts removed."""
    words = [w for w in _words(text) if w not in _FILLERS]
    words = _drop_phrases(words)
    kept: list[str] = []
    for i, word in enumerate(words):
        if word == "like" and (i == 0 or words[i - 1] not in _LIKE_KEEPERS):
            continue
        if kept and kept[-1] == word:
            continue  # stutter / restart: "my my order"
        kept.append(word)
    # Openers go only while they lead ("yeah so hi i want ..."), and never the whole utterance.
    start = 0
    while start < len(kept) - 1 and kept[start] in _OPENERS:
        start += 1
    kept = kept[start:]
    return " ".join(_drop_restarts(kept))


def _drop_restarts(words: list[str]) -> list[str]:
    """Multi-word restarts: "i can not i can not log in" -> "i can not log in"."""
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in (5, 4, 3, 2):
            if words[i : i + n] == words[i + n : i + 2 * n] and i + 2 * n <= len(words):
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out
