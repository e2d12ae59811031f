"""The references an import writes, checked by the database once per statement (migration
0008) as strictly as the foreign keys they replace: a line names an existing file, a cleared
deposit an existing line, a line an existing statement (migration 0013), and a line keeps its
id, file and statement."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from tests.support.db import pg_error, rolled_back, row
from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 9)
MISSING_ID = 10**15  # no file, line or deposit has this id
LINE_COLUMNS = ("id, file_id, bank_id, account, statement_id, position, direction, status, "
                "reversal, amount_fen, statement_ref")


@pytest.fixture(scope="module")
def imported(banking: Banking) -> dict[str, Any]:
    """A file whose one line cleared one sale's deposit."""
    banking.set_today(DAY)
    m = banking.merchant("BANK-REFS")
    sale = banking.sell_at(m, 10_000)
    banking.import_file("BANK-REFS", camt053([Stmt(m.account, "REFS-1", 0, DAY, (
        entry("CRDT", 10_000, DAY, cref=sale["reference"]),))]))
    return row(banking.engine, "SELECT d.id AS deposit_id, d.cleared_line_id AS line_id, "
                               "l.file_id, l.statement_ref "
                               "FROM expected_deposits d JOIN statement_lines l "
                               "ON l.id = d.cleared_line_id WHERE d.reference = :r",
               r=sale["reference"])


def insert_lines(conn: Connection, file_ids: list[int], statement_refs: list[int]) -> None:
    """Lines naming these files and statements, in one statement (as COPY writes a file's
    lines)."""
    values = ", ".join(f"(nextval(pg_get_serial_sequence('statement_lines', 'id')), {f}, "
                       f"'BANK-REFS', 'acct', 'REFS-X', 'row {n}', 'CRDT', 'BOOK', false, 1, {r})"
                       for n, (f, r) in enumerate(zip(file_ids, statement_refs, strict=True)))
    conn.execute(text(f"INSERT INTO statement_lines ({LINE_COLUMNS}) VALUES {values}"))


def test_a_line_naming_no_file_is_refused_even_among_good_ones(
        banking: Banking, imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn, pytest.raises(IntegrityError) as caught:
        insert_lines(conn, [imported["file_id"], MISSING_ID, imported["file_id"]],
                     [imported["statement_ref"]] * 3)
    assert pg_error(caught) == (
        "23503", "yufu: a statement line names a statement file that does not exist")


def test_a_line_naming_no_statement_is_refused_even_among_good_ones(
        banking: Banking, imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn, pytest.raises(IntegrityError) as caught:
        insert_lines(conn, [imported["file_id"]] * 3,
                     [imported["statement_ref"], MISSING_ID, imported["statement_ref"]])
    assert pg_error(caught) == (
        "23503", "yufu: a statement line names a statement that does not exist")


def test_lines_naming_their_file_are_accepted(banking: Banking,
                                              imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn:
        insert_lines(conn, [imported["file_id"]] * 3, [imported["statement_ref"]] * 3)


@pytest.mark.parametrize("change", ["id = id + 1000000", f"file_id = {MISSING_ID}",
                                    "file_id = NULL", "statement_ref = statement_ref + 1"])
def test_a_line_keeps_its_id_and_file(owner_engine: Engine, imported: dict[str, Any],
                                      change: str) -> None:
    # The owner's statement: the service's role may not update a line at all.
    with rolled_back(owner_engine) as conn, pytest.raises(ProgrammingError) as caught:
        conn.execute(text(f"UPDATE statement_lines SET {change} WHERE id = :id"),
                     {"id": imported["line_id"]})
    assert pg_error(caught) == ("42501", "yufu: a statement line keeps its id and its file")


def test_a_deposit_cleared_by_no_line_is_refused(banking: Banking,
                                                 imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text("UPDATE expected_deposits SET cleared_line_id = :line WHERE id = :id"),
                     {"line": MISSING_ID, "id": imported["deposit_id"]})
    assert pg_error(caught) == (
        "23503", "yufu: a deposit names a statement line that does not exist")


def test_a_deposit_inserted_naming_no_line_is_refused(banking: Banking,
                                                      imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text(
            "INSERT INTO expected_deposits SELECT :new_id, merchant_id, card_id, "
            "reference || '-copy', batch_reference, amount_fen, open_fen, expected_by, "
            "status, :line FROM expected_deposits WHERE id = :id"),
            {"new_id": MISSING_ID, "line": MISSING_ID, "id": imported["deposit_id"]})
    assert pg_error(caught) == (
        "23503", "yufu: a deposit names a statement line that does not exist")


def test_a_deposit_naming_an_existing_line_is_accepted(banking: Banking,
                                                       imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn:
        conn.execute(text("UPDATE expected_deposits SET cleared_line_id = NULL WHERE id = :id"),
                     {"id": imported["deposit_id"]})
        conn.execute(text("UPDATE expected_deposits SET cleared_line_id = :line WHERE id = :id"),
                     {"line": imported["line_id"], "id": imported["deposit_id"]})


def insert_break(conn: Connection, line_ids: list[int | None]) -> None:
    """Breaks naming these lines, in one statement (as a batch writes them): migration 0014."""
    values = ", ".join(
        f"(nextval(pg_get_serial_sequence('reconciliation_breaks', 'id')), 'BANK-REFS', NULL, "
        f"'unmatched_line', 'test', 1, {'NULL' if line is None else line}, 'refs-{n}', "
        f"DATE '2026-11-09', 'open', (SELECT max(seq) FROM journal_entries))"
        for n, line in enumerate(line_ids))
    conn.execute(text(
        "INSERT INTO reconciliation_breaks (id, bank_id, merchant_id, kind, reason, amount_fen, "
        f"line_id, item_ref, opened_on, status, opened_seq) VALUES {values}"))


def test_a_break_naming_no_line_is_refused_even_among_good_ones(
        banking: Banking, imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn, pytest.raises(IntegrityError) as caught:
        insert_break(conn, [imported["line_id"], MISSING_ID, None])
    assert pg_error(caught) == (
        "23503", "yufu: a break names a statement line that does not exist")


def test_breaks_naming_lines_or_none_are_accepted(banking: Banking,
                                                  imported: dict[str, Any]) -> None:
    with rolled_back(banking.engine) as conn:
        insert_break(conn, [imported["line_id"], None])


def test_a_break_keeps_its_line(owner_engine: Engine, imported: dict[str, Any]) -> None:
    with rolled_back(owner_engine) as conn, pytest.raises(ProgrammingError) as caught:
        insert_break(conn, [imported["line_id"]])
        conn.execute(text("UPDATE reconciliation_breaks SET line_id = :other "
                          "WHERE line_id = :line"),
                     {"other": MISSING_ID, "line": imported["line_id"]})
    assert pg_error(caught) == ("42501", "yufu: a break keeps the statement line it names")
