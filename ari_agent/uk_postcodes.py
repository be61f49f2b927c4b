"""What a UK postcode can be: its shapes, the letters each position allows, and the postcode areas.

Shared by the two places that read spelled postcodes: the approximate reader of a transcript
(``conversation/slots/postcode_reading.py``) and whisper's constrained decode of a postcode turn
(``speech/token_constraint.py``), so both accept exactly the same codes. Pure data and string checks.

A postcode is an outward code (area + district) and an inward code (sector digit + two letters): the
shapes ``A9 9AA``, ``A99 9AA``, ``A9A 9AA``, ``AA9 9AA``, ``AA99 9AA``, ``AA9A 9AA`` (A a letter, 9 a
digit). Royal Mail's letter rules: the first letter is never Q, V or X; the second never I, J or Z; a
letter third (``A9A``) is one of A B C D E F G H J K P S T U W, fourth (``AA9A``) one of A B E H M N P R
V W X Y; the inward letters never I or O (Royal Mail avoids C, K, M and V there as well, but codes
with those are accepted: callers and records have them). The area (the outward code's letters) is one of the 124
geographic areas (Great Britain, Northern Ireland's BT, the Crown dependencies GY, JE, IM) or the two
non-geographic ones BF and BX; a letter after the district digit (``A9A``, ``AA9A``) occurs only in
central London's E, N, W, EC, NW, SE, SW and WC.
"""

from __future__ import annotations

from typing import Final

AREAS: Final = frozenset(
    "AB AL B BA BB BD BF BH BL BN BR BS BT BX CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E EC EH "
    "EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK "
    "ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD "
    "TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE".split())
LETTER_DISTRICT_AREAS: Final = frozenset("E N W EC NW SE SW WC".split())
FIRST: Final = frozenset("ABCDEFGHIJKLMNOPRSTUWYZ")
SECOND: Final = frozenset("ABCDEFGHKLMNOPQRSTUVWXY")
THIRD: Final = frozenset("ABCDEFGHJKPSTUW")
FOURTH: Final = frozenset("ABEHMNPRVWXY")
INWARD: Final = frozenset("ABCDEFGHJKLMNPQRSTUVWXYZ")
_AREA_PREFIXES: Final = frozenset(a[:k] for a in AREAS for k in range(1, len(a) + 1))


def compact(code: str) -> str:
    """A postcode as the checks here take it: upper case, no spaces ("sw1a 1aa" -> "SW1A1AA")."""
    return "".join(code.split()).upper()


def spaced(code: str) -> str:
    """A compact postcode as it is written, the inward code apart ("SW1A1AA" -> "SW1A 1AA")."""
    return f"{code[:-3]} {code[-3:]}"


def split_area(code: str) -> tuple[str, str]:
    """``code`` as (its leading letters, the rest): "SW1A1AA" -> ("SW", "1A1AA")."""
    i = 0
    while i < len(code) and code[i].isalpha():
        i += 1
    return code[:i], code[i:]


def could_start(code: str) -> bool:
    """``code`` (upper case, no spaces) is the beginning of some postcode, or a whole one."""
    return _fits(code, whole=False)


def is_postcode(code: str) -> bool:
    """``code`` (upper case, no spaces) is a whole postcode."""
    return _fits(code, whole=True)


def _fits(code: str, *, whole: bool) -> bool:
    area, rest = split_area(code)
    if not rest:
        return not whole and (area == "" or area in _AREA_PREFIXES)
    if area not in AREAS:
        return False
    letter = THIRD if len(area) == 1 else FOURTH
    districts = ("9", "99", "9A") if area in LETTER_DISTRICT_AREAS else ("9", "99")
    return any(_matches(rest, district + "9AA", len(district), letter, whole) for district in districts)


def _matches(rest: str, pattern: str, district_len: int, letter: frozenset[str], whole: bool) -> bool:
    if len(rest) > len(pattern) or (whole and len(rest) != len(pattern)):
        return False
    for k, c in enumerate(rest):
        if pattern[k] == "9":
            if not c.isdigit():
                return False
        elif c not in (letter if k < district_len else INWARD):
            return False
    return True
