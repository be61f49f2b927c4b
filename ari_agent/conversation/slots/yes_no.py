"""Yes/no answers, read as consent: "yes", "yeah go ahead", "that's right" are yes; "no", "nope",
"that's not right", "don't do it" are no; and everything that is not a clear answer is *unclear*:
hedges ("I'm not sure", "I guess", "maybe"), questions ("is that right?", "confirm what exactly?"),
conditions ("only if it's free", "yes but..."), pauses ("wait", "hold on"), sarcasm ("great, another
robot", "sure... not", "fine whatever") and mixed answers ("no, yes").

``read_yes_no`` gives the verdict with the reason; a yes is given only when *every* word of the answer
is accounted for: yes words, politeness and fillers, or words of the question asked (the caller
repeating it: "yes, unlock my account"). Any other word makes the answer unclear, so "why not ask
my wife first" is never a yes. Mixed answers: a yes followed by a no ("yeah no", "yes... no, wait")
is a no; a no followed by a yes is unclear. Phrases are matched longest first ("no problem" is a yes,
"not right" a no, "not sure" a hedge).

``parse_yes_no`` is the old reading for callers that want ``True``/``False``/``None`` (None for
unclear and for no answer at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ari_agent.conversation.slots.words import tokens

Verdict = Literal["yes", "no", "unclear"]
Reason = Literal["affirmative", "negative", "hedge", "question", "condition", "wait", "sarcasm", "mixed",
                 "other", "nothing"]

_YES_PHRASES = (
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yeh", "aye", "sure", "surely", "certainly", "correct",
    "right", "exactly", "absolutely", "definitely", "indeed", "affirmative", "okay", "ok", "okey dokey", "alright",
    "fine", "please", "uh huh", "mhm", "mm hmm", "mm hm", "that's right", "that is right", "that's correct",
    "that is correct", "thats right", "go ahead", "go for it", "please do", "do it", "do that", "sounds good",
    "sounds great", "sounds fine", "sounds right", "sounds perfect", "of course", "no problem", "not a problem",
    "no problem at all", "all right", "yes please", "i do", "it is", "that's it", "perfect", "great", "confirm",
    "confirmed", "i confirm", "proceed", "please proceed", "carry on", "go on", "go on then", "by all means",
    "that works", "works for me", "that's fine", "fine by me", "ok by me", "okay by me", "agreed", "i agree",
    "you bet", "totally", "sure thing", "of course you can", "you can", "you may", "let's do it", "lets do it",
    "let's do that", "lovely", "brilliant", "excellent", "wonderful", "fantastic", "cool", "good", "grand",
    "yes sir", "yes ma'am", "that's good", "that'll do", "will do", "please go ahead", "approved", "i approve",
    "i'd like that", "i would like that", "that would be great", "that'd be great", "that would be good",
    "that'd be good", "that would be fine", "yes i would", "i would", "i'd appreciate that", "go right ahead",
    "indeed i do", "yes it is", "it's fine", "it's ok", "it's okay", "that's ok", "that's okay", "all good",
    "i'm happy with that", "happy with that", "that suits me", "suits me", "spot on", "bang on", "precisely",
    "right on", "roger", "roger that", "alrighty", "uh huh yes", "yes indeed", "that's perfect", "that's great",
    "no worries", "yes thanks", "yes thank you",
)
_NO_PHRASES = (
    "no", "nope", "nah", "naw", "nay", "negative", "not really", "not quite", "not right", "not correct",
    "incorrect", "wrong", "that's wrong", "that is wrong", "no thanks", "no thank you", "don't", "do not",
    "dont", "i don't", "i do not", "it isn't", "it is not", "not at all", "never", "cancel", "stop",
    "not that", "it's not", "that's not", "not now", "no way", "absolutely not", "definitely not",
    "certainly not", "of course not", "i'd rather not", "rather not", "not yet", "not today", "hold off",
    "leave it", "leave it as it is", "leave it alone", "don't bother", "i wouldn't", "please don't",
    "don't do it", "don't do that", "no don't", "not ok", "not okay", "not fine", "not good", "not exactly",
    "no chance", "not for now", "i'd rather you didn't", "no it isn't", "i don't want", "i don't want that",
    "i don't want to", "not necessary", "no need", "there's no need", "isn't", "wasn't", "i said no",
    "that's incorrect", "do it myself", "i'll do it myself", "i'll do it later", "sure not",
    "i don't think so", "i do not think so", "don't think so",
)
# Not an answer: not sure, thinking, deferring to someone else.
_HEDGE_PHRASES = (
    "maybe", "perhaps", "possibly", "probably", "i guess", "guess so", "i suppose", "suppose so", "i think",
    "think so", "i reckon", "reckon so", "kind of", "sort of", "kinda", "sorta", "not sure", "unsure",
    "not certain", "uncertain", "dunno", "don't know", "do not know", "no idea", "no clue", "not a clue", "depends",
    "it depends", "might", "may be", "could be", "i believe so", "i hope so", "i'd say so", "hard to say",
    "let me think", "let me check", "i'll have to check", "i need to check", "need to think", "not necessarily",
    "i can't say", "can't say", "cannot say", "can't confirm", "cannot confirm", "can not confirm",
    "couldn't confirm", "can't decide", "not positive", "not convinced", "i don't mind", "don't mind",
    "up to you", "your call", "you decide", "you choose", "either way", "if you like", "if you want",
    "if you think", "if you say so", "if you must", "ask my", "check with", "talk to my", "i'd need to",
    "i'm thinking", "thinking about it", "not sure about", "i'm not sure", "i am not sure", "not so sure",
    "i wonder", "possibly yes", "yes and no", "sort of yes", "more or less", "i'm torn", "confused",
    "i'm confused", "don't understand", "do not understand", "didn't understand", "not following",
    "i don't know", "i do not know", "i don't understand", "i don't mind", "i didn't understand",
    "no comment", "pass", "eventually", "later", "one day", "someday", "in a bit", "tomorrow maybe",
)
_WAIT_PHRASES = (
    "wait", "hold on", "hang on", "hold up", "one moment", "one sec", "one second", "a sec", "a second",
    "a moment", "a minute", "just a minute", "just a moment", "just a sec", "give me a", "let me see",
    "hmm let me", "not so fast", "slow down", "woah", "whoa", "hang about", "one minute",
)
_CONDITION_WORDS = frozenset(
    "if unless provided providing assuming but except although though however only first once before "
    "after until till".split()
)
_CONDITION_PHRASES = ("as long as", "so long as", "on condition", "depending on", "as soon as")
_QUESTION_WORDS = frozenset("what why how which who whom whose when where huh".split())
# Words that turn a following yes into a no: "that's not right", "it isn't correct", "don't do it".
_NEGATORS = frozenset("not don't dont isn't never wasn't".split())
_AUXILIARIES = frozenset(
    "is are was were do does did can could will would should shall may might am isn't aren't doesn't don't "
    "didn't can't won't wouldn't shouldn't have has".split()
)
_SUBJECTS = frozenset(
    "i you we they he she it that this there my your the a an me anyone someone somebody everything".split()
)
_QUESTION_PHRASES = ("you sure", "are you sure", "really", "seriously", "is that right", "is it", "isn't it",
                     "right or", "or not", "meaning", "you mean", "say what", "come again", "for real",
                     "which one", "what for", "how come", "how about", "what about", "tell me", "explain")
_SARCASM_PHRASES = (
    "whatever", "yeah right", "yea right", "as if", "oh great", "oh sure", "oh wonderful", "oh perfect",
    "oh brilliant", "oh joy", "oh fantastic", "oh lovely", "oh fine", "great another", "another robot",
    "robot", "robots", "machine", "bot", "computer", "useless", "ridiculous", "stupid", "pathetic", "joke",
    "thanks for nothing", "big surprise", "like i have a choice", "do i have a choice", "knock yourself out",
    "go nuts", "why bother", "unbelievable", "typical", "what a surprise", "if i must", "i give up",
    "fine whatever", "sure sure", "yeah yeah", "yes yes yes yes", "like that'll", "like that will",
    "like it matters", "who cares", "i don't care", "don't care", "do what you want", "do whatever",
    "suit yourself", "i couldn't care less", "wow", "not",
)
_NEUTRAL = frozenset(
    "um umm uh uhh uhm er erm err ah eh hmm hm mm mmm oh well so okay ok then now just actually and also "
    "please thanks thank you cheers ta mate love dear sir madam kindly much very lot a lots many "
    "i it that that's this me my the them those for to do go ahead on can is it's we're i'm yes yeah "
    "with by all good ready really quite totally completely fully happy thing right away straight "
    "immediately now today now's time you're yep sure great perfect fine it'll be would could should "
    "let's lets let us let's please do so am are want need like i'd i'll we we'd we'll our mine yours "
    "indeed definitely absolutely certainly course of exactly correct true that'd done make what".split()
)
# A recogniser on a phone line writes "no" / "nah" as "now" ("uh, no" -> "at now."): an answer of nothing but
# "now" (and these) is a no. Never a yes, so a misreading here can only cost a re-ask, never a consent.
_NOW_AS_NO = frozenset("now at uh um er and oh".split())
_SWAP = {"my": "your", "me": "you", "i": "you", "mine": "yours", "i'm": "you're", "your": "my"}
_ELLIPSIS_NOT = re.compile(r"(\.\.\.|…|,|-)\s*not\W*$", re.IGNORECASE)


@dataclass(frozen=True)
class YesNoReading:
    """How an answer to a yes/no question reads: the verdict, why, and the words that decided."""

    verdict: Verdict
    reason: Reason
    cue: str = ""
    heard_yes: bool = False  # a yes word was said (whatever else was): "yes, I have another question"

    @property
    def yes(self) -> bool:
        return self.verdict == "yes"

    @property
    def no(self) -> bool:
        return self.verdict == "no"

    @property
    def unclear(self) -> bool:
        return self.verdict == "unclear"


def _norm(phrases: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple(tokens(p)) for p in phrases]


_Kind = Literal["yes", "no", "hedge", "wait", "sarcasm", "condition", "question"]
_PHRASES: list[tuple[tuple[str, ...], _Kind]] = sorted(
    [(p, "yes") for p in _norm(_YES_PHRASES)] + [(p, "no") for p in _norm(_NO_PHRASES)]
    + [(p, "hedge") for p in _norm(_HEDGE_PHRASES)] + [(p, "wait") for p in _norm(_WAIT_PHRASES)]
    + [(p, "sarcasm") for p in _norm(_SARCASM_PHRASES)]
    + [(p, "condition") for p in _norm(_CONDITION_PHRASES)]
    + [(p, "question") for p in _norm(_QUESTION_PHRASES)],
    key=lambda item: -len(item[0]),
)
# Kinds that win over a yes or a no wherever they appear, in this order.
_BLOCKING: tuple[tuple[_Kind, Reason], ...] = (
    ("question", "question"), ("condition", "condition"), ("sarcasm", "sarcasm"), ("hedge", "hedge"),
    ("wait", "wait"),
)


def yes_no_phrases() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The yes and the no phrases (for grammars)."""
    return _YES_PHRASES, _NO_PHRASES


