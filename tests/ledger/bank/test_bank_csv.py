"""Our statement CSV (docs/bank-formats.md): entries, balance rows, and row-and-column refusals."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.bank.statements import CSV_COLUMNS, Direction, EntryStatus, parse_csv
from tests.support.bank import refused, sample

HEADER = ",".join(CSV_COLUMNS)


def _csv(*rows: str) -> bytes:
    return "\n".join((HEADER, *rows)).encode() + b"\n"


def _entry_row(**cells: str) -> str:
    values = {"account": "A1", "currency": "CNY", "booking_date": "2024-03-01",
              "direction": "CRDT", "amount": "1.00", "status": "BOOK"} | cells
    return ",".join(values.get(column, "") for column in CSV_COLUMNS)


def test_the_sample_gives_one_statement_per_account() -> None:
    first, second = parse_csv(sample("statement.csv"))
    assert (first.format, first.account, first.currency) == ("csv", "6226090000000048", "CNY")
    assert first.statement_id == "6226090000000048:CNY:2024-03-01"  # named by its day
    assert first.message_id is not None and first.message_id.startswith("sha256:")
    assert (first.opening_booked_fen, first.closing_booked_fen) == (10_000_000, 10_073_456)
    assert first.closing_date == date(2024, 3, 1)
    sale, release, pending = first.entries
    assert sale.position == "row 3"
    assert sale.details[0].remittance_unstructured == "Lesson pack, 10 sessions"  # quoted comma
    assert sale.details[0].counterparty_name == "张三"
    assert sale.details[0].creditor_reference == "YF-CARD-000042"
    assert release.direction is Direction.debit
    assert pending.status is EntryStatus.pending and pending.booking_date is None
    assert (second.opening_booked_fen, second.closing_booked_fen) == (-1000, -1000)
    assert second.entries[1].reversal


def test_columns_may_come_in_any_order_with_a_bom() -> None:
    columns = list(reversed(CSV_COLUMNS))
    row = {"account": "A1", "currency": "CNY", "booking_date": "2024-03-01",
           "direction": "DBIT", "amount": "0.01", "status": "BOOK"}
    data = "\ufeff" + ",".join(columns) + "\r\n" + ",".join(row.get(c, "") for c in columns)
    [statement] = parse_csv(data.encode())
    assert statement.entries[0].amount_fen == 1
    assert statement.entries[0].direction is Direction.debit


@pytest.mark.parametrize(("row", "field", "says"), [
    (_entry_row(amount="1.001"), "row 2, amount", "at most 2 decimals"),
    (_entry_row(amount="1e2"), "row 2, amount", "not digits with a decimal point"),
    (_entry_row(amount="NaN"), "row 2, amount", "not digits with a decimal point"),
    (_entry_row(amount="-1.00"), "row 2, amount", "must not be negative"),
    (_entry_row(amount="0"), "row 2, amount", "must not be zero"),
    (_entry_row(amount=""), "row 2, amount", "amount is required"),
    (_entry_row(direction="CREDIT"), "row 2, direction", "not CRDT, DBIT, OPBD or CLBD"),
    (_entry_row(status="DONE"), "row 2, status", "not BOOK, PDNG or INFO"),
    (_entry_row(booking_date="01/03/2024"), "row 2, booking_date", "not a date"),
    (_entry_row(booking_date=""), "row 2, booking_date", "needs its booking_date"),
    (_entry_row(value_date="2024-02-30"), "row 2, value_date", "not a date"),
    (_entry_row(currency="cny"), "row 2, currency", "three-letter"),
    (_entry_row(reversal="yes"), "row 2, reversal", "not true or false"),
    (_entry_row(account=""), "row 2, account", "account is required"),
    (_entry_row(direction="OPBD"), "row 2, status", "must be empty on a balance"),
    ("A1,CNY,2024-03-01", "row 2", "3 cells, the header has 14"),
])
def test_a_malformed_row_is_refused_with_its_row_and_column(row: str, field: str,
                                                            says: str) -> None:
    refused(parse_csv, _csv(row), field=field, says=says)


def test_the_header_must_name_every_column_once() -> None:
    refused(parse_csv, b"account,currency\n", field="row 1", says="missing columns: booking_date")
    refused(parse_csv, (HEADER + ",extra\n").encode(), field="row 1", says="unknown column")
    refused(parse_csv, (HEADER + ",amount\n").encode(), field="row 1", says="appears twice")
    refused(parse_csv, _csv(), field="row 2", says="no rows after the header")


def test_balances_are_checked_and_not_repeated() -> None:
    opening = _entry_row(direction="OPBD", amount="5.00", status="")
    closing = _entry_row(direction="CLBD", amount="5.00", status="")
    refused(parse_csv, _csv(opening, _entry_row(), closing), field="account A1 CNY",
            says="balances do not add up")
    refused(parse_csv, _csv(opening, opening), field="row 3, direction", says="a second OPBD")


def test_bad_quoting_is_refused_with_its_line() -> None:
    data = _csv('A1,CNY,2024-03-01,,CRDT,1.00,BOOK,"E2E"x,,,,,,')
    refused(parse_csv, data, field="line 2", says="malformed CSV")


def test_blank_rows_are_skipped_but_numbering_follows_the_file() -> None:
    data = _csv(",,,,,,,,,,,,,", _entry_row(amount="x"))
    refused(parse_csv, data, field="row 3, amount", says="not digits")
