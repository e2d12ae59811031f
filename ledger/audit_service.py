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
from ledger.commands import Books, Command
from ledger.errors import Refused


@dataclass(frozen=True)
class SignTreeHead(Command):
    key: Ed25519PrivateKey

    def run(self, books: Books) -> dict[str, Any]:
        frontier = books.audit.tree()
        latest = books.audit.latest_head()
        if latest is not None and latest.head.tree_size >= frontier.size:
            return {**latest.view(), "created": False}
        if frontier.size == 0:
            raise Refused("the journal is empty: there is no tree to sign")
        moment = max(datetime.now(UTC), books.audit.last_entry_time())
        if latest is not None:
            # Heads never go back in time, even if the clock does.
            moment = max(moment, journal.parse_ts(latest.head.timestamp))
        signed = audit.sign_tree_head(self.key, frontier.size, frontier.root(),
                                      journal.format_ts(moment))
        books.audit.add_head(signed, moment)
        return {**signed.view(), "created": True}
