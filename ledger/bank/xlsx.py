"""The cells of an Excel workbook (.xlsx) a bank exported, read safely.

An .xlsx file is a zip of XML parts. Before openpyxl opens it, the zip's directory is checked:
at most `xlsx_members_max` parts, at most `statement_bytes_max` bytes uncompressed in all, and
no part compressed more than `xlsx_ratio_max` times, so a zip bomb is refused by its directory
without inflating a byte. The declared sizes bind: Python's zipfile stops a part at its
declared size and checks its CRC, so a part that lies about its size fails rather than grows.
openpyxl then reads it read-only with `data_only=True`: formulas are never evaluated, a formula
cell gives the value the bank's Excel cached; its XML goes through defusedxml (installed), so no
DTD or entity is expanded.

Cells come out as text, `date` (Excel dates) or `Decimal` (Excel numbers). Excel stores every
number as a binary float, so a number cell is taken as `Decimal(repr(value))`: `repr` is the
shortest decimal that reads back as the same float, and for an amount below 2^53 / 100 yuan
(that is, at most 15 significant digits) the shortest decimal of the float nearest `1234.56` is
`1234.56` itself. The amount reader then rounds to the fen, which removes only the noise of a
sum Excel computed (0.1 + 0.2 = 0.30000000000000004), and refuses a number further than a
millionth of a fen from a whole fen (a real third decimal).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import Any, Final

from ledger.bank import limits
from ledger.bank.model import StatementRejected

Cell = str | date | Decimal

# A bank's one-sheet export has about ten parts (workbook, sheet, styles, shared strings).
xlsx_members_max: Final = 1_000
# Worksheet XML compresses 10 to 30 times; a run of identical rows somewhat more. A zip bomb
# is thousands of times.
xlsx_ratio_max: Final = 200
_WORKBOOK_PART: Final = "xl/workbook.xml"


def xlsx_rows(data: bytes) -> list[list[Cell]]:
    """The first worksheet's rows, each a list of cells ("" for an empty one); a workbook
    with data on another sheet too is refused rather than half read."""
    _check_zip(data)
    import openpyxl  # here: only a workbook's reader pays for importing it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises what its parts raise: all are a bad file
        raise _unreadable(exc) from None
    try:
        return _sheet_rows(book)
    except StatementRejected:
        raise
    except Exception as exc:  # read-only openpyxl parses a sheet only as it is iterated, so
        # a broken sheet raises here what load_workbook would have (ParseError, ValueError..)
        raise _unreadable(exc) from None
    finally:
        book.close()


def _unreadable(exc: Exception) -> StatementRejected:
    return StatementRejected(f"not a readable Excel workbook: {type(exc).__name__}: "
                             f"{str(exc)[:200]}", field="file")


def _sheet_rows(book: Any) -> list[list[Cell]]:
    sheets = book.worksheets
    if not sheets:
        raise StatementRejected("a workbook without a worksheet", field="file")
    for sheet in sheets:
        _check_declared_width(sheet)
    rows = [[_cell(v) for v in values] for values in _bounded(_raw_rows(book, sheets[0]))]
    for sheet in sheets[1:]:
        if any(any(v not in (None, "") for v in values)
               for values in _bounded(_raw_rows(book, sheet))):
            raise StatementRejected(f"a second sheet with data ({sheet.title[:40]!r}): "
                                    "a statement is one sheet", field="file")
    return rows


def _check_declared_width(sheet: Any) -> None:
    """The sheet's own `<dimension>`, read when openpyxl opened it: cheap, so checked first."""
    declared = sheet.max_column
    if declared is not None and declared > limits.xlsx_columns_max:
        raise StatementRejected(f"sheet {sheet.title[:40]!r} declares {declared} columns, "
                                f"over the limit of {limits.xlsx_columns_max}", field="file")


def _raw_rows(book: Any, sheet: Any) -> Iterator[tuple[object, ...]]:
    """Each row's values, as openpyxl's read-only `iter_rows(values_only=True)` gives them,
    but from its sheet parser directly: `iter_rows` pads every row to its widest cell, so a
    row of one cell in column XFD became 16,384 values (a 47 KB file held 2 GB), and with
    `max_col` it drops a cell past it unseen. Here a row is refused by name, holding only the
    cells the XML has, once a cell lies past `xlsx_columns_max`; every row is read, not the
    size the file claims (its `<dimension>` may be stale)."""
    from openpyxl.worksheet._reader import WorkSheetParser  # what ReadOnlyWorksheet reads with

    with sheet._get_source() as source:  # openpyxl internals: see the docstring
        parser = WorkSheetParser(source, sheet._shared_strings, data_only=True,
                                 epoch=book.epoch, date_formats=book._date_formats,
                                 timedelta_formats=book._timedelta_formats)
        expected = 1
        for number, cells in parser.parse():
            if number < expected:
                raise StatementRejected(f"row {number} comes after row {expected - 1}: "
                                        "rows out of order", field=f"row {number}")
            for _ in range(expected, number):  # rows the XML leaves out are empty
                yield ()
            expected = number + 1
            yield _row_values(cells, number)


def _row_values(cells: list[dict[str, Any]], number: int) -> tuple[object, ...]:
    width = max((cell["column"] for cell in cells), default=0)
    if width > limits.xlsx_columns_max:
        raise StatementRejected(f"a cell in column {width}, over the limit of "
                                f"{limits.xlsx_columns_max} columns", field=f"row {number}")
    values: list[object] = [None] * width
    for cell in cells:
        values[cell["column"] - 1] = cell["value"]
    return tuple(values)


def _bounded(rows: Iterable[tuple[object, ...]]) -> list[tuple[object, ...]]:
    taken: list[tuple[object, ...]] = []
    for values in rows:
        if len(taken) >= limits.statement_entries_max:
            raise StatementRejected(f"over the limit of {limits.statement_entries_max} rows",
                                    field=f"row {len(taken) + 1}")
        taken.append(values)
    return taken


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:  # ValueError: a directory that
        # points before the file's start, a name flagged UTF-8 that is not (UnicodeDecodeError)
        raise StatementRejected(f"not an Excel workbook (.xlsx): {exc}", field="file") from None
    if len(members) > xlsx_members_max:
        raise StatementRejected(f"a zip of {len(members)} parts, over the limit of "
                                f"{xlsx_members_max}", field="file")
    total = sum(m.file_size for m in members)
    if total > limits.statement_bytes_max:
        raise StatementRejected(f"{total} bytes uncompressed, over the "
                                f"{limits.statement_bytes_max} byte limit", field="file")
    for m in members:
        if m.file_size > xlsx_ratio_max * max(m.compress_size, 1):
            raise StatementRejected(f"part {m.filename[:80]!r} inflates {m.file_size} bytes "
                                    f"from {m.compress_size}: over {xlsx_ratio_max} times "
                                    "(a zip bomb?)", field="file")
    if _WORKBOOK_PART not in {m.filename for m in members}:
        raise StatementRejected("a zip without xl/workbook.xml: not an Excel workbook",
                                field="file")


def _cell(value: object) -> Cell:
    if value is None:
        return ""
    if isinstance(value, date):  # a datetime too: the reader takes its date
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value):
        return Decimal(repr(value))  # exact: see the module's docstring
    return str(value)  # text, TRUE/FALSE, NaN: an amount's reader refuses these by name
