"""The audit's one write: signing a tree head.

It runs through the appender like every write, so it holds the chain-head lock and signs
exactly the tree of the entries committed before it (and any appended earlier in the same
batch). It journals nothing: a tree head is a statement *about* the journal, and an entry for
it would grow the very tree it signs, so no head could ever cover the journal's end. Heads
are kept, append-only, in their own table instead, and each one's root is rechecked by the
database (migration 0003) against the stored tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import audit, journal
from ledger.db.audit_queries import latest_head
from ledger.db.audit_tables import TreeHead
from ledger.db.batch import Batch
from ledger.errors import Refused


@dataclass(frozen=True)
class SignTreeHead:
    key: Ed25519PrivateKey

    def run(self, batch: Batch) -> dict[str, Any]:
        frontier = batch.merkle_frontier()
        latest = latest_head(batch.conn)
        if latest is not None and latest.head.tree_size >= frontier.size:
            return {**latest.view(), "created": False}
        if frontier.size == 0:
            raise Refused("the journal is empty: there is no tree to sign")
        moment = max(datetime.now(UTC), batch.ts)
        if latest is not None:
            # Heads never go back in time, even if the clock does.
            moment = max(moment, journal.parse_ts(latest.head.timestamp))
        signed = audit.sign_tree_head(self.key, frontier.size, frontier.root(),
                                      journal.format_ts(moment))
        batch.add_row(TreeHead, {"tree_size": frontier.size, "root_hash": frontier.root(),
                                 "ts": moment, "key_id": signed.head.key_id,
                                 "signature": signed.signature})
        return {**signed.view(), "created": True}
