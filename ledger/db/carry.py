"""The carry: what one writer committed, kept for its next batch (docs/design.md, "The carry").

A batch takes the carry off its writer's shelf when it locks the chain head, reads through it
instead of the database, and after its commit puts back the carry with its own writes added
(or, after a rollback, the carry as it took it: the database is as it was). Two batches
never share one, so the carry needs no lock of its own while a batch holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple, TypeVar

from ledger.books import Account
from ledger.db.rowcache import RowCache, RowKey

# A carry keeps at most this many custody rows, and as many account balances; past that the
# ones no batch has used for longest go (a cache of what the writer touches: a card that fell
# out is read again, one query, when next used). An entry costs about 0.7 KiB (a card's row,
# its account's balance, their keys), so a full carry holds about 14 MiB. It was 200,000
# entries, started afresh when full: under scripts/soak it grew by ~250 entries a second
# (every card sold stays) towards ~140 MiB, and the service's memory with it
# (docs/reliability.md, "The soak").
carry_rows_max = 10_000
carry_accounts_max = 10_000

Key = TypeVar("Key")
Value = TypeVar("Value")

Head = tuple[int, int, bytes]  # the chain head's write generation, seq and entry hash


@dataclass
class Carry:
    """What one writer committed, kept for its next batch: balances and custody rows.

    Valid only while the chain head shows the same (generation, seq, entry hash) that the
    commit left: the database bumps the generation on every write to these tables, by anyone
    (migration 0005). While one writer has the database to itself, its batches then read
    nothing but the chain head."""

    head: Head
    accounts: MutableMapping[int, Account] = field(default_factory=dict)
    rows: MutableMapping[RowKey, dict[str, Any]] = field(default_factory=dict)


class Shelf:
    """Where a writer keeps its carry between batches. The appender and its helper thread
    both reach it (a batch run ahead rebases onto it), hence the lock."""

    def __init__(self) -> None:
        self._kept: Carry | None = None
        self._lock = threading.Lock()

    def take(self, head: Head) -> Carry:
        """The carry, if it shows this head; else an empty one for it."""
        kept = self.take_if(head)
        return kept if kept is not None else Carry(head)

    def take_if(self, head: Head) -> Carry | None:
        """The carry, if it shows this head. One that does not is stale and is dropped."""
        with self._lock:
            kept, self._kept = self._kept, None
        return kept if kept is not None and kept.head == head else None

    def put(self, carry: Carry) -> None:
        with self._lock:
            self._kept = carry


class Beside(NamedTuple):
    """What a batch wrote besides its journal and its custody rows."""

    direct_writes: bool  # SQL of its own: rows its copies do not hold
    extra_rows: bool  # rows beside its custody rows (accounts, idempotency records ...)


def after_commit(carry: Carry, head: Head | None, beside: Beside,
                 accounts: Mapping[int, Account], rows: RowCache) -> Carry | None:
    """The carry a committed batch passes on, or None if nobody can vouch for one.

    `head`: the chain head its commit left, None if it journaled nothing."""
    direct_writes, extra_rows = beside
    if direct_writes:
        return None  # rows written by SQL are not in the batch's copies
    if head is None:
        # Nothing journaled: if nothing was written either, the carry stands; rows written
        # outside the journal moved the generation to a value this batch never read.
        return None if extra_rows else carry
    if not (isinstance(carry.rows, dict) and isinstance(carry.accounts, dict)):
        return Carry(head)  # layered copies (Batch.following): an order we cannot evict by
    _keep_newest(carry.accounts, accounts, carry_accounts_max)
    _keep_newest(carry.rows, rows.carried_rows(), carry_rows_max)
    carry.head = head
    return carry


def _keep_newest(kept: dict[Key, Value], used: Mapping[Key, Value], entries_max: int) -> None:
    """Put what a batch used in `kept` as its newest entries, then drop the oldest past
    `entries_max`. A dict keeps its keys in insertion order, so its first are the oldest."""
    for key, value in used.items():
        kept.pop(key, None)
        kept[key] = value
    for key in list(islice(kept, max(0, len(kept) - entries_max))):
        del kept[key]
