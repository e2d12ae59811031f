"""SQL for reconciliation: open ledger items of a bank, imported statements, breaks."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import or_, select, text, tuple_

from ledger.bank.matching import OpenItems
from ledger.custody.chart import deposit_expected_days
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.db.bulk import copy_binary_row, copy_text
from ledger.db.custody_store import load_rows
from ledger.errors import NotFound, require

INSTRUCTION_TABLES = (c.ReleaseInstruction, c.RefundInstruction)
FILE_COLUMNS = ("id", "bank_id", "sha256", "format", "filename", "body", "statements", "lines",
                "imported_seq")
LINE_COLUMNS = ("id", "file_id", "bank_id", "account", "statement_id", "position", "direction",
                "status", "reversal", "amount_fen", "booking_date", "end_to_end_id",
                "creditor_reference", "bank_reference", "counterparty", "matched_kind",
                "matched_ref")
NULL = "\\N"  # COPY's text format
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass
class MerchantItems:
    """What one merchant's statement lines can match, and where those items live."""

    items: OpenItems = field(default_factory=lambda: OpenItems(deposit_expected_days))
    deposit_ids: dict[str, int] = field(default_factory=dict)  # reference -> id
    instruction_ids: dict[str, tuple[Any, int]] = field(default_factory=dict)  # e2e -> row


def merchants_by_account(batch: Batch, bank_id: str) -> dict[str, str]:
    rows = batch.conn.execute(select(c.Merchant.custody_account, c.Merchant.id)
                              .where(c.Merchant.bank_id == bank_id)).all()
    return {str(row[0]): str(row[1]) for row in rows}


def file_by_hash(batch: Batch, digest: bytes) -> Any:
    return batch.conn.execute(select(b.StatementFile.id, b.StatementFile.imported_seq)
                              .where(b.StatementFile.sha256 == digest)).first()


def statements_seen(batch: Batch, bank_id: str, keys: Sequence[tuple[str, str]]
                    ) -> set[tuple[str, str]]:
    """Which of these (account, statement id) were imported before: by their lines (the
    unique index leads with these columns) or, for a statement without lines, by its
    cross-verification."""
    if not keys:
        return set()
    wanted = list(set(keys))
    seen: set[tuple[str, str]] = set()
    for table in (b.StatementLine, b.CrossVerification):
        rows = batch.conn.execute(
            select(table.account, table.statement_id)
            .where(table.bank_id == bank_id,
                   tuple_(table.account, table.statement_id).in_(wanted)).distinct()).all()
        seen.update((account, statement_id) for account, statement_id in rows)
    return seen


def open_items(batch: Batch, merchant_ids: Sequence[str]) -> dict[str, MerchantItems]:
    """Each merchant's pending deposits and pending instructions, in id order. The
    instructions (and a refund's card) come into the batch now, in a query per table, since
    a line that pays one changes them; deposits are written at the end (`write_import`)."""
    found = {merchant_id: MerchantItems() for merchant_id in merchant_ids}
    if not found:
        return found
    deposits = batch.conn.execute(
        select(b.ExpectedDeposit.id, b.ExpectedDeposit.merchant_id, b.ExpectedDeposit.reference,
               b.ExpectedDeposit.batch_reference, b.ExpectedDeposit.amount_fen,
               b.ExpectedDeposit.open_fen, b.ExpectedDeposit.expected_by)
        .where(b.ExpectedDeposit.merchant_id.in_(list(found)),
               b.ExpectedDeposit.status == "pending")
        .order_by(b.ExpectedDeposit.id))
    lookback = timedelta(days=deposit_expected_days)
    sold_on: dict[date, date] = {}  # a day's sales share their dates
    for deposit_id, merchant_id, reference, batch_reference, amount, open_fen, due in deposits:
        mine = found[merchant_id]
        day = sold_on.get(due) or sold_on.setdefault(due, due - lookback)
        mine.items.add_deposit(reference, batch_reference, amount, open_fen, day)
        mine.deposit_ids[reference] = deposit_id
    for table in INSTRUCTION_TABLES:
        ids = list(batch.conn.execute(
            select(table.id).where(table.merchant_id.in_(list(found)),
                                   table.status == "pending", table.amount_fen > 0)
            .order_by(table.id)).scalars())
        load_rows(batch, table, ids)
        rows = [batch.rows.get(table, i) for i in ids]
        if table is c.RefundInstruction:
            load_rows(batch, c.Card, sorted({r["card_id"] for r in rows if r is not None}))
        for r in rows:
            if r is None or r["status"] != "pending":
                continue
            mine = found[r["merchant_id"]]
            mine.items.add_instruction(r["end_to_end_id"], r["amount_fen"])
            mine.instruction_ids[r["end_to_end_id"]] = (table, r["id"])
    return found


def line_ids(batch: Batch, count: int) -> list[int]:
    """`count` consecutive new statement line ids in one round trip: the sequence is moved on
    by `count` at once. Safe because statement lines are only ever made inside a batch, which
    holds the chain-head lock, so no one draws from this sequence in between; and a sequence
    never rolls back, so the ids are unique whether or not the batch commits."""
    if count == 0:
        return []
    last = batch.conn.execute(text(
        "SELECT setval(pg_get_serial_sequence('statement_lines', 'id'), "
        "nextval(pg_get_serial_sequence('statement_lines', 'id')) + :more)"),
        {"more": count - 1}).scalar_one()
    return list(range(int(last) - count + 1, int(last) + 1))


