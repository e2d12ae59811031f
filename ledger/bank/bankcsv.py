"""Our documented statement CSV, for banks without ISO 20022 or MT940 (docs/bank-formats.md).

UTF-8 (or GB18030/GBK, or Latin-1: text.py's detection, or the encoding a profile names),
comma-separated, RFC 4180 quoting, one header row naming every column of `COLUMNS` (in any
order). A row is an entry (direction CRDT or DBIT) or a balance (direction OPBD or CLBD). One
file may cover several accounts: each (account, currency) becomes one statement, in order of
first appearance. Rows are numbered as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from ledger.bank import limits
from ledger.bank.accounts import normalise_account
from ledger.bank.amounts import AmountFormatError, check_currency_code, fen_from_text
from ledger.bank.model import (
    Direction,
    EntryStatus,
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementEntry,
    StatementRejected,
    TxDetail,
    check_balances,
    check_statement_size,
    refused,
)
from ledger.bank.text import TextEncoding, decode_text

COLUMNS: Final = (
    "account", "currency", "booking_date", "value_date", "direction", "amount", "status",
    "end_to_end_id", "creditor_reference", "bank_reference", "counterparty_name",
    "counterparty_account", "remittance", "reversal")
_BALANCE_CODES: Final = ("OPBD", "CLBD")
# On a balance row only these columns may be filled: anything else is a mistake to report.
_BALANCE_COLUMNS: Final = frozenset({"account", "currency", "booking_date", "direction", "amount"})
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_BOOLEANS: Final = {"": False, "false": False, "true": True}


@dataclass(slots=True)
class _Account:
    account: str
    currency: str
    balances: dict[str, tuple[int, date]] = field(default_factory=dict)
    entries: list[StatementEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    cells: dict[str, str]

    def where(self, column: str | None = None) -> str:
        return f"row {self.number}" + (f", {column}" if column else "")

    def text(self, column: str) -> str | None:
        value = self.cells[column]
        if len(value) > limits.statement_text_chars_max:
            raise StatementRejected(f"text of {len(value)} characters, over the limit of "
                                    f"{limits.statement_text_chars_max}", field=self.where(column))
        return value or None

    def required(self, column: str) -> str:
        value = self.text(column)
        if value is None:
            raise StatementRejected(f"{column} is required", field=self.where(column))
        return value


def parse_csv(data: bytes, encoding: TextEncoding | None = None) -> list[Statement]:
    """Every statement of the file, or the first fault raised."""
    return read_csv(data, encoding).strict()


def read_csv(data: bytes, encoding: TextEncoding | None = None) -> ParsedFile:
    """Each account's statement, read or refused (its balances do not add up); a fault in a
    row refuses the file, since a row's account cannot be trusted either. The text is read
    in `encoding`, or the one text.py detects (UTF-8 with or without BOM, GB18030, Latin-1)."""
    check_statement_size(data)
    accounts: dict[tuple[str, str], _Account] = {}
    for row in _rows(decode_text(data, encoding)[0]):
        key = (row.required("account"), _currency(row))
        group = accounts.setdefault(key, _Account(*key))
        _add_row(group, row)
    if not accounts:
        raise StatementRejected("no rows after the header", field="row 2")
    message_id = "sha256:" + hashlib.sha256(data).hexdigest()
    return ParsedFile("csv", tuple(_read(group, message_id) for group in accounts.values()))


def _read(group: _Account, message_id: str) -> Statement | RefusedStatement:
    try:
        return _statement(group, message_id)
    except StatementRejected as exc:
        return refused(f"account {group.account} {group.currency}", exc, group.account,
                       f"{group.account}:{group.currency}")


def _rows(text: str) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = _header(next(reader, []))
        for number, cells in enumerate(reader, 2):
            if not any(cell.strip() for cell in cells):
                continue  # blank lines and the empty rows spreadsheets append
            if len(cells) != len(header):
                raise StatementRejected(f"{len(cells)} cells, the header has {len(header)}",
                                        field=f"row {number}")
            if number - 1 > limits.statement_entries_max:
                raise StatementRejected(f"over the limit of {limits.statement_entries_max} "
                                        f"rows per file", field=f"row {number}")
            yield _Row(number, {c: v.strip() for c, v in zip(header, cells, strict=True)})
    except csv.Error as exc:
        raise StatementRejected(f"malformed CSV: {exc}", field=f"line {reader.line_num}") \
            from None


def _header(cells: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in cells]
    if not header:
        raise StatementRejected("empty file: a header row is required", field="row 1")
    for column in header:
        if column not in COLUMNS:
            raise StatementRejected(f"unknown column {column[:40]!r}", field="row 1")
        if header.count(column) > 1:
            raise StatementRejected(f"column {column!r} appears twice", field="row 1")
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise StatementRejected(f"missing columns: {', '.join(missing)}", field="row 1")
    return header


def _add_row(group: _Account, row: _Row) -> None:
    code = row.required("direction")
    if code in _BALANCE_CODES:
        if code in group.balances:
            raise StatementRejected(f"a second {code} row for account {group.account} "
                                    f"{group.currency}", field=row.where("direction"))
        group.balances[code] = _balance(row)
    else:
        group.entries.append(_entry(row, code))


def _balance(row: _Row) -> tuple[int, date]:
    for column in COLUMNS:
        if column not in _BALANCE_COLUMNS and row.cells[column]:
            raise StatementRejected("must be empty on a balance row", field=row.where(column))
    when = _date(row, "booking_date")
    if when is None:
        raise StatementRejected("booking_date is required", field=row.where("booking_date"))
    return _amount(row, allow_negative=True), when


def _entry(row: _Row, code: str) -> StatementEntry:
    try:
        direction = Direction(code)
    except ValueError:
        raise StatementRejected(f"{code[:40]!r} is not CRDT, DBIT, OPBD or CLBD",
                                field=row.where("direction")) from None
    status = _status(row)
    booking_date = _date(row, "booking_date")
    if booking_date is None and status is EntryStatus.booked:
        raise StatementRejected("a booked entry needs its booking_date",
                                field=row.where("booking_date"))
    fen = _amount(row, allow_negative=False)
    if fen == 0:
        raise StatementRejected("amount must not be zero", field=row.where("amount"))
    bank_reference = row.text("bank_reference")
    detail = TxDetail(
        amount_fen=fen, end_to_end_id=row.text("end_to_end_id"),
        creditor_reference=row.text("creditor_reference"),
        remittance_unstructured=row.text("remittance"),
        counterparty_name=row.text("counterparty_name"),
        counterparty_account=row.text("counterparty_account"), bank_reference=bank_reference)
    return StatementEntry(
        position=row.where(), amount_fen=fen, direction=direction, status=status,
        booking_date=booking_date, value_date=_date(row, "value_date"),
        reversal=_reversal(row), bank_reference=bank_reference, details=(detail,))


def _statement(group: _Account, message_id: str) -> Statement:
    opening = group.balances.get("OPBD")
    closing = group.balances.get("CLBD")
    statement = Statement(
        format="csv", message_id=message_id,
        # Our CSV has no statement number: a statement is named by its account, currency and
        # the day its closing balance names (ledger/bank/identity.py says what is the same).
        statement_id=f"{normalise_account(group.account)}:{group.currency}"
        + (f":{closing[1]}" if closing else ""),
        account=group.account,
        currency=group.currency,
        opening_booked_fen=opening[0] if opening else None,
        closing_booked_fen=closing[0] if closing else None,
        closing_date=closing[1] if closing else None, created_at=None,
        entries=tuple(group.entries), opening_date=opening[1] if opening else None,
        position=f"account {group.account} {group.currency}")
    check_balances(statement, field=f"account {group.account} {group.currency}")
    return statement


# --- leaf values ---------------------------------------------------------------------------
def _currency(row: _Row) -> str:
    try:
        return check_currency_code(row.required("currency"))
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=row.where("currency")) from None


def _amount(row: _Row, *, allow_negative: bool) -> int:
    try:
        return fen_from_text(row.required("amount"), allow_negative=allow_negative)
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=row.where("amount")) from None


def _status(row: _Row) -> EntryStatus:
    code = row.required("status")
    try:
        return EntryStatus(code)
    except ValueError:
        raise StatementRejected(f"{code[:40]!r} is not BOOK, PDNG or INFO",
                                field=row.where("status")) from None


def _date(row: _Row, column: str) -> date | None:
    text = row.text(column)
    if text is None:
        return None
    try:
        if not _DATE_RE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise StatementRejected(f"{text[:40]!r} is not a date (YYYY-MM-DD)",
                                field=row.where(column)) from None


def _reversal(row: _Row) -> bool:
    text = row.cells["reversal"].lower()
    if text not in _BOOLEANS:
        raise StatementRejected(f"{text[:40]!r} is not true or false", field=row.where("reversal"))
    return _BOOLEANS[text]
