"""A bank's own export read by its profile (profile.py): title lines, a header row in the
bank's words, the rows, footer lines; into the one statement model.

Rows are numbered as a spreadsheet shows them (the first line is row 1), and every refusal
names the row and the column by its header name (`row 7, 余额`). A running balance column
(余额) is a chain: each row's balance must be the previous one plus the row's amount, or the
statement is refused naming the row, since a line was lost or edited; the first row's balance
less its amount is the opening balance, the last row's the closing one.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from ledger.bank import limits
from ledger.bank.accounts import normalise_account
from ledger.bank.amounts import AmountFormatError, check_currency_code, fen_from_text
from ledger.bank.bankcsv import read_csv
from ledger.bank.containers import is_workbook
from ledger.bank.model import (
    Direction,
    EntryStatus,
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementEntry,
    StatementRejected,
    TxDetail,
    check_statement_size,
    refused,
)
from ledger.bank.profile import (
    AmountForm,
    BankProfile,
    DateForm,
    Field,
    ProfileFormat,
    ProfileReader,
    RowOrder,
    remittance_fields,
    title_rows_max,
)
from ledger.bank.text import TextEncoding, decode_text
from ledger.bank.xlsx import Cell, xlsx_rows
from ledger.limits import amount_fen_max

_DATE_RES: Final = {
    DateForm.iso: r"(\d{4})-(\d{1,2})-(\d{1,2})",
    DateForm.slashes: r"(\d{4})/(\d{1,2})/(\d{1,2})",
    DateForm.digits: r"(\d{4})(\d{2})(\d{2})",
    DateForm.chinese: r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日",
}
# A time after the date (`2026-12-07 10:23:45`, `20261207 102345`): read past, not kept.
_TIME_RE: Final = r"(?:[ T]*(?:\d{1,2}[:：]\d{2}(?:[:：]\d{2}(?:\.\d{1,6})?)?|\d{6}))?"
_THOUSANDS_RE: Final = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")
_YUAN_SIGNS: Final = ("¥", "￥")
_PARENTHESES: Final = (("(", ")"), ("（", "）"))
# Currencies as Chinese banks name them in a title line or a 币种 column.
_CURRENCY_NAMES: Final = {"人民币": "CNY", "RMB": "CNY", "美元": "USD", "欧元": "EUR",
                          "港币": "HKD", "港元": "HKD", "英镑": "GBP"}
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_TITLE_SEPARATORS: Final = ":： \t"
_FEN_PER_UNIT: Final = 100
# An Excel number further than this from a whole fen is a third decimal, not float noise.
_FLOAT_NOISE_FEN: Final = Decimal("0.000001")


def read_profiled(data: bytes, profile: BankProfile) -> ParsedFile:
    """The file read as `profile` says: each account's statement, read or refused."""
    check_statement_size(data)
    if profile.format is ProfileFormat.csv and is_workbook(data):
        raise StatementRejected(f"an Excel workbook, and profile {profile.name} reads CSV",
                                field="profile")
    if profile.reader is ProfileReader.yufu_csv:
        return read_csv(data, profile.encoding)
    rows = xlsx_rows(data) if profile.format is ProfileFormat.xlsx else csv_rows(data, profile)
    return read_rows(rows, profile, message_id_of(data))


