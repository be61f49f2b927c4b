"""JSGF grammars for what the engine expects next (``Listen.expect``), for grammar-biased
recognisers such as pocketsphinx.

A closed grammar suits short constrained turns (digits, yes/no, dates, times, choices, spelled
letters); for the open "how can I help?" turn the grammar lists the expected phrases (the intent
map's examples) and a recogniser should prefer a domain language model built from the same
phrases. Every grammar also accepts the commands a caller may give at any time ("agent",
"repeat that").

``expectation_to_jsgf`` returns None where no grammar fits (free text). ``vocabulary`` (the
recogniser's pronunciation dictionary) drops phrases with words the recogniser cannot say: a word
missing from the dictionary is never recognised, silently. ``check_jsgf`` is a structural check.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence

from ari_agent.conversation.commands import COMMAND_PHRASES
from ari_agent.conversation.slots.dates import MONTH_NAMES, WEEKDAY_NAMES
from ari_agent.conversation.slots.letters import NATO
from ari_agent.conversation.slots.numbers import ORDINAL_TEENS, ORDINAL_UNITS, TEENS, TENS, UNITS
from ari_agent.conversation.slots.words import tokens
from ari_agent.conversation.slots.yes_no import yes_no_phrases
from ari_agent.seam import Expectation

_SPECIAL = re.compile(r"[;=|*+<>()\[\]{}/\"\\]")
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_UNIT_WORDS = tuple(w for w in UNITS if w != "zero")
_TEEN_WORDS = tuple(TEENS)
_TENS_WORDS = tuple(w for w in TENS if w != "fourty")

_COMMON_RULES: dict[str, str] = {
    "digit": " | ".join(("zero", "oh", *_UNIT_WORDS)),
    "unit": " | ".join(_UNIT_WORDS),
    "teen": " | ".join(_TEEN_WORDS),
    "tens": " | ".join(_TENS_WORDS),
    "small": "<unit> | <teen> | <tens> [<unit>]",
}


def _phrase(text: str, vocabulary: Container[str] | None) -> str | None:
    """One phrase as JSGF tokens (numerals spelled out); None if a word is out of vocabulary."""
    out: list[str] = []
    for tok in tokens(text):
        if tok.isdigit():
            out.extend(_DIGIT_NAMES[int(c)] for c in tok)
            continue
        tok = _SPECIAL.sub("", tok)
        if not tok:
            continue
        out.append(tok)
    if not out:
        return None
    if vocabulary is not None and any(w not in vocabulary for w in out):
        return None
    return " ".join(out)


def _alternatives(phrases: Iterable[str], vocabulary: Container[str] | None) -> str | None:
    seen: dict[str, None] = {}
    for p in phrases:
        got = _phrase(p, vocabulary)
        if got is not None:
            seen.setdefault(got, None)
    return " | ".join(seen) if seen else None


def _digits_rule(min_digits: int, max_digits: int) -> str:
    required = " ".join(["<digit_item>"] * min_digits)
    optional = " ".join(["[<digit_item>]"] * max(0, max_digits - min_digits))
    return f"{required} {optional}".strip()


def _ordinals() -> list[str]:
    words = list(ORDINAL_UNITS) + list(ORDINAL_TEENS) + ["twentieth", "thirtieth"]
    words += [f"twenty {u}" for u in ORDINAL_UNITS] + ["thirty first"]
    return words


def expectation_to_jsgf(
    expect: Expectation, *, name: str = "turn", vocabulary: Container[str] | None = None
) -> str | None:
    """A JSGF grammar (text) accepting the answers ``expect`` describes, or None (free text)."""
    rules: dict[str, str] = {}
    command = _alternatives(COMMAND_PHRASES, vocabulary)
    answer: str | None
    kind = expect.kind
    if kind in ("digits", "number"):
        rules["digit"] = _COMMON_RULES["digit"]
        if kind == "digits":
            rules["digit_item"] = "[double | triple] <digit>"
            lo = expect.min_digits or 1
            hi = max(expect.max_digits or max(lo, 12), lo)
            rules["digits"] = _digits_rule(lo, hi)
            rules["lead"] = "it is | it's | my number is | the number is | that's"
            answer = "[<lead>] <digits>"
        else:
            for key in ("unit", "teen", "tens", "small"):
                rules[key] = _COMMON_RULES[key]
            rules["number"] = "zero | <small> | (a | <unit>) hundred [[and] <small>] | <small> thousand [[and] <small>]"
            answer = "<number> | <digit>+"
    elif kind == "yes_no":
        yes, no = yes_no_phrases()
        rules["yes"] = _alternatives(yes, vocabulary) or "yes"
        rules["no"] = _alternatives(no, vocabulary) or "no"
        answer = "<yes> | <no>"
    elif kind == "date":
        rules["weekday"] = " | ".join(w.lower() for w in WEEKDAY_NAMES)
        rules["month"] = " | ".join(m.lower() for m in MONTH_NAMES)
        rules["ordinal"] = " | ".join(_ordinals())
        rules["relative"] = "today | tomorrow | the day after tomorrow | in (a week | two weeks)"
        answer = ("[on] (<relative> | [this | next] <weekday> | [the] <ordinal> [of <month>] "
                  "| <month> [the] <ordinal> | <weekday> [the] <ordinal> [of <month>])")
    elif kind == "time":
        rules["hour"] = " | ".join((*_UNIT_WORDS, "ten", "eleven", "twelve"))
        rules["minute"] = "fifteen | thirty | forty five | o'clock | oh <unit> | <tens> [<unit>] | <teen>"
        for key in ("unit", "teen", "tens"):
            rules[key] = _COMMON_RULES[key]
        rules["meridiem"] = "a.m. | p.m. | in the morning | in the afternoon | in the evening"
        answer = ("[at] (<hour> [<minute>] [<meridiem>] | half past <hour> [<meridiem>] "
                  "| quarter (past | to) <hour> [<meridiem>] | noon | midday | midnight)")
    elif kind == "choice":
        answer = _alternatives(expect.choices, vocabulary)
        if answer is None:
            return None
        rules["choice"] = answer
        answer = "[the] <choice> [please]"
    elif kind == "letters":
        letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        nato = [w if w != "xray" else "x-ray" for w in NATO if w not in ("alfa", "juliett", "whisky", "fox")]
        rules["letter"] = _alternatives(letters, vocabulary) or "a"
        rules["nato"] = " | ".join(w for w in nato if vocabulary is None or w in vocabulary)
        answer = "(<letter> [as in <nato>] | <nato>)+"
    elif kind == "open":
        answer = _alternatives(expect.phrases, vocabulary)
        if answer is None:
            return None
        rules["request"] = answer
        answer = "<request>"
    else:  # free text: no closed grammar fits
        return None
    body = "<answer> | <command>" if command else "<answer>"
    lines = ["#JSGF V1.0;", f"grammar {name};", f"public <{name}> = {body};", f"<answer> = {answer};"]
    if command:
        lines.append(f"<command> = {command};")
    for rule, expansion in rules.items():
        lines.append(f"<{rule}> = {expansion};")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ structural check

_RULE_DEF = re.compile(r"^(public\s+)?<([A-Za-z0-9_.]+)>\s*=\s*(.+);$", re.DOTALL)
_RULE_REF = re.compile(r"<([A-Za-z0-9_.]+)>")


class JsgfError(ValueError):
    pass


def check_jsgf(text: str) -> list[str]:
    """Check a grammar's structure: header, name, rules defined once, references resolved, brackets
    balanced, one public rule, no empty alternative. Returns the rule names; raises JsgfError."""
    statements = [s.strip() for s in _split_statements(text) if s.strip()]
    if not statements or statements[0] != "#JSGF V1.0":
        raise JsgfError("missing '#JSGF V1.0;' header")
    if len(statements) < 2 or not re.fullmatch(r"grammar [A-Za-z0-9_.]+", statements[1]):
        raise JsgfError("missing 'grammar <name>;' declaration")
    defined: dict[str, str] = {}
    public: list[str] = []
    for stmt in statements[2:]:
        m = _RULE_DEF.match(stmt + ";")
        if not m:
            raise JsgfError(f"not a rule definition: {stmt[:60]!r}")
        rule, expansion = m.group(2), m.group(3).strip()
        if rule in defined:
            raise JsgfError(f"rule <{rule}> defined twice")
        _check_expansion(rule, expansion)
        defined[rule] = expansion
        if m.group(1):
            public.append(rule)
    if not public:
        raise JsgfError("no public rule")
    for rule, expansion in defined.items():
        for ref in _RULE_REF.findall(expansion):
            if ref not in defined and ref not in ("NULL", "VOID"):
                raise JsgfError(f"rule <{rule}> references undefined <{ref}>")
    return list(defined)


def _split_statements(text: str) -> Sequence[str]:
    return text.split(";")


def _check_expansion(rule: str, expansion: str) -> None:
    stack: list[str] = []
    pairs = {")": "(", "]": "["}
    for ch in expansion:
        if ch in "([":
            stack.append(ch)
        elif ch in ")]":
            if not stack or stack.pop() != pairs[ch]:
                raise JsgfError(f"rule <{rule}>: unbalanced '{ch}'")
    if stack:
        raise JsgfError(f"rule <{rule}>: unclosed '{stack[-1]}'")
    # an empty alternative: "a | | b", "| a", "a |", "( | a)"
    compact = re.sub(r"\s+", " ", expansion)
    if re.search(r"(^\s*\|)|(\|\s*$)|(\|\s*\|)|([(\[]\s*\|)|(\|\s*[)\]])", compact):
        raise JsgfError(f"rule <{rule}>: empty alternative")
    if not compact.strip("()[] "):
        raise JsgfError(f"rule <{rule}>: empty expansion")


def vocabulary_from_dictionary(lines: Iterable[str]) -> set[str]:
    """The words of a CMU-style pronunciation dictionary (``word PH ON ES`` per line; ``word(2)``
    variants folded). The caller reads the file (e.g. pocketsphinx's ``cmudict-en-us.dict``)."""
    words: set[str] = set()
    for line in lines:
        head = line.split(" ", 1)[0].strip()
        if head and not head.startswith(";;;"):
            words.add(head.split("(", 1)[0])
    return words