def write_import(batch: Batch, file_row: dict[str, Any], lines: Sequence[dict[str, Any]],
                 cleared: dict[int, int]) -> None:
    """The file, its lines (COPY) and the deposits they cleared (one UPDATE), straight to the
    database: the last thing an import does, after every check (see `Batch.write`). A
    cleared deposit the batch already holds is changed there too, so it stays true."""
    conn = batch.writing_directly()
    copy_binary_row(conn, b.StatementFile.__tablename__, FILE_COLUMNS, _file_fields(file_row))
    copy_text(conn, b.StatementLine.__tablename__, LINE_COLUMNS,
              "".join([_line_copy(row) for row in lines]))
    direct: list[tuple[int, int]] = []
    for deposit_id, line_id in cleared.items():
        if batch.rows.get(b.ExpectedDeposit, deposit_id) is None:
            direct.append((deposit_id, line_id))
        else:
            batch.rows.update(b.ExpectedDeposit, deposit_id, open_fen=0, status="cleared",
                              cleared_line_id=line_id)
    if not direct:
        return
    done = conn.execute(text(
        "UPDATE expected_deposits AS d SET status = 'cleared', open_fen = 0, "
        "cleared_line_id = v.line_id "
        "FROM unnest(CAST(:ids AS bigint[]), CAST(:lines AS bigint[])) AS v(id, line_id) "
        "WHERE d.id = v.id AND d.status = 'pending'"),
        {"ids": _bigint_array([d for d, _ in direct]),
         "lines": _bigint_array([line for _, line in direct])})
    require(done.rowcount == len(direct), "every deposit a line cleared was pending")


def _file_fields(row: dict[str, Any]) -> list[bytes | None]:
    """The statement_files row in COPY's binary format, in FILE_COLUMNS order."""
    return [struct.pack("!q", row["id"]), row["bank_id"].encode(), row["sha256"],
            row["format"].encode(), row["filename"].encode(), row["body"],
            struct.pack("!i", row["statements"]), struct.pack("!i", row["lines"]),
            struct.pack("!q", row["imported_seq"])]


def _bigint_array(values: list[int]) -> str:
    """An array parameter as PostgreSQL's array text, `{1,2,3}`: for 100,000 ids about 0.3 s
    less than psycopg2's ARRAY[...] of as many literals, each parsed and planned."""
    return "{" + ",".join(map(str, values)) + "}"


def _line_copy(r: dict[str, Any]) -> str:
    """A statement line in COPY's text format, written here rather than by the general
    formatter: a day's file has 100,000 of them, and this costs a fifth as much."""
    t = _copy_field
    booked = r["booking_date"]
    return (f"{r['id']}\t{r['file_id']}\t{t(r['bank_id'])}\t{t(r['account'])}\t"
            f"{t(r['statement_id'])}\t{t(r['position'])}\t{r['direction']}\t{r['status']}\t"
            f"{'t' if r['reversal'] else 'f'}\t{r['amount_fen']}\t"
            f"{booked.isoformat() if booked is not None else NULL}\t{t(r['end_to_end_id'])}\t"
            f"{t(r['creditor_reference'])}\t{t(r['bank_reference'])}\t{t(r['counterparty'])}\t"
            f"{t(r['matched_kind'])}\t{t(r['matched_ref'])}\n")


def _copy_field(value: str | None) -> str:
    if value is None:
        return NULL
    if "\\" in value or not value.isprintable():  # rare: the bank's text with a tab, say
        return value.translate(_COPY_ESCAPES)
    return value


def deposits_named(batch: Batch, merchant_id: str, reference: str) -> list[dict[str, Any]]:
    """The merchant's deposit with this reference, or every deposit of this day batch, as the
    batch sees them now (cleared earlier in this import, too)."""
    ids = list(batch.conn.execute(
        select(b.ExpectedDeposit.id)
        .where(b.ExpectedDeposit.merchant_id == merchant_id,
               or_(b.ExpectedDeposit.reference == reference,
                   b.ExpectedDeposit.batch_reference == reference))
        .order_by(b.ExpectedDeposit.id)).scalars())
    load_rows(batch, b.ExpectedDeposit, ids)
    rows = [batch.rows.get(b.ExpectedDeposit, i) for i in ids]
    return [row for row in rows if row is not None]


def overdue_deposits(batch: Batch, merchant_ids: list[str], before: date) -> list[Any]:
    """Pending deposits past their date that have no open break yet."""
    flagged = select(b.ReconciliationBreak.item_ref).where(
        b.ReconciliationBreak.kind == "missing_line")
    return list(batch.conn.execute(
        select(b.ExpectedDeposit.id, b.ExpectedDeposit.reference, b.ExpectedDeposit.merchant_id,
               b.ExpectedDeposit.open_fen, b.ExpectedDeposit.expected_by)
        .where(b.ExpectedDeposit.merchant_id.in_(merchant_ids),
               b.ExpectedDeposit.status == "pending", b.ExpectedDeposit.expected_by < before,
               b.ExpectedDeposit.reference.not_in(flagged))
        .order_by(b.ExpectedDeposit.id)).all())


def break_row(batch: Batch, break_id: int) -> dict[str, Any]:
    load_rows(batch, b.ReconciliationBreak, [break_id])
    row = batch.rows.get(b.ReconciliationBreak, break_id)
    if row is None:
        raise NotFound(f"break {break_id} does not exist", field="break_id")
    return row


def instruction_by_e2e(batch: Batch, end_to_end_id: str) -> tuple[Any, dict[str, Any]] | None:
    for table in INSTRUCTION_TABLES:
        row_id = batch.conn.execute(select(table.id).where(
            table.end_to_end_id == end_to_end_id)).scalar()
        if row_id is not None:
            return table, instruction_row(batch, table, row_id)
    return None


def instruction_row(batch: Batch, table: Any, row_id: int) -> dict[str, Any]:
    load_rows(batch, table, [row_id])
    row = batch.rows.get(table, row_id)
    assert row is not None
    return row