def message_id_of(data: bytes) -> str:
    """A bank's export has no message id: its digest, so a re-upload is recognisable."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def csv_rows(data: bytes, profile: BankProfile) -> list[list[Cell]]:
    """The file's rows as text, in the profile's encoding (or the one detected); a UTF-8
    byte-order mark overrides the profile's: it says what the file is (a bank's export saved
    again by Excel as "CSV UTF-8" has one), and no GBK text starts with those bytes."""
    encoding = TextEncoding.utf8 if data.startswith(_UTF8_BOM) else profile.encoding
    text, _ = decode_text(data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=profile.delimiter,
                        strict=True)
    rows: list[list[Cell]] = []
    try:
        for cells in reader:
            if len(rows) >= limits.statement_entries_max + title_rows_max:
                raise StatementRejected(f"over the limit of {limits.statement_entries_max} "
                                        "rows", field=f"row {len(rows) + 1}")
            rows.append(list(cells))
    except csv.Error as exc:
        raise StatementRejected(f"malformed CSV: {exc}", field=f"line {reader.line_num}") \
            from None
    return rows


def header_columns(rows: Sequence[Sequence[Cell]], profile: BankProfile
                   ) -> tuple[int, dict[Field, int]] | None:
    """Where the profile's header is (0-based row) and each field's cell, if the rows hold it:
    at `header_row`, else the first of the first `title_rows_max` rows naming every field."""
    candidates = ([profile.header_row - 1] if profile.header_row
                  else range(min(len(rows), title_rows_max)))
    for index in candidates:
        if index < len(rows):
            found = _columns_in(rows[index], profile)
            if found is not None:
                return index, found
    return None


def _columns_in(cells: Sequence[Cell], profile: BankProfile) -> dict[Field, int] | None:
    header = [_plain(c) for c in cells]
    found: dict[Field, int] = {}
    for wanted, names in profile.columns.items():
        where = next((header.index(n) for n in names if n in header), None)
        if where is not None:
            found[wanted] = where
        elif wanted not in profile.optional_columns:
            return None
    return found


# --- the file's layout ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Layout:
    profile: BankProfile
    header_index: int
    columns: dict[Field, int]
    header: tuple[str, ...]
    titles: dict[str, str]
    reference_re: re.Pattern[str]

    def has(self, wanted: Field) -> bool:
        """The file has this column (an optional one may be absent)."""
        return wanted in self.columns


@dataclass(slots=True)
class _Group:
    account: str
    currency: str
    rows: list[_Row] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    entry: StatementEntry
    balance_fen: int | None
    day: date


def read_rows(rows: Sequence[Sequence[Cell]], profile: BankProfile,
              message_id: str) -> ParsedFile:
    """The rows of a file as the profile lays them out."""
    found = header_columns(rows, profile)
    if found is None:
        where = f"row {profile.header_row}" if profile.header_row else "file"
        raise StatementRejected(f"no header row of profile {profile.name} (the columns "
                                f"{', '.join(sorted(profile.header_names()))})", field=where)
    index, columns = found
    layout = _Layout(profile, index, columns, tuple(_plain(c) for c in rows[index]),
                     _titles(rows[:index], profile), re.compile(profile.reference_pattern))
    groups: dict[tuple[str, str], _Group] = {}
    body = list(_body(rows, layout))
    if profile.row_order is RowOrder.newest_first:
        body.reverse()  # the chain runs oldest first; each row keeps its number
    for row in body:
        key = (_account(row, layout), _currency(row, layout))
        groups.setdefault(key, _Group(*key)).rows.append(_parse_row(row, layout))
    if not groups:
        raise StatementRejected("no rows after the header", field=f"row {index + 2}")
    items = tuple(_read(group, layout, message_id) for group in groups.values())
    return ParsedFile(profile.name, items)


def _titles(rows: Sequence[Sequence[Cell]], profile: BankProfile) -> dict[str, str]:
    """What the title lines say under the profile's labels: `账号：123` in one cell, or
    `账号` and `123` in two."""
    titles: dict[str, str] = {}
    for cells in rows:
        texts = [_plain(c) for c in cells]
        for at, text in enumerate(texts):
            for key, labels in profile.title_labels.items():
                label = next((lb for lb in labels if _labelled(text, lb)), None)
                if label is None or key in titles:
                    continue
                value = text[len(label):].strip(_TITLE_SEPARATORS) or next(
                    (t for t in texts[at + 1:] if t), "")
                if len(value) > limits.statement_text_chars_max:
                    raise StatementRejected(f"a title value over "
                                            f"{limits.statement_text_chars_max} characters",
                                            field=f"title {label}")
                if value:
                    titles[key] = value
    return titles


def _labelled(text: str, label: str) -> bool:
    """`账号：123` and `账号` are labelled 账号; `账号名称` is not."""
    return text.startswith(label) and text[len(label):][:1] in ("", *_TITLE_SEPARATORS)


@dataclass(frozen=True, slots=True)
class _Cells:
    number: int
    cells: Sequence[Cell]
    layout: _Layout

    def where(self, wanted: Field | None = None) -> str:
        if wanted is None:
            return f"row {self.number}"
        return f"row {self.number}, {self.layout.header[self.layout.columns[wanted]]}"

    def raw(self, wanted: Field) -> Cell:
        at = self.layout.columns.get(wanted)
        if at is None or at >= len(self.cells):
            return ""
        return self.cells[at]

    def text(self, wanted: Field) -> str | None:
        value = _plain(self.raw(wanted))
        if len(value) > limits.statement_text_chars_max:
            raise StatementRejected(f"text of {len(value)} characters, over the limit of "
                                    f"{limits.statement_text_chars_max}",
                                    field=self.where(wanted))
        return value or None


def _body(rows: Sequence[Sequence[Cell]], layout: _Layout) -> Iterator[_Cells]:
    """The entry rows; footer rows are checked (their totals) and not entries; anything
    after a footer but footers and blank rows is refused, never dropped."""
    footer_seen = False
    sums = {Field.debit: 0, Field.credit: 0}
    for index in range(layout.header_index + 1, len(rows)):
        row = _Cells(index + 1, rows[index], layout)
        first = next((_plain(c) for c in row.cells if _plain(c)), None)
        if first is None:
            continue  # blank rows and the empty rows spreadsheets append
        if any(_plain(c) for c in row.cells[len(layout.header):]):
            # An unquoted comma in a 摘要 shifts every cell after it: never read such a row.
            raise StatementRejected(f"a cell beyond the header's {len(layout.header)} "
                                    "columns", field=row.where())
        if any(first.startswith(label) for label in layout.profile.footer_labels):
            footer_seen = True
            _check_footer(row, sums)
        elif footer_seen:
            raise StatementRejected("a row after the footer (合计): the file is not one "
                                    "statement", field=row.where())
        else:
            for side in sums:
                if layout.has(side):
                    sums[side] += _fen(row, side)
            yield row


def _check_footer(row: _Cells, sums: dict[Field, int]) -> None:
    """A footer's total of a debit or credit column must be that column's sum."""
    for side, total in sums.items():
        if row.layout.has(side) and _plain(row.raw(side)):
            given = _fen(row, side)
            if given != total:
                raise StatementRejected(f"the footer says {given} fen, the rows add up to "
                                        f"{total} fen: a row is missing or edited",
                                        field=row.where(side))


# --- one row -------------------------------------------------------------------------------
def _parse_row(row: _Cells, layout: _Layout) -> _Row:
    signed, reversal = _signed(row)
    day = _required_date(row, Field.booking_date)
    detail = _detail(row, layout, abs(signed))
    entry = StatementEntry(
        position=row.where(), amount_fen=abs(signed),
        direction=Direction.debit if signed < 0 else Direction.credit,
        status=EntryStatus.booked if signed else EntryStatus.info,
        booking_date=day, value_date=_date(row, Field.value_date), reversal=reversal,
        bank_reference=detail.bank_reference, details=(detail,),
        additional_info=_bank_of(row))
    balance = _fen(row, Field.balance, blank=None) if layout.has(Field.balance) \
        else None
    return _Row(row.number, entry, balance, day)


def _signed(row: _Cells) -> tuple[int, bool]:
    """The row's movement, signed, and whether it is a reversal: a negative figure where
    the bank writes positive ones (红字冲正, a red-ink reversal)."""
    profile, layout = row.layout.profile, row.layout
    if layout.has(Field.debit):
        debit, credit = _fen(row, Field.debit), _fen(row, Field.credit)
        if debit and credit:
            raise StatementRejected("both a debit and a credit amount on one row",
                                    field=row.where(Field.credit))
        return credit - debit, debit < 0 or credit < 0
    blank = 0 if AmountForm.blank_zero in profile.amount_forms else None
    amount = _fen(row, Field.amount, blank)
    if not layout.has(Field.direction):
        return amount, False
    flag = row.text(Field.direction) or ""
    values = profile.direction_values
    if flag in values["credit"]:
        return amount, amount < 0
    if flag in values["debit"]:
        return -amount, amount < 0
    allowed = "/".join(values["credit"] + values["debit"])
    raise StatementRejected(f"{flag[:40]!r} is not a direction ({allowed})",
                            field=row.where(Field.direction))


def _detail(row: _Cells, layout: _Layout, fen: int) -> TxDetail:
    texts = [t for f in remittance_fields() if (t := row.text(f))]
    remittance = " ".join(dict.fromkeys(texts)) or None
    found = layout.reference_re.search(remittance) if remittance else None
    return TxDetail(
        amount_fen=fen, creditor_reference=found.group(0) if found else None,
        remittance_unstructured=remittance,
        counterparty_name=row.text(Field.counterparty_name),
        counterparty_account=row.text(Field.counterparty_account),
        bank_reference=row.text(Field.bank_reference))


def _bank_of(row: _Cells) -> str | None:
    bank = row.text(Field.counterparty_bank)
    return f"对方开户行: {bank}" if bank else None


def _account(row: _Cells, layout: _Layout) -> str:
    account = row.text(Field.account) if layout.has(Field.account) \
        else layout.titles.get("account")
    if account is None:
        raise StatementRejected("no account: neither a title line (" + "/".join(
            layout.profile.title_labels.get("account", ())) + ") nor an account column gives it",
            field=row.where())
    return account


def _currency(row: _Cells, layout: _Layout) -> str:
    given = row.text(Field.currency) if layout.has(Field.currency) \
        else layout.titles.get("currency")
    code = _CURRENCY_NAMES.get(given or "", given) or layout.profile.currency
    try:
        return check_currency_code(code.upper())
    except AmountFormatError as exc:
        where = row.where(Field.currency) if layout.has(Field.currency) else "title"
        raise StatementRejected(str(exc), field=where) from None


# --- leaf values ---------------------------------------------------------------------------
def _plain(cell: Cell) -> str:
    if isinstance(cell, Decimal):
        return str(int(cell)) if cell == cell.to_integral_value() else str(cell)
    if isinstance(cell, date):
        return (cell.date() if isinstance(cell, datetime) else cell).isoformat()
    text = cell.strip()
    # `="6222…"`: how exports keep a spreadsheet from turning a long number into 6.22E+15.
    if text.startswith('="') and text.endswith('"') and len(text) >= 3:
        return text[2:-1].strip()
    return text


def _fen(row: _Cells, wanted: Field, blank: int | None = 0) -> int:
    """The cell's amount; a blank one is `blank` (a debit and credit layout leaves the other
    side blank), or refused when None."""
    cell = row.raw(wanted)
    if isinstance(cell, Decimal):
        return _fen_of_number(cell, row.where(wanted))
    text = _plain(cell)
    if not text:
        if blank is None:
            raise StatementRejected(f"{row.layout.header[row.layout.columns[wanted]]} is "
                                    "required", field=row.where(wanted))
        return blank
    try:
        return fen_of_text(text, row.layout.profile.amount_forms)
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=row.where(wanted)) from None


def fen_of_text(text: str, forms: frozenset[AmountForm]) -> int:
    """`1,234.56`, `-1234.56`, `(1,234.56)`, `¥1234.56` as the forms allow, to signed fen."""
    plain = text
    negative = False
    for opening, closing in _PARENTHESES:
        if AmountForm.parentheses in forms and plain.startswith(opening) \
                and plain.endswith(closing):
            plain, negative = plain[1:-1].strip(), True
    if plain.startswith(("-", "+")) and (plain[0] == "+" or AmountForm.minus in forms):
        if negative and plain[0] == "-":
            raise AmountFormatError(f"amount {text[:40]!r} is negative twice")
        plain, negative = plain[1:].strip(), negative or plain[0] == "-"
    if AmountForm.yuan_sign in forms and plain.startswith(_YUAN_SIGNS):
        plain = plain[1:].strip()
    if AmountForm.thousands in forms and _THOUSANDS_RE.fullmatch(plain):
        plain = plain.replace(",", "")
    fen = fen_from_text(plain)
    return -fen if negative else fen


def _fen_of_number(number: Decimal, where: str) -> int:
    scaled = number * _FEN_PER_UNIT
    fen = scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if abs(scaled - fen) > _FLOAT_NOISE_FEN:
        raise StatementRejected(f"amount {number} is not a whole number of fen", field=where)
    if abs(fen) > amount_fen_max:
        raise StatementRejected(f"amount {number} exceeds {amount_fen_max} fen", field=where)
    return int(fen)


def _required_date(row: _Cells, wanted: Field) -> date:
    day = _date(row, wanted)
    if day is None:
        raise StatementRejected("the date is required", field=row.where(wanted))
    return day


def _date(row: _Cells, wanted: Field) -> date | None:
    cell = row.raw(wanted)
    if isinstance(cell, date):
        return cell.date() if isinstance(cell, datetime) else cell
    text = _plain(cell)
    if not text:
        return None
    try:
        return date_of_text(text, row.layout.profile.date_forms)
    except ValueError:
        forms = ", ".join(row.layout.profile.date_forms)
        raise StatementRejected(f"{text[:40]!r} is not a date ({forms})",
                                field=row.where(wanted)) from None


def date_of_text(text: str, forms: Sequence[DateForm]) -> date:
    """A date in one of `forms`, perhaps with a time after it; ValueError if none."""
    for form in forms:
        match = re.fullmatch(_DATE_RES[form] + _TIME_RE, text)
        if match:
            return date(*(int(part) for part in match.groups()))
    raise ValueError(text)


# --- one account's statement ---------------------------------------------------------------
def _read(group: _Group, layout: _Layout, message_id: str) -> Statement | RefusedStatement:
    first, last = group.rows[0], group.rows[-1]
    # Named by the account as normalised: the same export sent again, its account spelt
    # otherwise, is the same statement (ledger/bank/identity.py).
    statement_id = (f"{normalise_account(group.account)}:{first.day.isoformat()}.."
                    f"{last.day.isoformat()}")
    try:
        opening, closing = _chain(group.rows, layout)
    except StatementRejected as exc:
        return refused(f"account {group.account}", exc, group.account, statement_id)
    return Statement(
        format=layout.profile.name, message_id=message_id, statement_id=statement_id,
        account=group.account, currency=group.currency, opening_booked_fen=opening,
        closing_booked_fen=closing, closing_date=last.day if closing is not None else None,
        created_at=None, entries=tuple(r.entry for r in group.rows),
        opening_date=first.day if opening is not None else None,
        position=f"row {first.number}")


def _chain(rows: Sequence[_Row], layout: _Layout) -> tuple[int | None, int | None]:
    """Opening and closing balances from the 余额 column, each row's checked against the
    previous one; (None, None) when the file has no balance column."""
    if not layout.has(Field.balance):
        return None, None
    balance_name = layout.header[layout.columns[Field.balance]]
    first = rows[0]
    assert first.balance_fen is not None  # required by _parse_row with a balance column
    previous = first.balance_fen - first.entry.signed_fen
    opening = previous
    for row in rows:
        expected = previous + row.entry.signed_fen
        if row.balance_fen != expected:
            raise StatementRejected(
                f"the balance {row.balance_fen} fen is not the previous {previous} fen plus "
                f"this row's {row.entry.signed_fen} fen ({expected}): a line before it is "
                "lost or edited", field=f"row {row.number}, {balance_name}")
        previous = expected
    return opening, previous
