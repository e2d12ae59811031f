"""Operating-status files (经营状态): the lists a regulator imports (经营异常名录, 失信被执行人,
涉诉, 欠税, 注销, and 舆情 flags), as CSV or XLSX, one record a row, keyed by credit code.

A header row names the columns, in English or Chinese: `credit_code` (统一社会信用代码),
`kind` (类型), `source` (来源), and optionally `listed` (状态: 列入 / 移出, or true / false;
列入 if left out) and `note` (备注). Every row is an entry or a refusal naming its row and
field; the file as a whole is refused only if it cannot be read or has no such header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.bank.model import StatementRejected
from ledger.bank.xlsx import xlsx_rows
from ledger.custody.merchants import check_credit_code
from ledger.errors import InvalidInput
from ledger.supervision.signals import RECORDED_KINDS, SignalKind

status_file_bytes_max: Final = 5_000_000
status_file_rows_max: Final = 20_000
source_chars_max: Final = 200
note_chars_max: Final = 500

COLUMNS: Final = {
    "credit_code": "credit_code", "统一社会信用代码": "credit_code", "信用代码": "credit_code",
    "kind": "kind", "类型": "kind", "source": "source", "来源": "source",
    "listed": "listed", "状态": "listed", "note": "note", "备注": "note"}
KINDS: Final = {
    "经营异常名录": SignalKind.abnormal_operations_list,
    "失信被执行人": SignalKind.court_listed_defaulter, "涉诉": SignalKind.litigation,
    "涉案诉讼": SignalKind.litigation, "欠税": SignalKind.tax_arrears,
    "注销": SignalKind.deregistering, "舆情": SignalKind.public_sentiment,
    **{k.value: k for k in RECORDED_KINDS}}
LISTED: Final = {"列入": True, "移出": False, "true": True, "false": False, "1": True,
                 "0": False, "": True}


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One record or flag, as sent or as a file's row (`row`: its number in the file, the
    header being row 1; 0 when entered by API)."""

    credit_code: str
    kind: SignalKind
    listed: bool  # false: the listing is lifted (移出)
    source: str
    note: str = ""
    row: int = 0


def check_kind(text: object, field: str) -> SignalKind:
    kind = KINDS.get(text.strip()) if isinstance(text, str) else None
    if kind is None:
        raise InvalidInput(f"must be one of {', '.join(sorted(RECORDED_KINDS))} (or 经营异常名录, "
                           "失信被执行人, 涉诉, 欠税, 注销, 舆情)", field=field)
    return kind


def check_text(value: object, field: str, chars_max: int, required: bool) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise InvalidInput("is required", field=field)
    if len(text) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters", field=field)
    return text


def entry_of(raw: dict[str, Any], row: int = 0) -> StatusEntry:
    """An entry from named values, or InvalidInput naming the field at fault."""
    listed_text = str(raw.get("listed", "")).strip().lower()
    if listed_text not in LISTED:
        raise InvalidInput("must be 列入 or 移出 (true or false)", field="listed")
    return StatusEntry(
        credit_code=check_credit_code(raw.get("credit_code")),
        kind=check_kind(raw.get("kind"), "kind"), listed=LISTED[listed_text],
        source=check_text(raw.get("source"), "source", source_chars_max, True),
        note=check_text(raw.get("note", ""), "note", note_chars_max, False), row=row)


def read_status_file(data: bytes) -> tuple[list[StatusEntry], list[dict[str, Any]]]:
    """(entries, refused rows {"row", "field", "reason"}); InvalidInput for a file that
    cannot be read at all."""
    if len(data) > status_file_bytes_max:
        raise InvalidInput(f"must be at most {status_file_bytes_max} bytes", field="file")
    rows = _rows(data)
    if not rows:
        raise InvalidInput("is empty", field="file")
    header = [COLUMNS.get(str(cell).strip().lower()) or COLUMNS.get(str(cell).strip())
              for cell in rows[0]]
    missing = sorted({"credit_code", "kind", "source"} - set(filter(None, header)))
    if missing:
        raise InvalidInput(f"the header row has no {missing[0]} column", field="file")
    if len(rows) - 1 > status_file_rows_max:
        raise InvalidInput(f"must hold at most {status_file_rows_max} rows", field="file")
    entries, refused = [], []
    for number, cells in enumerate(rows[1:], start=2):
        if not any(str(c).strip() for c in cells):
            refused.append({"row": number, "field": "row", "reason": "is empty"})
            continue
        named = {name: str(cell) for name, cell in zip(header, cells, strict=False) if name}
        try:
            entries.append(entry_of(named, number))
        except InvalidInput as refusal:
            refused.append({"row": number, "field": refusal.field, "reason": str(refusal)})
    return entries, refused


def _rows(data: bytes) -> Sequence[Sequence[Any]]:
    if data.startswith(b"PK"):
        try:
            return xlsx_rows(data)
        except StatementRejected as exc:
            raise InvalidInput(f"is not a readable XLSX workbook: {exc}", field="file") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return list(csv.reader(io.StringIO(text)))
    raise InvalidInput("is neither XLSX nor CSV in UTF-8 or GB18030", field="file")