def _spans(words: list[str]) -> list[tuple[int, int, _Kind | None]]:
    """``words`` cut into known phrases (longest first) and single unknown words (kind None)."""
    out: list[tuple[int, int, _Kind | None]] = []
    i = 0
    while i < len(words):
        for phrase, kind in _PHRASES:
            n = len(phrase)
            if tuple(words[i : i + n]) == phrase:
                out.append((i, i + n, kind))
                i += n
                break
        else:
            out.append((i, i + 1, None))
            i += 1
    return out


def _is_question(text: str, words: list[str]) -> bool:
    if "?" in text:
        return True
    content = [w for w in words if w not in ("um", "uh", "er", "erm", "oh", "well", "so", "and", "but", "ok",
                                             "okay", "hmm", "sorry", "wait")]
    if content and content[0] in _AUXILIARIES and len(content) > 1 and content[1] in _SUBJECTS and not (
            content[0] == "do" and content[1] in ("it", "that", "this", "the", "a", "an")):
        return True
    for i, w in enumerate(words):
        if w in _QUESTION_WORDS:
            before = words[i - 1] if i else ""
            if w == "huh" and before in ("uh", "un", "mm", "mhm"):
                continue  # "uh huh" is a yes
            if w == "what" and before in ("that's", "is", "exactly", "just") and i + 1 < len(words) \
                    and words[i + 1] in ("i", "we"):
                continue  # "that's what I want"
            if w == "when" and i > 0:
                continue  # a condition, counted as one below
            return True
    return False


