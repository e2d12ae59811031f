"""What a writer keeps between its batches, in its process: one object, owned by the writer and
handed to each of its batches (`Batch.state`), instead of module globals.

A `Writer` makes its own. Code that makes a batch without a writer (`run_command` for the CLI
and bootstrap, tests, scripts) gets one per engine (`default_state`). Everything here is of
one database, the engine's, so nothing is keyed by database: two writers on two databases
(the tests serve many from one process, and ids repeat across them) never see each other's.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from ledger import merkle
from ledger.custody.rules import RuleSet
from ledger.db.carry import Shelf

if TYPE_CHECKING:
    from ledger.db.batch import LockedHead

# Ids drawn from a table's sequence per round trip. A batch that runs while the one before it
# commits (`Batch.following`) has no connection: a pool running dry sends it the slow way, so
# the blocks are large (an unused id is a gap, nothing more).
id_block_size = 1_024
NEXT_IDS_SQL = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                    "FROM generate_series(1, :n)")


class IdPools:
    """Ids taken from tables' identity sequences ahead of need, by table. A sequence never
    rolls back, so an id is unique whether or not its batch commits."""

    def __init__(self) -> None:
        self._pools: dict[str, list[int]] = {}
        self._lock = threading.Lock()  # the appender and its helper both draw

    def take(self, table: str, source: Connection) -> int:
        """The next id of `table`, drawing a block on `source` if the pool is dry."""
        with self._lock:
            pool = self._pools.get(table)
            if pool is None:
                pool = self._pools[table] = []
            if not pool:
                values = source.execute(NEXT_IDS_SQL, {"table": table, "n": id_block_size})
                pool.extend(sorted((int(v) for v in values.scalars()), reverse=True))
            return pool.pop()

    def clear(self) -> None:
        with self._lock:
            self._pools.clear()


class WriterState:
    def __init__(self, engine: Engine) -> None:
        self.database = str(engine.url)  # for messages and `Batch.database`: not a key
        self.carry = Shelf()
        self.ids = IdPools()
        # The Merkle frontier after the last flush, under the chain head it belongs to. The
        # head's (seq, hash) commits to every entry, so a batch that finds the same head may
        # use it instead of reading the frontier: right after a rollback too (a different
        # head then, or the same entries). Replaced whole, so threads may share it.
        self.frontier: tuple[int, bytes, merkle.Frontier] | None = None
        # Rule set versions and merchants' charts never change once written.
        self.rules_by_id: dict[int, RuleSet] = {}
        self.accounts_by_merchant: dict[str, dict[str, int]] = {}
        # Banks are never unregistered (append-only): a bank seen once is known for good.
        self.known_banks: set[str] = set()
        # The chain-head lock a commit took for the next batch, and the connection it is on
        # (the transaction it opened is that connection's).
        self._locked: tuple[Connection, LockedHead] | None = None

    def hold_lock(self, conn: Connection, head: LockedHead) -> None:
        self._locked = (conn, head)

    def take_lock(self, conn: Connection) -> LockedHead | None:
        """The lock held on `conn` for its next batch, now that batch's; None if none is."""
        locked = self._locked
        if locked is None or locked[0] is not conn:
            return None
        self._locked = None
        return locked[1]

    def held_lock(self, conn: Connection) -> LockedHead | None:
        locked = self._locked
        return locked[1] if locked is not None and locked[0] is conn else None


_defaults: weakref.WeakKeyDictionary[Engine, WriterState] = weakref.WeakKeyDictionary()
_defaults_lock = threading.Lock()


def default_state(engine: Engine) -> WriterState:
    """The state of batches made on this engine without a writer of their own."""
    with _defaults_lock:
        state = _defaults.get(engine)
        if state is None:
            state = _defaults[engine] = WriterState(engine)
        return state
