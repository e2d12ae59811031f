"""Decimal text <-> integer fen, exactly. Never through float.

Bank files write amounts as decimal text ("1234.56" in ISO 20022, "1234,56" in MT940). Only
currencies with two minor digits are accepted: for them one fen is one hundredth. ISO 20022
allows up to five decimals, and banks use them (`8.850`, `5442.09000`): such text is read when
it is a whole number of fen (the decimals past the second are zeros) and refused, never
rounded, when it is not (`8.855`).
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
# At most 18 digits in all (ISO 20022 totalDigits); the decimals are bounded by the caller's
# `decimals_max` (2 unless the format allows more), checked after the grammar.
_AMOUNT_DIGITS_MAX: Final = 18
_AMOUNT_RE: Final = {
    ".": re.compile(r"(?P<sign>-?)(?P<int>[0-9]{1,18})(?:\.(?P<frac>[0-9]{1,18}))?"),
    ",": re.compile(r"(?P<sign>-?)(?P<int>[0-9]{1,14}),(?P<frac>[0-9]{0,2})"),
}
_FEN_PER_UNIT: Final = 100
_MINOR_DIGITS: Final = 2
# ISO 20022 ActiveOrHistoricCurrencyAndAmount: fractionDigits 5.
iso20022_decimals_max: Final = 5


class AmountFormatError(ValueError):
    """Text that is not an exact amount; the caller names the field and picks the error type."""


def check_currency_code(code: str) -> str:
    if not _CURRENCY_RE.fullmatch(code):
        raise AmountFormatError(f"currency {code!r} is not a three-letter ISO 4217 code")
    if code in _MINOR_DIGITS_NOT_TWO:
        raise AmountFormatError(f"currency {code} does not have two minor digits: not supported")
    return code


def fen_from_text(text: str, *, mark: str = ".", allow_negative: bool = False,
                  decimals_max: int = _MINOR_DIGITS) -> int:
    """"1234.56" -> 123456. `mark` is "." (ISO 20022, CSV) or "," (MT940, where it is mandatory).

    The grammar is checked first, so only plain digits are ever converted: no exponents, no
    "NaN", no whitespace, and nothing that could round. With `decimals_max` over 2 (the "."
    grammar only), the decimals past the second must be zeros: "8.850" is 885 fen, "8.855"
    is refused.
    """
    match = _AMOUNT_RE[mark].fullmatch(text)
    if match is None:
        shape = "digits with a decimal point" if mark == "." else "digits with a decimal comma"
        raise AmountFormatError(
            f"amount {text[:40]!r} is not {shape} and at most {decimals_max} decimals")
    sign, units, fraction = match.group("sign", "int", "frac")
    cents = fraction or ""
    # Text of more than two decimals or 18 digits is rare: checked only then (a statement
    # has 200,000 amounts). Without, amount_fen_max keeps within 18 digits anyway.
    if len(cents) > _MINOR_DIGITS or len(text) > _AMOUNT_DIGITS_MAX + 1:
        cents = _cents(text, units, cents, decimals_max)
    if sign and not allow_negative:
        raise AmountFormatError(f"amount {text!r} must not be negative")
    # Whole units and at most two decimals, ASCII digits only (the grammar): exact in
    # integers, and a third cheaper than through Decimal (a big statement has 200,000).
    fen = int(units) * _FEN_PER_UNIT + int(cents.ljust(_MINOR_DIGITS, "0"))
    if sign:
        fen = -fen
    if abs(fen) > limits.amount_fen_max:
        raise AmountFormatError(f"amount {text!r} exceeds {limits.amount_fen_max} fen")
    return fen


def _cents(text: str, units: str, fraction: str, decimals_max: int) -> str:
    """The fraction's first two digits, once the rest is checked to be zeros."""
    if len(fraction) > decimals_max:
        raise AmountFormatError(f"amount {text[:40]!r} is not digits with a decimal point and "
                                f"at most {decimals_max} decimals")
    if len(units) + len(fraction) > _AMOUNT_DIGITS_MAX:
        raise AmountFormatError(
            f"amount {text[:40]!r} has more than {_AMOUNT_DIGITS_MAX} digits")
    cents, rest = fraction[:_MINOR_DIGITS], fraction[_MINOR_DIGITS:]
    if rest.strip("0"):
        raise AmountFormatError(f"amount {text[:40]!r} is not a whole number of fen")
    return cents


def text_from_fen(fen: int) -> str:
    """123456 -> "1234.56", -5 -> "-0.05": always two decimals, integer arithmetic only."""
    units, cents = divmod(abs(fen), _FEN_PER_UNIT)
    sign = "-" if fen < 0 else ""
    return f"{sign}{units}.{cents:02d}"
