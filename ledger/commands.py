"""What a command is, and the one doorway through which it reaches the books.

A use case's write is a `Command`. The writer (ledger/db/writer.py) runs many commands back to
back in one group commit, so before it runs any of them it asks each what it will read
(`reads`) and loads those rows for the whole batch, one query per kind. Then each command's
`run` sees only `Books`: append an event, record a balanced transaction, draw an id, open an
account, ask a balance, and the typed stores of custody, banks and trust. It never sees a
connection, a table or the writer's own bookkeeping.

The order rules that used to be the command's to remember are the doorway's now:
- an account learns the number of the entry that opens it from the doorway (the next one the
  command appends), not from the command's guess;
- a store's query (which rows match a condition) sees every earlier command's writes, and a
  query after the running command changed something is refused (`InvariantViolation`),
  since it could not see that change and would answer stale: such a command reads first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ledger.books import AccountKind, Posting, TransactionDraft

if TYPE_CHECKING:  # the stores' own declarations, which use the types of this module
    from ledger.audit_store import AuditStore
    from ledger.bank.store import BankStore
    from ledger.custody.store import CustodyStore
    from ledger.jobs import JobStore
    from ledger.supervision.ban_store import BanStore
    from ledger.supervision.complaint_store import ComplaintStore
    from ledger.supervision.report_store import ReportStore
    from ledger.supervision.store import SupervisionStore
    from ledger.trust_store import TrustStore


@dataclass(frozen=True, slots=True)
class EntryRef:
    """A journal entry just appended: its number, its hash and its time as written."""

    seq: int
    entry_hash: bytes
    ts: str


class Reads(NamedTuple):
    """What a command will read, declared before any command of its batch runs. (A tuple:
    every till's write makes one, and a tuple is made faster than a frozen dataclass.)"""

    accounts: tuple[int, ...] = ()
    cards: tuple[str, ...] = ()  # with their merchants and the accounts of both
    products: tuple[str, ...] = ()  # with their merchants and the merchants' accounts


NOTHING = Reads()


class IdKind(Enum):
    """What the books number from a sequence of its own (ids drawn before the row exists)."""

    account = "account"
    api_key = "api_key"
    rule_set = "rule_set"
    consumption = "consumption"
    release = "release"
    refund = "refund"
    statement_file = "statement_file"
    bank_statement = "bank_statement"
    reconciliation_break = "reconciliation_break"
    consumer_code = "consumer_code"
    job = "job"
    complaint = "complaint"
    complaint_deadlines = "complaint_deadlines"
    supervision_rules = "supervision_rules"


class Checkpoint(Protocol):
    """Where `Books.rewind` goes back to: opaque to commands."""


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account to open: its kind and name, whose it is, and its currency and rule."""

    kind: AccountKind
    name: str
    merchant_id: str | None = None
    bank_id: str | None = None  # held at this bank (custody cash and money in transit)
    currency: str = "CNY"
    non_negative: bool = True


Leg = tuple[int, int]  # (account id, amount in fen): one posting of a transaction in CNY


class Books(Protocol):
    """The doorway: everything a command may do during its group commit."""

    @property
    def custody(self) -> CustodyStore: ...

    @property
    def bank(self) -> BankStore: ...

    @property
    def trust(self) -> TrustStore: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def jobs(self) -> JobStore: ...

    @property
    def complaints(self) -> ComplaintStore: ...

    @property
    def bans(self) -> BanStore: ...

    @property
    def reports(self) -> ReportStore: ...

    @property
    def supervision(self) -> SupervisionStore: ...

    def append(self, kind: str, details: Mapping[str, Any]) -> EntryRef:
        """Journal an event that moves no money."""
        ...

    def post(self, draft: TransactionDraft, kind: str = "transaction",
             details: Mapping[str, Any] | None = None) -> EntryRef:
        """Check and record a balanced transaction, journaled as `kind`."""
        ...

    def record(self, kind: str, legs: Sequence[Leg], details: Mapping[str, Any]) -> EntryRef:
        """Journal `kind` as a balanced transaction of the legs that are not zero, or as a
        bare event if all are."""
        ...

    def draw_id(self, kind: IdKind) -> int:
        """A new id for a row of `kind`, unique whether or not the batch commits."""
        ...

    def open_account(self, account: NewAccount) -> int:
        """A new account, opened by the next entry the command appends; its id."""
        ...

    def balance(self, account_id: int) -> int:
        """The account's normal balance in fen, as this batch leaves it so far."""
        ...

    def postings_of(self, transaction_id: int) -> list[Posting]:
        """A recorded transaction's postings in order, this batch's own included; none if
        there is no such transaction."""
        ...

    def checkpoint(self) -> Checkpoint:
        """A point to rewind to: a step that may be refused, inside a command that goes on."""
        ...

    def rewind(self, checkpoint: Checkpoint) -> None:
        """Undo everything since `checkpoint` (only what is still in the batch's buffers)."""
        ...


class Command(Protocol):
    """A use case's write: declares what it reads, then reads, checks and writes through
    `Books`. Subclass it to inherit `reads` (nothing) for a command with nothing to say."""

    def reads(self) -> Reads:
        return NOTHING

    def run(self, books: Books) -> dict[str, Any]: ...
