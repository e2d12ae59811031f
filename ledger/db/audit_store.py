"""The audit store (ledger/audit_store.py) on a batch."""

from __future__ import annotations

from datetime import datetime

from ledger import merkle
from ledger.audit import SignedTreeHead
from ledger.db.audit_queries import latest_head
from ledger.db.audit_tables import TreeHead
from ledger.db.batch import Batch


class AuditRows:
    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def tree(self) -> merkle.Frontier:
        return self.batch.merkle_frontier()

    def latest_head(self) -> SignedTreeHead | None:
        # Heads are append-only and only ever added by this command, under the chain lock.
        return latest_head(self.batch.conn)

    def last_entry_time(self) -> datetime:
        return self.batch.ts

    def add_head(self, signed: SignedTreeHead, moment: datetime) -> None:
        head = signed.head
        self.batch.add_row(TreeHead, {"tree_size": head.tree_size, "root_hash": head.root_hash,
                                      "ts": moment, "key_id": head.key_id,
                                      "signature": signed.signature})
