"""The doorway on a batch: what the batch's commands see of it (`ledger.commands.Books`).

A command is handed the batch's `Door`, never the batch: the batch's flush, carry, marks and
id pools are the writer's (ledger/db/group_commit.py), and a flow cannot reach them even by
mistake. The typed stores are made here, once per batch, on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select

from ledger.books import Account, Posting, TransactionDraft
from ledger.commands import Checkpoint, EntryRef, IdKind, Leg, NewAccount
from ledger.db import tables as t
from ledger.errors import require

if TYPE_CHECKING:
    from ledger.audit_store import AuditStore
    from ledger.bank.store import BankStore
    from ledger.custody.store import CustodyStore
    from ledger.db.batch import Batch, Mark
    from ledger.jobs import JobStore
    from ledger.supervision.ban_store import BanStore
    from ledger.supervision.complaint_store import ComplaintStore
    from ledger.supervision.report_store import ReportStore
    from ledger.supervision.store import SupervisionStore
    from ledger.trust_store import TrustStore

# The table whose identity sequence numbers each kind of row.
ID_SEQUENCES: dict[IdKind, str] = {
    IdKind.account: "accounts", IdKind.api_key: "api_keys", IdKind.rule_set: "rule_sets",
    IdKind.consumption: "consumptions", IdKind.release: "release_instructions",
    IdKind.refund: "refund_instructions", IdKind.statement_file: "statement_files",
    IdKind.bank_statement: "bank_statements",
    IdKind.reconciliation_break: "reconciliation_breaks",
    IdKind.consumer_code: "consumer_codes", IdKind.job: "jobs",
    IdKind.complaint: "complaints", IdKind.complaint_deadlines: "complaint_deadlines",
    IdKind.supervision_rules: "supervision_rules"}



class Door:
    """`Books` over one batch."""

    __slots__ = ("_audit", "_bank", "_bans", "_complaints", "_custody", "_jobs", "_reports",
                 "_supervision", "_trust", "batch")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self._custody: CustodyStore | None = None
        self._bank: BankStore | None = None
        self._trust: TrustStore | None = None
        self._audit: AuditStore | None = None
        self._jobs: JobStore | None = None
        self._bans: BanStore | None = None
        self._complaints: ComplaintStore | None = None
        self._reports: ReportStore | None = None
        self._supervision: SupervisionStore | None = None

    # The stores build on ledger.db.batch, which builds on this module: imported when first
    # used, once per batch.
    @property
    def custody(self) -> CustodyStore:
        if self._custody is None:
            from ledger.db.custody_store import CustodyRows
            self._custody = CustodyRows(self.batch)
        return self._custody

    @property
    def bank(self) -> BankStore:
        if self._bank is None:
            from ledger.db.bank_store import BankRows
            self._bank = BankRows(self.batch)
        return self._bank

    @property
    def trust(self) -> TrustStore:
        if self._trust is None:
            from ledger.db.trust_store import TrustRows
            self._trust = TrustRows(self.batch)
        return self._trust

    @property
    def audit(self) -> AuditStore:
        if self._audit is None:
            from ledger.db.audit_store import AuditRows
            self._audit = AuditRows(self.batch)
        return self._audit

    @property
    def jobs(self) -> JobStore:
        if self._jobs is None:
            from ledger.db.job_store import JobRows
            self._jobs = JobRows(self.batch)
        return self._jobs

    @property
    def bans(self) -> BanStore:
        if self._bans is None:
            from ledger.db.ban_store import BanRows
            self._bans = BanRows(self.batch)
        return self._bans

    @property
    def complaints(self) -> ComplaintStore:
        if self._complaints is None:
            from ledger.db.complaint_store import ComplaintRows
            self._complaints = ComplaintRows(self.batch)
        return self._complaints

    @property
    def reports(self) -> ReportStore:
        if self._reports is None:
            from ledger.db.report_store import ReportRows
            self._reports = ReportRows(self.batch)
        return self._reports

    @property
    def supervision(self) -> SupervisionStore:
        if self._supervision is None:
            from ledger.db.supervision_store import SupervisionRows
            self._supervision = SupervisionRows(self.batch)
        return self._supervision

    def append(self, kind: str, details: Mapping[str, Any]) -> EntryRef:
        return self.batch.append(kind, details)

    def post(self, draft: TransactionDraft, kind: str = "transaction",
             details: Mapping[str, Any] | None = None) -> EntryRef:
        return self.batch.post(draft, kind, details)

    def record(self, kind: str, legs: Sequence[Leg], details: Mapping[str, Any]) -> EntryRef:
        postings = tuple(Posting(account, amount, "CNY") for account, amount in legs if amount)
        if not postings:
            return self.batch.append(kind, details)
        return self.batch.post(TransactionDraft(postings, memo=kind), kind, details)

    def draw_id(self, kind: IdKind) -> int:
        return self.batch.draw(ID_SEQUENCES[kind])

    def open_account(self, account: NewAccount) -> int:
        """The account is opened by the next entry the command appends: its number is the
        head's next, whatever the command does between."""
        batch = self.batch
        account_id = batch.next_id(t.Account)
        batch.add_row(t.Account, {"id": account_id, "kind": account.kind.value,
                                  "currency": account.currency, "name": account.name,
                                  "merchant_id": account.merchant_id,
                                  "bank_id": account.bank_id,
                                  "non_negative": account.non_negative, "balance_fen": 0,
                                  "opened_seq": batch.seq + 1})
        batch.opened(Account(account_id, account.kind, account.currency, account.non_negative,
                             0))
        return account_id

    def balance(self, account_id: int) -> int:
        return self.batch.load_accounts([account_id])[account_id].normal_balance_fen

    def checkpoint(self) -> Checkpoint:
        return self.batch.mark()

    def rewind(self, checkpoint: Checkpoint) -> None:
        from ledger.db.batch import Mark
        require(isinstance(checkpoint, Mark), "a checkpoint of this batch")
        self.batch.undo_to(cast("Mark", checkpoint))

    def postings_of(self, transaction_id: int) -> list[Posting]:
        """By id: those this batch holds (a transaction of an earlier command), or those
        written (postings never change)."""
        held = [Posting(r["account_id"], r["amount_fen"], r["currency"])
                for r in self.batch.posting_rows if r["transaction_id"] == transaction_id]
        if held:
            return held
        rows = self.batch.lookup(
            select(t.Posting.account_id, t.Posting.amount_fen, t.Posting.currency)
            .where(t.Posting.transaction_id == transaction_id).order_by(t.Posting.idx))
        return [Posting(r.account_id, r.amount_fen, r.currency) for r in rows]

