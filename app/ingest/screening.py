"""Free-text screening: Swedish personal identity numbers and vehicle registration numbers are
masked before anything is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass

# YYMMDD or YYYYMMDD, an optional separator, four digits. Days 61-91 are samordningsnummer.
_PNR = re.compile(
    r"(?<!\d)(?:19|20)?(\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]|6[1-9]|[78]\d|9[01])"
    r"[-+ ]?(\d{4})(?!\d)"
)
# Swedish plates: three letters (not I, Q, V, Å, Ä, Ö), two digits, a digit or a letter.
# Capitals may have a space ("ABC 123"); lower case only counts written together ("abc123"),
# since "och 123" or "vid 12A" are ordinary Swedish.
_PLATE = re.compile(
    r"(?<![\w])"
    r"(?:[A-HJ-PR-UW-Z]{3} ?\d{2}[A-HJ-PR-UW-Z0-9]|[a-hj-pr-uw-z]{3}\d{2}[a-hj-pr-uw-z0-9])"
    r"(?![\w])"
)
PNR_MASK = "[personnummer]"
PLATE_MASK = "[registreringsnummer]"


def luhn_ok(digits: str) -> bool:
    """Tell whether a string of digits passes the Luhn check (as Swedish ID numbers do)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Screened:
    """A text after masking, with how many of each kind were masked."""

    text: str
    personal_numbers: int
    plates: int


def screen_text(text: str) -> Screened:
    """Mask valid personal identity numbers and vehicle registration numbers in text."""
    found = 0

    def pnr(match: re.Match[str]) -> str:
        nonlocal found
        ten = "".join(match.group(i) for i in (1, 2, 3, 4))
        if not luhn_ok(ten):
            return match.group(0)
        found += 1
        return PNR_MASK

    masked = _PNR.sub(pnr, text)
    masked, plates = _PLATE.subn(PLATE_MASK, masked)
    return Screened(text=masked, personal_numbers=found, plates=plates)
