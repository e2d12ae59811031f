"""Reconciliation's states and records: the deposits the ledger expects on a custody
account's statement, the breaks the bank and the ledger disagree on, and what each imported
statement line was found to be. Pure, like the rest of `ledger.bank`.

A card sale's custodied share is an expected deposit, `pending` until the bank shows it (or a
person confirms it by hand) and it is `cleared`; a reversal of its credit makes it `pending`
again. A break is `open` until an operator says how it was `resolved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from ledger.bank.matching import Match


class DepositStatus(StrEnum):
    pending = "pending"
    cleared = "cleared"


class BreakStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class BreakKind(StrEnum):
    unmatched_line = "unmatched_line"  # a line that names nothing the ledger can settle
    missing_line = "missing_line"  # a sale whose money the bank has not shown by its date
    returned_after_settlement = "returned_after_settlement"  # paid, then not quite returned
    unmatched_reversal = "unmatched_reversal"  # a reversal of nothing this ledger matched


class LineStatus(StrEnum):
    """Whether the bank booked a statement line (`statement_lines.status`)."""

    booked = "BOOK"
    not_booked = "NOTB"  # pending, or information only: it moves nothing


class LineKind(StrEnum):
    """What an imported statement line was found to be (`statement_lines.matched_kind`)."""

    deposit = "deposit"
    deposit_batch = "deposit_batch"
    not_booked = "not_booked"
    deposit_confirmed_by_hand = "deposit_confirmed_by_hand"
    payment_settled = "payment_settled"
    payment_failed = "payment_failed"
    payment_returned = "payment_returned"
    reversal = "reversal"
    break_ = "break"


# The decisions that are a line's kind as they stand: it clears what it names, or nothing.
KIND_OF_MATCH: Final = {Match.deposit: LineKind.deposit,
                        Match.deposit_batch: LineKind.deposit_batch,
                        Match.not_booked: LineKind.not_booked}


@dataclass(frozen=True, slots=True)
class Deposit:
    """An expected deposit (one card sale's custodied share), as the batch holds it."""

    id: int  # the sale's journal entry
    merchant_id: str
    reference: str
    amount_fen: int
    open_fen: int  # what the bank has not shown yet: a manual confirmation may cover part
    status: DepositStatus
    cleared_line_id: int | None  # the statement line that showed it; none if by hand

    @property
    def confirmed_by_hand(self) -> bool:
        return self.status == DepositStatus.cleared and self.cleared_line_id is None


@dataclass(frozen=True, slots=True)
class Break:
    """Something the bank and the ledger disagree on (a reconciliation break)."""

    id: int
    bank_id: str
    merchant_id: str | None
    kind: BreakKind
    reason: str
    amount_fen: int
    line_id: int | None
    item_ref: str  # what it is about: a line, or a sale's reference
    opened_on: date
    status: BreakStatus
    resolution: str | None
    opened_seq: int
    resolved_seq: int | None


@dataclass(frozen=True, slots=True)
class CrossVerification:
    """交叉验证: a statement's closing booked balance against the ledger's custody cash."""

    verified_seq: int  # its journal entry, and its id
    bank_id: str
    merchant_id: str
    account: str
    statement_id: str
    file_id: int
    closing_date: date
    bank_balance_fen: int
    ledger_balance_fen: int

    @property
    def difference_fen(self) -> int:
        return self.bank_balance_fen - self.ledger_balance_fen
