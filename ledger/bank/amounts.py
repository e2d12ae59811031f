"""Decimal text <-> integer fen, exactly. Never through float.

Bank files write amounts as decimal text ("1234.56" in ISO 20022, "1234,56" in MT940). Only
currencies with two minor digits are accepted: for them one fen is one hundredth, and text with
more than two decimals is refused rather than rounded.
"""

from __future__ import annotations

import re
from typing import Final

from ledger import limits

# ISO 4217 currencies whose minor unit is not two digits. A "fen" amount for them would be off
# by a power of ten, so they are refused outright rather than converted wrongly.
_MINOR_DIGITS_NOT_TWO: Final = frozenset({
    "BHD", "BIF", "CLF", "CLP", "DJF", "GNF", "IQD", "ISK", "JOD", "JPY", "KMF", "KRW", "KWD",
    "LYD", "OMR", "PYG", "RWF", "TND", "UGX", "UYI", "UYW", "VND", "VUV", "XAF", "XOF", "XPF",
})
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
# At most 18 digits in all (ISO 20022 totalDigits), at most 2 after the mark.
_AMOUNT_RE: Final = {
    ".": re.compile(r"(?P<sign>-?)(?P<int>[0-9]{1,16})(?:\.(?P<frac>[0-9]{1,2}))?"),
    ",": re.compile(r"(?P<sign>-?)(?P<int>[0-9]{1,14}),(?P<frac>[0-9]{0,2})"),
}
_FEN_PER_UNIT: Final = 100
_MINOR_DIGITS: Final = 2


class AmountFormatError(ValueError):
    """Text that is not an exact amount; the caller names the field and picks the error type."""


def check_currency_code(code: str) -> str:
    if not _CURRENCY_RE.fullmatch(code):
        raise AmountFormatError(f"currency {code!r} is not a three-letter ISO 4217 code")
    if code in _MINOR_DIGITS_NOT_TWO:
        raise AmountFormatError(f"currency {code} does not have two minor digits: not supported")
    return code


def fen_from_text(text: str, *, mark: str = ".", allow_negative: bool = False) -> int:
    """"1234.56" -> 123456. `mark` is "." (ISO 20022, CSV) or "," (MT940, where it is mandatory).

    The grammar is checked first, so only plain digits are ever converted: no exponents, no
    "NaN", no whitespace, and nothing that could round.
    """
    match = _AMOUNT_RE[mark].fullmatch(text)
    if match is None:
        shape = "digits with a decimal point" if mark == "." else "digits with a decimal comma"
        raise AmountFormatError(f"amount {text[:40]!r} is not {shape} and at most 2 decimals")
    sign, units, cents = match.group("sign", "int", "frac")
    if sign and not allow_negative:
        raise AmountFormatError(f"amount {text!r} must not be negative")
    # Whole units and at most two decimals, ASCII digits only (the grammar): exact in
    # integers, and a third cheaper than through Decimal (a big statement has 200,000).
    fen = int(units) * _FEN_PER_UNIT + int((cents or "").ljust(_MINOR_DIGITS, "0"))
    if sign:
        fen = -fen
    if abs(fen) > limits.amount_fen_max:
        raise AmountFormatError(f"amount {text!r} exceeds {limits.amount_fen_max} fen")
    return fen


def text_from_fen(fen: int) -> str:
    """123456 -> "1234.56", -5 -> "-0.05": always two decimals, integer arithmetic only."""
    units, cents = divmod(abs(fen), _FEN_PER_UNIT)
    sign = "-" if fen < 0 else ""
    return f"{sign}{units}.{cents:02d}"
