"""The normalised statement: what every bank format is parsed into.

One shape for camt.053, camt.054, MT940 and CSV, so reconciliation (DOMAIN.md flow 8) is
written once. Amounts are integer fen; an entry's amount is positive and its `direction` says
which way it moved the balance. Balances are signed: a DBIT balance is negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from ledger.bank import limits
from ledger.errors import LedgerError


class StatementRejected(LedgerError):
    """A statement, or a whole file, that is not accepted. `field` names where: an element
    path (`Stmt[1]/Ntry[3]/Amt`), a line (`line 12`) or a CSV row and column (`row 5, amount`).

    Raised inside one statement of a file of several, it refuses that statement only (the
    parser reports it as a `RefusedStatement`); raised about the file (not XML, not text, too
    big), it refuses the file.
    """

    code = "statement_rejected"
    status = 422


class Direction(StrEnum):
    """The way an entry moved the account: a reversal is booked in the opposite direction
    to the entry it reverses, and `direction` is that booking (ISO 20022 CdtDbtInd usage)."""

    credit = "CRDT"
    debit = "DBIT"


class EntryStatus(StrEnum):
    booked = "BOOK"
    pending = "PDNG"
    info = "INFO"


class StatementKind(StrEnum):
    """A statement of the day's end (camt.053, MT940: its closing balance is cross-verified)
    or an interim report during the day (camt.052, MT942: no closing balance, and its lines
    come again in the day's statement)."""

    final = "final"
    interim = "interim"


@dataclass(frozen=True, slots=True)
class TxDetail:
    """One underlying transaction of an entry (camt TxDtls; MT940 and CSV have one per entry)."""

    amount_fen: int
    end_to_end_id: str | None = None
    creditor_reference: str | None = None
    remittance_unstructured: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None
    bank_reference: str | None = None
    uetr: str | None = None  # SWIFT gpi's unique end-to-end transaction reference (UUID)


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One booking line. `position` says where it came from (`Stmt[1]/Ntry[3]`, `line 12`,
    `row 5`), so a reconciliation break can point a person at the bank's own file."""

    position: str
    amount_fen: int
    direction: Direction
    status: EntryStatus
    booking_date: date | None
    value_date: date | None
    reversal: bool
    bank_reference: str | None
    details: tuple[TxDetail, ...]
    additional_info: str | None = None  # camt AddtlNtryInf, MT940 :86: of a batch

    @property
    def signed_fen(self) -> int:
        return self.amount_fen if self.direction is Direction.credit else -self.amount_fen


@dataclass(frozen=True, slots=True)
class Statement:
    """One account's statement (camt Stmt or Ntfctn, one MT940 message, one CSV account).

    `format` is the message type with its version (`camt.053.001.08`, `mt940`, `csv`).
    Balances are None where the format has none (camt.054) or the file gave none.
    """

    format: str
    message_id: str | None
    statement_id: str
    account: str
    currency: str
    opening_booked_fen: int | None
    closing_booked_fen: int | None
    closing_date: date | None
    created_at: datetime | None
    entries: tuple[StatementEntry, ...]
    kind: StatementKind = StatementKind.final
    opening_date: date | None = None  # the opening balance's date, where the file gives one
    position: str = ""  # where in the file the statement starts: `Stmt[2]`, `line 40`


@dataclass(frozen=True, slots=True)
class RefusedStatement:
    """One statement of a file that cannot be read, with why; the file's others still are.

    `account` and `statement_id` are what could be read of it before the fault, if anything.
    """

    position: str
    reason: str
    field: str
    account: str | None = None
    statement_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A statement file as read: every statement in file order, each read or refused."""

    format: str
    items: tuple[Statement | RefusedStatement, ...]

    @property
    def statements(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.items if isinstance(s, Statement))

    @property
    def refused(self) -> tuple[RefusedStatement, ...]:
        return tuple(s for s in self.items if isinstance(s, RefusedStatement))

    def strict(self) -> list[Statement]:
        """The statements, or the first refusal raised: for a caller that takes a file whole."""
        for item in self.items:
            if isinstance(item, RefusedStatement):
                raise StatementRejected(f"{item.position}: {item.reason}", field=item.field)
        return list(self.statements)


def refused(position: str, exc: StatementRejected, account: str | None = None,
            statement_id: str | None = None) -> RefusedStatement:
    """A statement refused by `exc`, which named the field at fault."""
    return RefusedStatement(position, exc.detail, exc.field or position, account,
                            statement_id)


def booked_movement_fen(entries: tuple[StatementEntry, ...]) -> int:
    """What the booked entries moved the balance by; pending and info entries move nothing."""
    return sum(e.signed_fen for e in entries if e.status is EntryStatus.booked)


def check_balances(statement: Statement, field: str) -> None:
    """Opening plus booked movement must equal closing, when the file gives both balances.

    A statement that does not add up has lost or gained a line on the way (truncation, a bank
    bug, an edit): it is refused rather than reconciled against.
    """
    opening, closing = statement.opening_booked_fen, statement.closing_booked_fen
    if opening is None or closing is None:
        return
    moved = booked_movement_fen(statement.entries)
    if opening + moved != closing:
        raise StatementRejected(
            f"balances do not add up: opening {opening} fen + booked entries {moved} fen "
            f"!= closing {closing} fen", field=field)


def check_statement_size(data: bytes) -> None:
    """Refuse an oversized file before any parser sees it."""
    if len(data) > limits.statement_bytes_max:
        raise StatementRejected(
            f"file is {len(data)} bytes, over the {limits.statement_bytes_max} byte limit",
            field="file")