def read_yes_no(text: str, question: str = "") -> YesNoReading:
    """The verdict on ``text`` as an answer to the yes/no ``question`` (its words may be repeated)."""
    words = tokens(text)
    if len(words) > 1 and words[0] == "but":  # "uh, yes" written "But, yes.": a leading "but" sets no condition
        words = words[1:]
    if not words:
        return YesNoReading("unclear", "nothing")
    if "now" in words and all(w in _NOW_AS_NO for w in words):
        return YesNoReading("no", "negative", "now")
    spans = _spans(words)
    for n in range(1, len(spans)):  # a negated yes is a no: "that's not right", "not correct"
        _, e0, k0 = spans[n - 1]
        if k0 == "no" and spans[n][2] == "yes" and words[e0 - 1] in _NEGATORS:
            spans[n] = (spans[n][0], spans[n][1], "no")
    kinds = [k for _, _, k in spans]
    said = " ".join(words)

    def cue(kind: _Kind) -> str:
        for s, e, k in spans:
            if k == kind:
                return " ".join(words[s:e])
        return ""

    if "question" in kinds or _is_question(text.replace("?", " "), words):
        return YesNoReading("unclear", "question", cue("question") or said)
    if "?" in text and not ("no" in kinds and "yes" not in kinds):  # "No? No." (a recogniser's "?"): still a no
        return YesNoReading("unclear", "question", said)
    if "when" in words[1:]:
        return YesNoReading("unclear", "condition", "when")
    has_yes, has_no = "yes" in kinds, "no" in kinds
    if len(words) > 1 and words[-1] == "not" and _ELLIPSIS_NOT.search(text):
        return YesNoReading("unclear", "sarcasm", "... not")
    for kind, reason in _BLOCKING:
        if kind == "sarcasm" and "sarcasm" in kinds:
            hit = cue("sarcasm")
            if hit == "not":  # a lone "not" is a negation, not a joke: "not that one", "I'd say not"
                if has_yes and not has_no:
                    return YesNoReading("unclear", "mixed", said)
                continue
            return YesNoReading("unclear", "sarcasm", hit)
        if kind == "condition":
            hit = next((w for w in words if w in _CONDITION_WORDS), "") or cue("condition")
            if hit:
                return YesNoReading("unclear", "condition", hit)
            continue
        if kind in ("wait", "hedge") and has_no and kind in kinds and kinds.index("no") < kinds.index(kind):
            continue  # "no, wait": a stop; "no, maybe later": a no for now
        if kind in kinds:
            return YesNoReading("unclear", reason, cue(kind))
    if has_no:
        last_no = max(i for i, k in enumerate(kinds) if k == "no")
        if has_yes and any(k == "yes" for k in kinds[last_no + 1 :]):
            return YesNoReading("unclear", "mixed", said)  # "no... yes": which one?
        return YesNoReading("no", "negative", cue("no"))
    if not has_yes:
        return YesNoReading("unclear", "nothing" if all(w in _NEUTRAL for w in words) else "other", said)
    allowed = _NEUTRAL | set(tokens(question))
    allowed |= {_SWAP[w] for w in tokens(question) if w in _SWAP} | {w for w, v in _SWAP.items() if v in allowed}
    for s, _, k in spans:
        if k is None and words[s] not in allowed and _stem(words[s]) not in allowed:
            return YesNoReading("unclear", "other", words[s], heard_yes=True)
    return YesNoReading("yes", "affirmative", cue("yes"))


def unaccounted_words(text: str) -> list[str]:
    """The words of ``text`` that are no yes/no/hedge/... phrase and no filler or politeness: what makes an
    answer with a yes in it "other" when no question's words are allowed ("she would go ahead" -> ["she"])."""
    words = tokens(text)
    return [words[s] for s, _, k in _spans(words) if k is None and words[s] not in _NEUTRAL]


def first_answer(text: str) -> Literal["yes", "no"] | None:
    """The first yes or no phrase said in ``text`` ("No, it is." -> "no"), before any negated yes is read."""
    for _, _, kind in _spans(tokens(text)):
        if kind in ("yes", "no"):
            return "yes" if kind == "yes" else "no"
    return None


def _stem(word: str) -> str:
    """"unlocked" -> "unlock", "moving" -> "mov": enough to see the question's verb said back."""
    for suffix in ("ed", "ing", "d", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


def parse_yes_no(text: str) -> bool | None:
    """True for a clear yes, False for a no, None when the caller said neither or was unclear."""
    reading = read_yes_no(text)
    return True if reading.yes else False if reading.no else None
