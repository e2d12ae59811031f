"""SQL for reconciliation: open ledger items of a bank, imported statements, breaks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.db.custody_store import deposit_expected_days, load_rows
from ledger.errors import NotFound


@dataclass
class OpenItems:
    """What a bank's statement can match, consumed as lines match it."""

    deposits: dict[str, int] = field(default_factory=dict)  # reference -> open fen
    deposit_ids: dict[str, int] = field(default_factory=dict)  # reference -> id
    deposit_merchant: dict[str, str] = field(default_factory=dict)
    batches: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    by_amount_date: dict[tuple[int, date], list[str]] = field(
        default_factory=lambda: defaultdict(list))
    instructions: dict[str, int] = field(default_factory=dict)  # end-to-end id -> fen
    instruction_rows: dict[str, tuple[Any, int]] = field(default_factory=dict)

    def forget(self, refs: tuple[str, ...]) -> None:
        for ref in refs:
            self.deposits.pop(ref, None)
            self.instructions.pop(ref, None)
        for batch_refs in self.batches.values():
            batch_refs[:] = [(r, a) for r, a in batch_refs if r not in refs]
        for candidates in self.by_amount_date.values():
            candidates[:] = [r for r in candidates if r not in refs]


def merchants_by_account(batch: Batch, bank_id: str) -> dict[str, str]:
    rows = batch.conn.execute(select(c.Merchant.custody_account, c.Merchant.id)
                              .where(c.Merchant.bank_id == bank_id)).all()
    return {str(row[0]): str(row[1]) for row in rows}


def file_by_hash(batch: Batch, digest: bytes) -> Any:
    return batch.conn.execute(select(b.StatementFile.id, b.StatementFile.imported_seq)
                              .where(b.StatementFile.sha256 == digest)).first()


def statements_seen(batch: Batch, bank_id: str) -> set[tuple[str, str]]:
    rows = batch.conn.execute(select(b.StatementLine.account, b.StatementLine.statement_id)
                              .where(b.StatementLine.bank_id == bank_id).distinct()).all()
    return {(account, statement_id) for account, statement_id in rows}


def open_items(batch: Batch, merchant_ids: list[str]) -> OpenItems:
    items = OpenItems()
    deposits = batch.conn.execute(
        select(b.ExpectedDeposit.id, b.ExpectedDeposit.reference, b.ExpectedDeposit.merchant_id,
               b.ExpectedDeposit.batch_reference, b.ExpectedDeposit.open_fen,
               b.ExpectedDeposit.expected_by)
        .where(b.ExpectedDeposit.merchant_id.in_(merchant_ids),
               b.ExpectedDeposit.status == "pending")).all()
    for d in deposits:
        items.deposits[d.reference] = d.open_fen
        items.deposit_ids[d.reference] = d.id
        items.deposit_merchant[d.reference] = d.merchant_id
        items.batches[d.batch_reference].append((d.reference, d.open_fen))
        sold_on = d.expected_by - timedelta(days=deposit_expected_days)
        items.by_amount_date[(d.open_fen, sold_on)].append(d.reference)
    for table in (c.ReleaseInstruction, c.RefundInstruction):
        rows = batch.conn.execute(
            select(table.id, table.end_to_end_id, table.amount_fen)
            .where(table.merchant_id.in_(merchant_ids), table.status == "pending")).all()
        for r in rows:
            items.instructions[r.end_to_end_id] = r.amount_fen
            items.instruction_rows[r.end_to_end_id] = (table, r.id)
    return items


def clear_deposits(batch: Batch, ids: list[int], line_id: int) -> None:
    load_rows(batch, b.ExpectedDeposit, ids)
    for deposit_id in ids:
        batch.rows.update(b.ExpectedDeposit, deposit_id, open_fen=0, status="cleared",
                          cleared_line_id=line_id)


def overdue_deposits(batch: Batch, merchant_ids: list[str], before: date) -> list[Any]:
    """Pending deposits past their date that have no open break yet."""
    flagged = select(b.ReconciliationBreak.item_ref).where(
        b.ReconciliationBreak.kind == "missing_line")
    return list(batch.conn.execute(
        select(b.ExpectedDeposit.id, b.ExpectedDeposit.reference, b.ExpectedDeposit.merchant_id,
               b.ExpectedDeposit.open_fen, b.ExpectedDeposit.expected_by)
        .where(b.ExpectedDeposit.merchant_id.in_(merchant_ids),
               b.ExpectedDeposit.status == "pending", b.ExpectedDeposit.expected_by < before,
               b.ExpectedDeposit.reference.not_in(flagged))).all())


def break_row(batch: Batch, break_id: int) -> dict[str, Any]:
    load_rows(batch, b.ReconciliationBreak, [break_id])
    row = batch.rows.get(b.ReconciliationBreak, break_id)
    if row is None:
        raise NotFound(f"break {break_id} does not exist", field="break_id")
    return row


def instruction_by_e2e(batch: Batch, end_to_end_id: str) -> tuple[Any, dict[str, Any]] | None:
    for table in (c.ReleaseInstruction, c.RefundInstruction):
        row_id = batch.conn.execute(select(table.id).where(
            table.end_to_end_id == end_to_end_id)).scalar()
        if row_id is not None:
            load_rows(batch, table, [row_id])
            row = batch.rows.get(table, row_id)
            assert row is not None
            return table, row
    return None


def cleared_deposit(batch: Batch, reference: str) -> dict[str, Any] | None:
    row_id = batch.conn.execute(select(b.ExpectedDeposit.id).where(
        b.ExpectedDeposit.reference == reference,
        b.ExpectedDeposit.status == "cleared")).scalar()
    if row_id is None:
        return None
    load_rows(batch, b.ExpectedDeposit, [row_id])
    row = batch.rows.get(b.ExpectedDeposit, row_id)
    return row if row is not None and row["status"] == "cleared" else None
