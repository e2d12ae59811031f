"""What the partner-bank endpoints answer (api/routes/banks.py): see api/schemas.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.custody_schemas import ResolvedRefund, ResolvedRelease
from api.schemas import BankStatus, Day, Hex, NextAfter, NextAfterName, Out, Seq

Match = Literal["match", "difference"]


class CrossVerified(Out):
    merchant_id: str
    bank_id: str
    account: str
    statement_id: str
    closing_date: Day
    bank_balance_fen: int
    ledger_balance_fen: int
    difference_fen: int
    result: Match
    journal_seq: Seq


class ImportedStatement(Out):
    account: str
    statement_id: str
    merchant_id: str
    lines: int
    deposits_cleared_fen: int
    outcome: dict[str, int] = Field(description="lines by what they matched")
    cross_verification: CrossVerified | None


class StatementImport(Out):
    duplicate: bool = Field(description="true: this very file was imported before; nothing "
                                        "was done")
    file_id: int
    sha256: Hex
    journal_seq: Seq
    statements: list[ImportedStatement]
    overdue_breaks: list[int] | None = Field(
        default=None, description="breaks opened for sales the bank has not shown by their "
                                  "date (absent on a duplicate)")


class PaymentInstruction(Out):
    end_to_end_id: str
    amount_fen: int
    currency: str
    debtor_account: str
    creditor_name: str
    creditor_account: str
    remittance: str


class PaymentInstructions(Out):
    items: list[PaymentInstruction]
    next_after: NextAfterName


class InstructionAnswer(Out):
    end_to_end_id: str
    bank_status: BankStatus
    journal_seq: Seq
    instruction: ResolvedRelease | ResolvedRefund | None = Field(
        default=None, description="on a rejection: the instruction, failed")


class Break(Out):
    id: int
    bank_id: str
    merchant_id: str | None
    kind: Literal["unmatched_line", "missing_line", "returned_after_settlement",
                  "unmatched_reversal"]
    reason: str
    amount_fen: int
    line_id: int | None
    item_ref: str | None
    opened_on: Day
    status: Literal["open", "resolved"]
    resolution: str | None
    opened_seq: Seq
    resolved_seq: Seq | None
    age_days: int


class OpenBreaks(Out):
    bank_id: str
    merchant_id: str | None
    open: int
    amount_fen: int
    oldest_age_days: int


class Breaks(Out):
    items: list[Break]
    next_after: NextAfter
    open: int = Field(description="open breaks the filter matches, on every page alike")
    by_bank_merchant: list[OpenBreaks] = Field(
        description="the open breaks the filter matches per bank and merchant, on every page "
                    "alike")


class ResolvedBreak(Out):
    break_id: int
    status: Literal["resolved"]
    journal_seq: Seq


class ResolvedInBulk(Out):
    break_id: int
    journal_seq: Seq


class ResolvedBreaks(Out):
    resolved: list[ResolvedInBulk]
    count: int
    more: bool = Field(description="a filter picks more open breaks than one request "
                                   "resolves: send it again for the next ones")


class CrossVerification(Out):
    id: int
    bank_id: str
    merchant_id: str
    account: str
    statement_id: str
    file_id: int
    closing_date: Day
    bank_balance_fen: int
    ledger_balance_fen: int
    difference_fen: int
    verified_seq: Seq
    result: Match


class CrossVerifications(Out):
    items: list[CrossVerification]
    next_after: NextAfter
