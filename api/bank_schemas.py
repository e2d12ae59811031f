"""What the partner-bank endpoints answer (api/routes/banks.py): see api/schemas.py."""

from __future__ import annotations

from typing import Any, Literal

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
    """One statement of the file, in file order, and what became of it (`status`)."""

    position: str = Field(description="where in the file it starts: `Stmt[2]`, `line 40`")
    account: str | None
    statement_id: str | None = Field(description="the bank's own number, which may repeat")
    status: Literal["imported", "already_imported", "refused"]
    kind: Literal["final", "interim"] | None = None
    entries: int | None = None
    opening_booked_fen: int | None = None
    closing_booked_fen: int | None = None
    closing_date: Day | None = None
    fingerprint: Hex | None = Field(default=None, description="the hash of its content: "
                                    "the same content is the same statement")
    reason: str | None = Field(default=None, description="why it was refused")
    field: str | None = Field(default=None, description="where it was refused")
    earlier_statement: int | None = Field(default=None, description="already imported: as")
    earlier_file_id: int | None = Field(default=None, description="already imported: in")
    statement_ref: int | None = Field(default=None, description="imported: its id")
    merchant_id: str | None = None
    lines: int | None = None
    deposits_cleared_fen: int | None = None
    outcome: dict[str, int] | None = Field(default=None,
                                           description="imported: lines by what they matched")
    cross_verification: CrossVerified | None = None


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


class StatementsRead(Out):
    """A file as read, nothing written (`dry_run=true`; `yufu statements parse --json`)."""

    dry_run: bool = True
    file_refused: str | None = Field(description="why an import would refuse the whole file "
                                                 "(422), or null: it would be taken")
    format: str
    statements: list[dict[str, Any]] = Field(
        description="every statement in file order, as read (`read`: true, with its balances "
                    "and entries) or refused (`read`: false, with `reason` and `field`); "
                    "`import` says what importing the file would make of it")
    read: int
    refused: int


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


class BankProfileOut(Out):
    name: str
    bank: str = Field(description="the bank or layout, for people")
    format: Literal["csv", "xlsx"]
    reader: Literal["columns", "yufu-csv"] = Field(
        description="columns: read by header and columns; yufu-csv: the documented CSV")
    encoding: str | None = Field(description="a CSV's encoding; null: detected")
    header_row: int | None = Field(description="the header's row (1-based); null: the first "
                                               "row naming every column")
    columns: dict[str, list[str]] = Field(description="field -> the header names it may have")
    title_labels: dict[str, list[str]]
    footer_labels: list[str]


class BankProfiles(Out):
    items: list[BankProfileOut]
