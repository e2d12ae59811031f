"""Hotline work orders (工单) as a file: CSV or XLSX, one complaint a row, read to typed rows.

The first row is the header; columns are found by name, in English or as the hotline exports
name them (渠道, 工单编号, ...), in any order. Every later row is either a `WorkOrder` or a
`RowRefusal` naming its row number (as a spreadsheet numbers it: the header is row 1) and the
field at fault: nothing is dropped. A workbook is read as the bank statements are
(ledger/bank/xlsx.py: its zip checked before openpyxl opens it, a bounded sheet); a CSV as
UTF-8, or GB18030 when it is not UTF-8 (ledger/bank/text.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Final

from ledger import limits
from ledger.bank.containers import is_workbook
from ledger.bank.model import StatementRejected
from ledger.bank.text import decode_text
from ledger.bank.xlsx import Cell, xlsx_rows
from ledger.custody.cards import consumer_ref_chars_max
from ledger.errors import InvalidInput, LedgerError
from ledger.supervision.complaints import (
    Channel,
    category_chars_max,
    check_text,
    external_id_chars_max,
    parse_channel,
)

work_order_file_bytes_max: Final = 4 * 1024 * 1024
work_order_rows_max: Final = 2_000
CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8))

# column -> the names a header may give it (compared stripped and case-folded)
COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "channel": ("channel", "渠道", "来源"),
    "external_id": ("external_id", "order_id", "工单编号", "工单号"),
    "received_at": ("received_at", "受理时间", "来电时间", "接收时间"),
    "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
    "merchant_id": ("merchant_id", "商户编号"),
    "category": ("category", "诉求类别", "类别"),
    "amount_fen": ("amount_fen", "涉及金额(分)", "涉及金额（分）", "金额(分)"),
    "card_id": ("card_id", "卡号"),
    "phone": ("phone", "来电号码", "联系电话"),
}
REQUIRED: Final = ("channel", "external_id", "received_at", "category")


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """A complaint as received: the merchant by its id or its credit code (one of them), the
    consumer already a pseudonym."""

    channel: Channel
    external_id: str | None
    received_at: datetime
    merchant_id: str | None
    credit_code: str | None
    category: str
    amount_fen: int
    card_id: str | None
    consumer_id: str | None
    row: int | None = None  # its row in a file


@dataclass(frozen=True, slots=True)
class RowRefusal:
    row: int
    field: str
    reason: str

    def view(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


def check_order(order: WorkOrder) -> WorkOrder:
    """What holds of a work order however it came (the API or a file)."""
    if (order.merchant_id is None) == (order.credit_code is None):
        raise InvalidInput("give exactly one of merchant_id or credit_code", field="merchant_id")
    if order.channel.routed and order.external_id is None:
        raise InvalidInput("a hotline work order has its order id", field="external_id")
    if not 0 <= order.amount_fen <= limits.amount_fen_max:
        raise InvalidInput(f"must be 0 to {limits.amount_fen_max}", field="amount_fen")
    return order


def read_work_orders(data: bytes, pseudonym: Callable[[str, str], str]
                     ) -> list[WorkOrder | RowRefusal]:
    """Every row after the header, read or refused. `pseudonym(phone, field)`: the consumer's
    pseudonym of a phone number (the edge's keyed hash), InvalidInput if it is no phone."""
    if len(data) > work_order_file_bytes_max:
        raise StatementRejected(f"file is over the {work_order_file_bytes_max} byte limit",
                                field="file")
    table = _workbook(data) if is_workbook(data) else _csv(data)
    while table and all(_blank(c) for c in table[-1]):
        table.pop()
    if not table:
        raise InvalidInput("the file is empty: a header row, then one row per work order",
                           field="file")
    if len(table) - 1 > work_order_rows_max:
        raise InvalidInput(f"{len(table) - 1} rows, over the limit of {work_order_rows_max}",
                           field="file")
    where = _header(table[0])
    return [_row(cells, where, number, pseudonym)
            for number, cells in enumerate(table[1:], start=2)
            if not all(_blank(c) for c in cells)]


def _workbook(data: bytes) -> list[list[Cell]]:
    try:
        return xlsx_rows(data)
    except StatementRejected as exc:  # worded for statements; the file's fault all the same
        raise InvalidInput(exc.detail, field=exc.field or "file") from None


def _csv(data: bytes) -> list[list[Cell]]:
    text, _ = decode_text(data)
    try:
        return [list(r) for r in csv.reader(io.StringIO(text))]
    except csv.Error as exc:
        raise InvalidInput(f"not a readable CSV file: {exc}", field="file") from None


def _blank(cell: Cell) -> bool:
    return isinstance(cell, str) and not cell.strip()


def _header(cells: Sequence[Cell]) -> dict[str, int]:
    names = {alias.casefold(): column for column, aliases in COLUMNS.items()
             for alias in aliases}
    where: dict[str, int] = {}
    for index, cell in enumerate(cells):
        column = names.get(str(cell).strip().casefold())
        if column is None:
            continue
        if column in where:
            raise InvalidInput(f"the header names {column} twice", field="row 1")
        where[column] = index
    missing = [c for c in REQUIRED if c not in where]
    if missing:
        raise InvalidInput(f"the header lacks {', '.join(missing)}", field="row 1")
    if "merchant_id" not in where and "credit_code" not in where:
        raise InvalidInput("the header lacks credit_code (or merchant_id)", field="row 1")
    return where


def _row(cells: Sequence[Cell], where: dict[str, int], number: int,
         pseudonym: Callable[[str, str], str]) -> WorkOrder | RowRefusal:
    def cell(column: str) -> Cell:
        index = where.get(column)
        return cells[index] if index is not None and index < len(cells) else ""

    def text(column: str, chars_max: int) -> str | None:
        value = cell(column)
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = str(int(value))  # an id Excel took for a number
        written = str(value).strip()
        if not written:
            return None
        if len(written) > chars_max:
            raise InvalidInput(f"must be at most {chars_max} characters", field=column)
        return written

    try:
        phone = text("phone", consumer_ref_chars_max)
        if text("external_id", external_id_chars_max) is None:
            # In a file every order, a direct one too (its register number, 登记编号), is
            # named: so the same file sent again records nothing twice.
            raise InvalidInput("is required in a file, for every channel", field="external_id")
        return check_order(WorkOrder(
            channel=parse_channel(str(cell("channel")).strip()),
            external_id=text("external_id", external_id_chars_max),
            received_at=parse_received_at(cell("received_at")),
            merchant_id=text("merchant_id", 64),
            credit_code=text("credit_code", 40),
            category=check_text(str(cell("category")), "category", category_chars_max),
            amount_fen=_amount(cell("amount_fen")),
            card_id=text("card_id", 64),
            consumer_id=pseudonym(phone, "phone") if phone is not None else None,
            row=number))
    except LedgerError as exc:
        return RowRefusal(number, exc.field or "row", exc.detail)


def _amount(value: Cell) -> int:
    if _blank(value):
        return 0
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise InvalidInput("must be a whole number of fen", field="amount_fen")
        return int(value)
    written = str(value).strip()
    if not written.isascii() or not written.isdigit():
        raise InvalidInput("must be a whole number of fen", field="amount_fen")
    return int(written)


def parse_received_at(value: object, field: str = "received_at") -> datetime:
    """A time of receipt: ISO 8601, or `YYYY-MM-DD HH:MM[:SS]`, or an Excel date; without an
    offset it is China Standard Time (the hotlines' own)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        written = str(value).strip().replace("/", "-")
        try:
            moment = datetime.fromisoformat(written)
        except ValueError:
            raise InvalidInput("must be a date and time (2026-03-02 09:30)",
                               field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_STANDARD_TIME)
    return moment.astimezone(UTC)


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA_STANDARD_TIME).date()
