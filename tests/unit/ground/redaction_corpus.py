"""A generated evaluation set for ``ari_agent.redaction``: caller utterances with the exact span of every
piece of personal data, in written and spoken (speech-recognised) forms, and utterances without any
that hold confusable things (order numbers, times, prices, quantities, dates that are not a birth date).

Seeded and deterministic: ``build()`` returns the same set every time. Templates are carrier phrases
with ``{}`` where the value goes; the value is rendered in one of several written or spoken forms and
the utterance is then styled as a recogniser writes it (lower case without punctuation, or whisper's
sentence case with a full stop), sometimes with a disfluency in front.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass

WORD = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
ORD = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
       "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
       "nineteenth", "twentieth")
FIRST = ("john", "sarah", "mohammed", "priya", "liam", "olivia", "chen", "fatima", "david", "emma", "kwame", "ana")
LAST = ("smith", "jones", "patel", "okafor", "nguyen", "garcia", "murphy", "kowalski", "brown", "taylor", "ali")
DOMAINS = (("gmail", "com"), ("hotmail", "co.uk"), ("outlook", "com"), ("yahoo", "co.uk"), ("btinternet", "com"),
           ("icloud", "com"), ("example", "org"), ("protonmail", "com"))
MAIDEN = ("smith", "o'brien", "henderson", "mcdonald", "fitzgerald", "wright", "van der berg", "achebe", "morales")
OPENERS = ("", "", "", "um ", "uh ", "okay so ", "yeah ", "right, ", "hi, ", "so ", "er ")
CLOSERS = ("", "", "", " thanks", " please", " thank you", " okay", " if that helps")


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, category) of each piece of personal data


def spoken_digits(digits: str, rng: random.Random, groups: tuple[int, ...] = ()) -> str:
    """Digit by digit as a caller says them: "oh" or "zero", sometimes "double"/"triple", commas at groups."""
    out: list[str] = []
    i = 0
    bounds = set()
    acc = 0
    for g in groups:
        acc += g
        bounds.add(acc)
    while i < len(digits):
        d = digits[i]
        run = 1
        while i + run < len(digits) and digits[i + run] == d and run < 3 and (i + run) not in bounds:
            run += 1
        word = ("oh" if rng.random() < 0.7 else "zero") if d == "0" else WORD[int(d)]
        if run >= 2 and rng.random() < 0.6:
            out.append(("double " if run == 2 else "triple ") + word)
            i += run
        else:
            out.append(word)
            i += 1
        if i in bounds and i < len(digits) and rng.random() < 0.5:
            out[-1] += ","
    return " ".join(out)


def grouped(digits: str, groups: tuple[int, ...], sep: str = " ") -> str:
    parts, i = [], 0
    for g in groups:
        parts.append(digits[i:i + g])
        i += g
    return sep.join(parts)


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for k, c in enumerate(reversed(body + "0")):
        d = int(c)
        if k % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def two_digit_words(n: int) -> str:
    if n < 10:
        return WORD[n]
    if n < 20:
        return TEENS[n - 10]
    return TENS[n // 10] + ("" if n % 10 == 0 else " " + WORD[n % 10])


def spoken_year(y: int, rng: random.Random) -> str:
    if y >= 2000:
        rest = y - 2000
        if rest == 0:
            return "two thousand"
        if rng.random() < 0.5 and rest >= 10:
            return "twenty " + two_digit_words(rest)
        return "two thousand " + ("and " if rng.random() < 0.5 else "") + two_digit_words(rest)
    hi, lo = divmod(y, 100)
    return two_digit_words(hi) + " " + ("oh " + WORD[lo] if lo < 10 else two_digit_words(lo))


def spoken_ordinal(d: int) -> str:
    if d <= 20:
        return ORD[d]
    if d == 30:
        return "thirtieth"
    return TENS[d // 10] + " " + ORD[d % 10]


# --- value renderers: each returns the value as the caller's transcript holds it ---------------------

def card(rng: random.Random) -> str:
    kind = rng.random()
    groups: tuple[int, ...]
    if kind < 0.15:
        digits, groups = luhn_complete(rng.choice(("34", "37")), 15, rng), (4, 6, 5)
    else:
        digits, groups = luhn_complete(rng.choice(("4", "51", "55", "2221", "6011")), 16, rng), (4, 4, 4, 4)
    form = rng.random()
    if form < 0.25:
        return grouped(digits, groups)
    if form < 0.35:
        return grouped(digits, groups, "-")
    if form < 0.45:
        return digits
    if form < 0.55 and len(digits) == 16:  # some groups said as two two-digit numbers: "forty one eleven"
        pairs = [digits[i:i + 2] for i in range(0, 16, 2)]
        return " ".join(two_digit_words(int(p)) if p[0] != "0" and p[1] != "0" else spoken_digits(p, rng)
                        for p in pairs)
    return spoken_digits(digits, rng, groups)


def cvv(rng: random.Random) -> str:
    digits = "".join(rng.choice(string.digits) for _ in range(rng.choice((3, 3, 3, 4))))
    return rng.choice((digits, " ".join(digits), spoken_digits(digits, rng)))


def ssn(rng: random.Random) -> str:
    digits = f"{rng.randint(1, 665):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    form = rng.random()
    if form < 0.4:
        return grouped(digits, (3, 2, 4), "-")
    if form < 0.55:
        return grouped(digits, (3, 2, 4))
    return spoken_digits(digits, rng, (3, 2, 4))


def nino(rng: random.Random) -> str:
    letters = rng.choice(("QQ", "AB", "JT", "NP", "ZX", "WK", "CE", "HL"))
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    suffix = rng.choice("ABCD")
    form = rng.random()
    if form < 0.3:
        return f"{letters} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    if form < 0.45:
        return f"{letters}{digits}{suffix}"
    return " ".join(c.lower() for c in letters) + " " + spoken_digits(digits, rng) + " " + suffix.lower()


def dob(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2006), rng.randint(1, 12), rng.randint(1, 28 if rng.random() < 0.8 else 30)
    if d > 28 and m == 2:
        d = 28
    form = rng.randrange(9)
    month = MONTHS[m - 1]
    suffix = "th" if 11 <= d <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    if form == 0:
        return f"{d:02d}/{m:02d}/{y}"
    if form == 1:
        return f"{y}-{m:02d}-{d:02d}"
    if form == 2:
        return f"{month} {spoken_ordinal(d)} {spoken_year(y, rng)}"
    if form == 3:
        return f"{spoken_ordinal(d)} of {month} {spoken_year(y, rng)}"
    if form == 4:
        return f"{d}{suffix} of {month.capitalize()} {y}"
    if form == 5:
        return f"{month.capitalize()} {d}{suffix}, {y}"
    if form == 6:
        return f"{month} {d} {y}"
    if form == 7:
        return f"{d}.{m:02d}.{y}"
    return f"{m}/{d}/{y}"


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    host, tld = rng.choice(DOMAINS)
    num = str(rng.randint(1, 99)) if rng.random() < 0.3 else ""
    form = rng.random()
    if form < 0.35:
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}{num}", f"{first}_{last}", f"{last}{num}"))
        return f"{local}@{host}.{tld}"
    tld_spoken = " dot ".join(tld.split("."))
    local = rng.choice((f"{first} dot {last}", f"{first[0]} {last}", f"{first} underscore {last}",
                        f"{last}{(' ' + two_digit_words(int(num))) if num else ''}", f"{first}{last}"))
    return f"{local} at {host} dot {tld_spoken}"


def phone(rng: random.Random) -> str:
    if rng.random() < 0.55:  # UK mobile / landline
        digits = "07" + "".join(rng.choice(string.digits) for _ in range(9)) if rng.random() < 0.7 else \
            "020" + "".join(rng.choice(string.digits) for _ in range(8))
        form = rng.random()
        if form < 0.2:
            return grouped(digits, (5, 6))
        if form < 0.3:
            return digits
        if form < 0.45:
            return "+44 " + grouped(digits[1:], (4, 6))
        if form < 0.55:
            return "plus four four " + spoken_digits(digits[1:], rng)
        return spoken_digits(digits, rng, (5, 3, 3))
    digits = str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(9))
    form = rng.random()
    if form < 0.25:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if form < 0.4:
        return grouped(digits, (3, 3, 4), "-")
    if form < 0.5:
        return "+1 " + grouped(digits, (3, 3, 4))
    return spoken_digits(digits, rng, (3, 3, 4))


def iban(rng: random.Random) -> str:
    bank = rng.choice(("NWBK", "BARC", "HBUK", "LOYD", "MIDL"))
    sort_acct = "".join(rng.choice(string.digits) for _ in range(14))
    bban = bank + sort_acct
    moved = bban + "GB00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    raw = f"GB{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def account(rng: random.Random) -> str:
    form = rng.random()
    digits = "".join(rng.choice(string.digits) for _ in range(rng.choice((8, 8, 10, 6))))
    if form < 0.3:
        return digits
    if form < 0.6:
        return spoken_digits(digits, rng)
    if form < 0.8:
        return rng.choice(("AB", "CUS", "MX", "ZK")) + rng.choice(("", "-")) + digits
    return iban(rng)


def pin(rng: random.Random) -> str:
    digits = "".join(rng.choice(string.digits) for _ in range(rng.choice((4, 4, 4, 6))))
    return rng.choice((digits, " ".join(digits), spoken_digits(digits, rng)))


def postcode(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return str(rng.randint(10000, 99999))
    area = rng.choice(("SW", "M", "B", "EH", "LS", "N", "CF", "BT", "G", "NE"))
    number = rng.randint(1, 19)
    district = str(number) + (rng.choice("AW") if number < 10 and rng.random() < 0.3 else "")
    inward = str(rng.randint(0, 9)) + rng.choice("ABDEFGHJLNPQRSTUWXYZ") + rng.choice("ABDEFGHJLNPQRSTUWXYZ")
    form = rng.random()
    if form < 0.45:
        return f"{area}{district} {inward}"
    if form < 0.6:
        return f"{area}{district} {inward}".lower()

    def say(chars: str) -> str:
        return " ".join(WORD[int(c)] if c.isdigit() else c.lower() for c in chars)
    return say(area + district) + " " + say(inward)


def secret(rng: random.Random) -> str:
    return rng.choice(MAIDEN) if rng.random() < 0.6 else rng.choice(("hunter2", "bluebird", "rover", "sunshine77",
                                                                       "biscuit", "manchester1"))


# (category, renderer, templates); the secret templates go with their kind of answer
CATEGORIES: list[tuple[str, Callable[[random.Random], str], tuple[str, ...]]] = [
    ("CARD", card, ("my card number is {}", "it's {}", "the long number on the card is {}", "card {}",
                    "yeah it's a visa, {}", "can i pay with {}", "the number is {}", "sure, {}",
                    "my debit card is {} and it's in my name", "{} is the card")),
    ("CVV", cvv, ("the code on the back is {}", "cvv {}", "security code is {}", "the three digit code is {}",
                  "cvc {}", "and the cvv is {}", "on the back it says {}",
                  "{} is the security code")),
    ("SSN", ssn, ("my social security number is {}", "ssn {}", "social is {}", "it's {}, my social security",
                  "my social security number, {}")),
    ("NINO", nino, ("my national insurance number is {}", "ni number {}", "national insurance, {}",
                    "my n i number is {}", "{} that's my national insurance number")),
    ("DOB", dob, ("i was born on {}", "my date of birth is {}", "date of birth {}", "dob {}",
                  "d.o.b. is {}", "born {}", "my birthday is {}", "date of birth, um, {}")),
    ("EMAIL", email, ("my email is {}", "it's {}", "you can email me at {}", "email address {}",
                      "send it to {}", "the email on the account is {}")),
    ("PHONE", phone, ("my phone number is {}", "call me back on {}", "you can reach me at {}", "my mobile's {}",
                      "my number is {}", "it's {}", "ring me on {}", "best number is {}",
                      "{}, that's my mobile")),
    ("ACCOUNT", account, ("my account number is {}", "account {}", "customer number {}",
                          "my membership number is {}", "the account is {}", "reference {}",
                          "{} is my account number")),
    ("PIN", pin, ("my pin is {}", "passcode {}", "the pin number is {}", "pin, um, {}", "my passcode's {}",
                  "{} is my pin",
                  "{}, that's my pin")),
    ("POSTCODE", postcode, ("my postcode is {}", "post code {}", "zip code is {}", "the postcode is {}",
                            "postcode, {}")),
    ("SECRET", secret, ("my mother's maiden name is {}", "maiden name {}", "the password is {}",
                        "memorable word is {}", "my security answer is {}")),
]

CLEAN_TEMPLATES: tuple[str, ...] = (
    "i'm calling about order {n4}", "order number {n5}, it hasn't arrived", "my order {n4} came damaged",
    "can i book for {time}", "the delivery was at {time}", "i'll be in between {h} and {h2}",
    "it cost {price}", "i was charged {price} twice", "that's {price} for {q} items",
    "i need {q} boxes", "can i get {qw} of those", "i ordered {q} and got {q2}",
    "next {wd} the {day} of {month}", "can we do {wd} at {time}", "on the {day} of {month} please",
    "are you open on {month} {day}", "what are your opening hours", "you're open {h} till {h2} right",
    "open {hw} to {hw2} monday to friday", "room {n3}", "extension {n4}", "i've called {q} times",
    "it's been {q} days", "the parcel weighs {q} kilos", "i'm in flat {n2}", "ticket {n6}",
    "tracking number {n5}", "is it {pct} off", "it says error {n3}", "my card was declined", "i want to cancel",
    "i'd like to speak to someone", "can you check the balance", "uh one moment", "yes that's right",
    "no, the other one", "i'm at home at the moment", "we're at the office dot dot dot", "i was born in london",
    "my birthday party is at {time}", "give me two minutes", "the first one please", "about {q} weeks ago",
    "the {day} of {month} works", "between {time} and {time2}", "my order was {price}",
    "it's the {ordinal} time this happened", "{q} out of 10", "page {n2}", "step {q}", "press {q}",
    "invoice {n5}", "case number {n6}", "i bought it in {year}", "since {year}", "model {n3}",
    "it's {temp} degrees in here", "around {hw} o'clock", "half past {hw}", "quarter to {hw}",
    "i've been a member since {year}", "i've been a customer for {q} years", "tracking number {n12}",
    "my order number is {n8}", "the meeting is on {year}-03-{q2:0>2}", "press {q} for sales",
    "my flight is ba {n4}", "i paid {n1},{n3}.99 for it", "version {q}.{q2}.{h2}", "the code on the box is {q}",
    "can i have {qw} tickets for {month} the {day}", "my son was born last year", "he's twenty one now",
    "i changed my pin {q} times", "my account was closed in {year}", "call you back at {time}",
    "the card ending in {n4}", "order {n4} and order {n5}", "it's {n3} {n3b} on the invoice",
)


def _fill(template: str, rng: random.Random) -> str:
    h = rng.randint(7, 11)
    vals = {
        "n2": str(rng.randint(2, 99)), "n3": str(rng.randint(100, 999)), "n4": str(rng.randint(1000, 9999)),
        "n5": str(rng.randint(10000, 99999)), "n6": str(rng.randint(100000, 999999)),
        "n1": str(rng.randint(1, 9)), "n3b": str(rng.randint(100, 999)), "n8": str(rng.randint(10**7, 10**8 - 1)),
        "n12": str(rng.randint(10**11, 10**12 - 1)),
        "time": rng.choice((f"{rng.randint(1, 12)}:{rng.choice(('00', '15', '30', '45'))}",
                            f"{rng.randint(1, 12)} {rng.choice(('am', 'pm'))}", "noon", "half three")),
        "time2": f"{rng.randint(1, 12)}:{rng.choice(('00', '30'))}",
        "h": str(h), "h2": str(rng.randint(1, 6)), "hw": WORD[rng.randint(1, 9)], "hw2": WORD[rng.randint(1, 9)],
        "price": rng.choice((f"${rng.randint(1, 300)}.{rng.randint(0, 99):02d}", f"£{rng.randint(1, 99)}.99",
                             f"{two_digit_words(rng.randint(2, 99))} pounds {two_digit_words(rng.randint(1, 99))}",
                             f"{rng.randint(1, 9)},{rng.randint(100, 999)} dollars")),
        "q": str(rng.randint(1, 20)), "q2": str(rng.randint(1, 20)), "qw": two_digit_words(rng.randint(2, 40)),
        "wd": rng.choice(("monday", "tuesday", "wednesday", "thursday", "friday")),
        "day": rng.choice((f"{rng.randint(1, 28)}th", ORD[rng.randint(1, 20)])), "month": rng.choice(MONTHS),
        "pct": f"{rng.randint(5, 50)}%", "ordinal": ORD[rng.randint(2, 9)], "year": str(rng.randint(1995, 2026)),
        "temp": str(rng.randint(15, 35)),
    }
    return template.format(**vals)


def _style(text: str, rng: random.Random) -> tuple[str, int]:
    """Whisper-ish (capital first letter, a full stop) or lower-case ASR; returns (text, prefix length)."""
    opener = rng.choice(OPENERS)
    closer = rng.choice(CLOSERS)
    body = opener + text + closer
    if rng.random() < 0.4:
        body = body[0].upper() + body[1:] + rng.choice((".", ".", "?", ""))
    return body, len(opener)


def build(seed: int = 11, per_category: int = 60, clean: int = 260) -> tuple[list[Sample], list[Sample]]:
    """(utterances with personal data, utterances without), the same for the same arguments."""
    rng = random.Random(seed)
    pii: list[Sample] = []
    for cat, render, templates in CATEGORIES:
        for k in range(per_category):
            template = templates[k % len(templates)]
            if cat == "SECRET":
                value = render(rng)
                if "password" in template or "memorable" in template:
                    value = rng.choice(("hunter2", "bluebird", "rover", "sunshine77", "biscuit", "manchester1"))
            else:
                value = render(rng)
            before, _, after = template.partition("{}")
            core = before + value + after
            text, shift = _style(core, rng)
            start = shift + len(before)
            spans = [(start, start + len(value), cat)]
            if k % 7 == 3:  # a second piece of data in the same breath
                cat2, render2, _ = CATEGORIES[(CATEGORIES.index((cat, render, templates)) + 3) % len(CATEGORIES)]
                value2 = render2(rng)
                joiner = {"PHONE": " and my number is ", "EMAIL": " and my email is ", "DOB": " and i was born on ",
                          "PIN": " and my pin is ", "CVV": " and the cvv is ", "CARD": " and the card is ",
                          "SSN": " and my ssn is ", "NINO": " and my ni number is ", "ACCOUNT": " and my account is ",
                          "POSTCODE": " and the postcode is ", "SECRET": " and my maiden name is "}[cat2]
                if cat2 == "SECRET":
                    value2 = rng.choice(MAIDEN)
                text = text.rstrip(".?") + joiner
                s2 = len(text)
                text += value2
                spans.append((s2, s2 + len(value2), cat2))
            pii.append(Sample(text, tuple(spans)))
    clean_set = []
    for k in range(clean):
        text, _ = _style(_fill(CLEAN_TEMPLATES[k % len(CLEAN_TEMPLATES)], rng), rng)
        clean_set.append(Sample(text, ()))
    return pii, clean_set
