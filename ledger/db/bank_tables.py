"""Partner banks: imported statements, their lines, expected deposits, breaks and the daily
cross-verification of custody balances (交叉验证)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class StatementFile(Base):
    """A statement file exactly as the bank sent it, with its hash (journaled on import)."""

    __tablename__ = "statement_files"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    bank_id: Mapped[str] = mapped_column(index=True)
    sha256: Mapped[bytes] = mapped_column(unique=True)
    format: Mapped[str]
    filename: Mapped[str]
    body: Mapped[bytes]
    statements: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    imported_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))


class BankStatement(Base):
    """One imported statement, unique by its bank and fingerprint (ledger/bank/identity.py):
    its content, not its number, says whether it was imported before (migration 0013)."""

    __tablename__ = "bank_statements"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    bank_id: Mapped[str]
    account: Mapped[str]
    number: Mapped[str]  # the bank's own statement number (:28C:, Stmt/Id), which repeats
    fingerprint: Mapped[bytes]
    file_id: Mapped[int] = mapped_column(ForeignKey("statement_files.id"))
    position: Mapped[str]  # where in its file it starts
    kind: Mapped[str]
    format: Mapped[str]
    opening_booked_fen: Mapped[int | None]
    closing_booked_fen: Mapped[int | None]
    opening_date: Mapped[date | None] = mapped_column(Date)
    closing_date: Mapped[date | None] = mapped_column(Date)
    lines: Mapped[int]
    imported_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("kind IN ('final','interim')", name="kind_known"),
        CheckConstraint("lines >= 0", name="lines_counted"),
        UniqueConstraint("bank_id", "fingerprint", name="uq_bank_statements_fingerprint"),
        Index("ix_bank_statements_account", "bank_id", "account", "number"),
    )


class StatementLine(Base):
    """One booked entry (or one detail of a batched entry) and what it matched."""

    __tablename__ = "statement_lines"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # -> statement_files.id, checked once per statement rather than by a foreign key (see
    # migration 0008). Not indexed: files never change, and nothing lists a file's lines.
    file_id: Mapped[int]
    bank_id: Mapped[str]
    account: Mapped[str]
    statement_id: Mapped[str]
    position: Mapped[str]
    direction: Mapped[str]
    status: Mapped[str]
    reversal: Mapped[bool]
    amount_fen: Mapped[int]
    booking_date: Mapped[date | None] = mapped_column(Date)
    end_to_end_id: Mapped[str | None]
    creditor_reference: Mapped[str | None]
    bank_reference: Mapped[str | None]
    counterparty: Mapped[str | None]
    matched_kind: Mapped[str | None]
    matched_ref: Mapped[str | None]
    # -> bank_statements.id, checked once per statement like file_id (migration 0013)
    statement_ref: Mapped[int]
    uetr: Mapped[str | None]
    __table_args__ = (
        UniqueConstraint("statement_ref", "position", name="uq_statement_lines_position"),
        CheckConstraint("direction IN ('CRDT','DBIT')", name="direction_known"),
        # A zero-amount line is information the bank gave, kept; it moves nothing.
        CheckConstraint("amount_fen > 0 OR (amount_fen = 0 AND status = 'NOTB')",
                        name="amount_counted"),
        Index("ix_statement_lines_refs", "bank_id", "end_to_end_id"),
    )


class ExpectedDeposit(Base):
    """The custodied share of a card sale, expected on the custody account's statement."""

    __tablename__ = "expected_deposits"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # the sale's seq
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"))
    reference: Mapped[str] = mapped_column(unique=True)
    batch_reference: Mapped[str] = mapped_column(index=True)
    amount_fen: Mapped[int]
    # What the bank has not shown yet: a manual deposit confirmation may cover part of it.
    open_fen: Mapped[int]
    expected_by: Mapped[date] = mapped_column(Date)
    status: Mapped[str]
    # -> statement_lines.id, checked once per statement (see migration 0008)
    cleared_line_id: Mapped[int | None]
    __table_args__ = (
        CheckConstraint("status IN ('pending','cleared')", name="status_known"),
        CheckConstraint("amount_fen > 0 AND open_fen BETWEEN 0 AND amount_fen",
                        name="amount_positive"),
        # The pending ones only: a deposit cleared leaves the index (see migration 0007).
        Index("ix_expected_deposits_pending", "merchant_id", "expected_by",
              postgresql_where=text("status = 'pending'")),
    )


class ReconciliationBreak(Base):
    """Something the bank and the ledger disagree on, until an operator resolves it."""

    __tablename__ = "reconciliation_breaks"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    bank_id: Mapped[str] = mapped_column(index=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str]
    reason: Mapped[str]
    amount_fen: Mapped[int]
    # -> statement_lines.id, checked once per statement rather than by a foreign key (see
    # migration 0014: a foreign key's check, planned while the table was small, scanned it).
    line_id: Mapped[int | None]
    item_ref: Mapped[str | None]
    opened_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str]
    resolution: Mapped[str | None]
    opened_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    resolved_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("status IN ('open','resolved')", name="status_known"),
        CheckConstraint("kind IN ('unmatched_line','missing_line','returned_after_settlement',"
                        "'unmatched_reversal')", name="kind_known"),
        UniqueConstraint("kind", "item_ref", name="uq_reconciliation_breaks_item"),
    )


class CrossVerification(Base):
    """A statement's closing booked balance against the ledger's custody balance."""

    __tablename__ = "cross_verifications"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    bank_id: Mapped[str]
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    account: Mapped[str]
    statement_id: Mapped[str]
    file_id: Mapped[int] = mapped_column(ForeignKey("statement_files.id"))
    closing_date: Mapped[date] = mapped_column(Date)
    bank_balance_fen: Mapped[int]
    ledger_balance_fen: Mapped[int]
    difference_fen: Mapped[int]
    verified_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
