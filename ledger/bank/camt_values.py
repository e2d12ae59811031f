"""The values inside a camt statement: amounts, currencies, codes, dates and texts, each
checked and named by its element path when refused."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from typing import Final
from xml.etree.ElementTree import Element

from ledger.bank import limits
from ledger.bank.amounts import (
    AmountFormatError,
    check_currency_code,
    fen_from_text,
    iso20022_decimals_max,
)
from ledger.bank.model import Direction, StatementRejected

# An ISO date, with an offset (the schema allows one) or, as some banks write it, a time of
# day: `2025-07-23T00:00:00.000000000` in a Dt is read as the day it names.
_DATE_RE: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_DAYS_CACHED: Final = 1024  # distinct date texts remembered: a statement has a few days
_CURRENCIES_CACHED: Final = 64  # currency codes checked and remembered
# By value, without the Enum call's cost: a big statement reads 300,000 of these.
_DIRECTIONS: Final = {d.value: d for d in Direction}


def amount_of(node: Element, where: str, path: str,
               *, allow_zero: bool = False) -> tuple[int, str]:
    try:
        fen = fen_from_text((node.text or "").strip(), decimals_max=iso20022_decimals_max)
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=path_join(where, path)) from None
    if fen == 0 and not allow_zero:
        raise StatementRejected("amount must not be zero", field=path_join(where, path))
    code = node.get("Ccy", "")
    problem = currency_problem(code)
    if problem is not None:
        raise StatementRejected(problem, field=f"{path_join(where, path)}/@Ccy")
    return fen, code


def currency_of(code: str, field: str) -> str:
    problem = currency_problem(code)
    if problem is not None:
        raise StatementRejected(problem, field=field)
    return code


@functools.lru_cache(maxsize=_CURRENCIES_CACHED)
def currency_problem(code: str) -> str | None:
    """Why `code` is refused, or None; a statement names one currency 200,000 times."""
    try:
        check_currency_code(code)
    except AmountFormatError as exc:
        return str(exc)
    return None


def same_currency(found: str, account: str, where: str, path: str) -> None:
    if found != account:
        raise StatementRejected(
            f"amount in {found} on an account in {account}: entries in another currency than "
            f"the account's are not accepted", field=path_join(where, path))


def direction_of(code: str, where: str) -> Direction:
    """The CdtDbtInd `code` of the element at `where`."""
    direction = _DIRECTIONS.get(code)
    if direction is None:
        raise StatementRejected(f"{code!r} is not CRDT or DBIT", field=f"{where}/CdtDbtInd")
    return direction


def reversal_of(text: str | None, where: str) -> bool:
    """The RvslInd `text` of the entry at `where`."""
    if text is None or text in ("false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise StatementRejected(f"{text!r} is not a boolean (true or false)",
                            field=f"{where}/RvslInd")


@functools.lru_cache(maxsize=_DAYS_CACHED)
def day_of(text: str) -> date | None:
    """An ISO date (an offset or a time of day after it is allowed and ignored), or None; a
    statement's hundreds of thousands of dates are a handful of days."""
    match = _DATE_RE.fullmatch(text)
    try:
        return date.fromisoformat(match[1] if match else "not a date")
    except ValueError:
        return None


def datetime_of(text: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time; naive when the bank gave no offset (the schema allows that)."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StatementRejected(f"{text[:40]!r} is not an ISO 8601 date-time",
                                field=field) from None


def bounded(text: str | None, where: str, path: str = "") -> str | None:
    """Stripped text, None for none; the field at fault is `where` joined with `path`, put
    together only for a refusal (the text of every element read passes through here)."""
    value = (text or "").strip()
    if len(value) > limits.statement_text_chars_max:
        raise StatementRejected(
            f"text of {len(value)} characters, over the limit of "
            f"{limits.statement_text_chars_max}", field=path_join(where, path) if path else where)
    return value or None


def path_join(where: str, path: str) -> str:
    return f"{where}/{path}" if where else path
