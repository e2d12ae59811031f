"""What reconciliation reads and writes, typed: the bank half of the doorway
(`ledger.commands.Books.bank`). ledger/db/bank_store.py implements it.

Lookups (by an id, a file's hash) are right at any point of a command: what they find is then
read through the batch, which holds every change not yet written. Queries (which rows match a
condition: pending, past a date, named by a reference, of a bank) see every earlier command's
writes and are refused once the running command has changed something: so an import runs all
of its queries first, then decides and changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple, Protocol

from ledger.bank.matching import OpenItems
from ledger.bank.reconciliation import Break, BreakKind, CrossVerification, Deposit
from ledger.custody.chart import deposit_expected_days


class InstructionKind(StrEnum):
    release = "release"
    refund = "refund"


@dataclass(frozen=True, slots=True)
class InstructionRef:
    """Where an instruction a statement line can name lives: read it through the custody
    store (`Books.custody.release` or `refund`), which holds what this batch did to it."""

    kind: InstructionKind
    id: int


@dataclass
class MerchantItems:
    """What one merchant's statement lines can match (its pending deposits and pending
    instructions, in id order), and where those items live."""

    items: OpenItems = field(default_factory=lambda: OpenItems(deposit_expected_days))
    deposit_ids: dict[str, int] = field(default_factory=dict)  # reference -> deposit
    instructions: dict[str, InstructionRef] = field(default_factory=dict)  # end-to-end id


@dataclass(frozen=True, slots=True)
class ImportedFile:
    id: int
    imported_seq: int
    bank_id: str


@dataclass(frozen=True, slots=True)
class OverdueDeposit:
    id: int
    reference: str
    open_fen: int
    expected_by: date


@dataclass(frozen=True, slots=True)
class StatementFile:
    """A statement file exactly as the bank sent it, with its hash."""

    id: int
    bank_id: str
    sha256: bytes
    format: str
    filename: str
    body: bytes
    statements: int
    lines: int
    imported_seq: int


@dataclass(frozen=True, slots=True)
class SeenStatement:
    """A statement imported before: its id and the file it came in."""

    id: int
    file_id: int


@dataclass(frozen=True, slots=True)
class ImportedStatement:
    """One statement of a file, as imported (`bank_statements`)."""

    id: int
    bank_id: str
    account: str
    number: str
    fingerprint: bytes
    file_id: int
    position: str
    kind: str  # ledger.bank.model.StatementKind's value
    format: str
    opening_booked_fen: int | None
    closing_booked_fen: int | None
    opening_date: date | None
    closing_date: date | None
    lines: int
    imported_seq: int


class StatementLine(NamedTuple):
    """One imported line and what it matched: a tuple, as a day's file has 100,000."""

    id: int
    file_id: int
    bank_id: str
    account: str
    statement_id: str
    position: str
    direction: str  # ledger.bank.model.Direction's value
    status: str  # ledger.bank.model.EntryStatus's value: BOOK, or NOTB if not booked
    reversal: bool
    amount_fen: int
    booking_date: date | None
    end_to_end_id: str | None
    creditor_reference: str | None
    bank_reference: str | None
    counterparty: str | None
    matched_kind: str  # ledger.bank.reconciliation.LineKind's value
    matched_ref: str | None
    statement_ref: int  # its statement (ImportedStatement.id)
    uetr: str | None


@dataclass(frozen=True)
class BreakSelection:
    """Open breaks picked by what they are about (each given narrows the pick)."""

    bank_id: str | None = None
    merchant_id: str | None = None
    kind: BreakKind | None = None
    opened_before: date | None = None  # opened on an earlier day


class BankStore(Protocol):
    # -- lookups -------------------------------------------------------------------------
    def file_by_hash(self, sha256: bytes) -> ImportedFile | None:
        """A file imported before (files are written at once, and never change)."""
        ...

    def deposit(self, deposit_id: int) -> Deposit: ...
    def reconciliation_break(self, break_id: int) -> Break: ...

    def reconciliation_breaks(self, break_ids: Sequence[int]) -> dict[int, Break]:
        """Those of the breaks that exist, by id, read in one go."""
        ...

    # -- queries -------------------------------------------------------------------------
    def merchants_by_account(self, bank_id: str) -> dict[str, str]:
        """The bank's merchants by the custody account each is filed with."""
        ...

    def statements_seen(self, bank_id: str, fingerprints: Collection[bytes]
                        ) -> dict[bytes, SeenStatement]:
        """Which of these statements (by fingerprint) were imported before."""
        ...

    def open_items(self, merchant_ids: Collection[str]) -> dict[str, MerchantItems]:
        """Each merchant's pending deposits and pending instructions."""
        ...

    def deposits_named(self, merchant_id: str, references: Collection[str]
                       ) -> dict[str, list[int]]:
        """The merchant's deposits each reference names: its sale, or a day batch's sales."""
        ...

    def instructions_named(self, end_to_end_ids: Collection[str]
                           ) -> dict[str, InstructionRef]:
        """The release or refund instruction each end-to-end id names, whatever its state."""
        ...

    def overdue_deposits(self, merchant_id: str, before: date) -> list[OverdueDeposit]:
        """Pending deposits expected before that day that have no break of their own yet."""
        ...

    def open_break_ids(self, which: BreakSelection, count: int) -> list[int]:
        """The ids of the `count` oldest open breaks `which` picks."""
        ...

    # -- ids and writes ------------------------------------------------------------------
    def line_ids(self, count: int) -> list[int]:
        """`count` consecutive new statement line ids."""
        ...

    def items_named(self, merchant_id: str, references: Collection[str],
                    amounts: Collection[int], booked: tuple[date, date] | None
                    ) -> MerchantItems:
        """A query: what `open_items` would give for one merchant, narrowed to what lines
        can match: the deposits and day batches `references` name, the instructions they
        name, and the deposits of `amounts` a credit booked within `booked` (first and last
        day) may match by amount. A slice of a big file reads this, not every open item."""
        ...

    def add_break(self, opened: Break) -> None: ...
    def resolve_break(self, break_id: int, resolution: str, resolved_seq: int) -> None: ...
    def add_cross_verification(self, verified: CrossVerification) -> None: ...

    def attach_line(self, deposit_ids: Sequence[int], line_id: int) -> None:
        """Deposits a person confirmed by hand: this line is the bank's evidence of them."""
        ...

    def reopen_deposits(self, deposit_ids: Sequence[int]) -> None:
        """Cleared deposits whose credit the bank reversed: in transit again, in full."""
        ...

    def write_import(self, file: StatementFile, lines: Sequence[StatementLine],
                     cleared: Mapping[int, int]) -> None:
        """The file, its lines and the deposits they cleared (deposit id -> line id): the
        last thing an import does, after every check, straight to the database."""
        ...

    def write_statements(self, statements: Sequence[ImportedStatement]) -> None:
        """A file's statements, straight to the database, after its file and before any of
        their lines."""
        ...

    def write_file(self, file: StatementFile) -> None:
        """The file alone, straight to the database: the last thing a staged import does
        (its lines come in slices, `write_lines`)."""
        ...

    def write_lines(self, lines: Sequence[StatementLine], cleared: Mapping[int, int]) -> None:
        """A slice's lines and the deposits they cleared: the last thing a slice does."""
        ...
