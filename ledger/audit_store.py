"""What signing a tree head reads and writes: the audit half of the doorway
(`ledger.commands.Books.audit`). ledger/db/audit_store.py implements it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ledger import merkle
from ledger.audit import SignedTreeHead


class AuditStore(Protocol):
    def tree(self) -> merkle.Frontier:
        """The Merkle tree over every entry so far, those this batch appended included."""
        ...

    def latest_head(self) -> SignedTreeHead | None: ...

    def last_entry_time(self) -> datetime:
        """The time of the newest entry: a head is never older than what it signs."""
        ...

    def add_head(self, signed: SignedTreeHead, moment: datetime) -> None: ...
