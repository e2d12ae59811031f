"""Custody rows held by one batch: read once, changed in memory, written in bulk at flush.

A batch runs many commands back to back; a card consumed twice in one batch must show the
first consumption to the second. Keeping the rows here (with an undo log, like the accounts)
lets each command cost one read per row it needs and nothing per write until the flush.
Queries that aggregate over a table (which cards are due, what a period releases) call
`sync` first, while their command has changed nothing yet, so they see every earlier write.

Rows of the carried tables also outlive the batch: the writer hands them to its next batch,
which uses them while the chain head's write generation shows nobody else wrote (see
`ledger.db.carry`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableMapping
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from ledger.db.script import Script, adapted, column_type
from ledger.errors import require

RowKey = tuple[Any, Any]  # (table model, primary key)

# A batch's memo of the newest rule set per (jurisdiction, industry): a key, not a table.
LATEST_RULES = "latest rule set"
# A batch's memo of the bans not lifted per subject (ledger/db/ban_store.py): derived from
# `bans` and `ban_lifts`, whose writes bump the generation too (migration 0018).
BANS_OF = "bans of a subject"
# What a batch may pass on to the next one: tables whose every write bumps the chain head's
# generation (migration 0005), and memos derived only from them. Accounts go separately.
CARRIED_TABLES = frozenset({"cards", "merchants", "merchant_accounts", "products", "rule_sets",
                            LATEST_RULES, BANS_OF})


# Each memo, and the tables it is derived from (each of which must bump the generation).
CARRIED_MEMOS = {LATEST_RULES: ("rule_sets",), BANS_OF: ("bans", "ban_lifts")}


def carried(table: Any) -> bool:
    return (table if isinstance(table, str) else table.__tablename__) in CARRIED_TABLES


class RowCache:
    def __init__(self, conn: Connection,
                 kept: MutableMapping[RowKey, dict[str, Any]] | None = None) -> None:
        self.conn = conn
        # Rows committed by earlier batches, still current (read only: a batch copies a row
        # before it uses it, so a failed batch leaves them as they were).
        self._kept = kept if kept is not None else {}
        self._rows: dict[RowKey, dict[str, Any]] = {}
        self._inserted: dict[RowKey, None] = {}  # ordered: rows go in as they were made
        self._dirty: dict[RowKey, set[str]] = defaultdict(set)
        self._undo: list[tuple[RowKey, dict[str, Any] | None]] = []

    def rebase(self, conn: Connection, kept: MutableMapping[RowKey, dict[str, Any]]) -> None:
        """Bound to the connection, over the carry (see `Batch.rebase`)."""
        self.conn, self._kept = conn, kept

    def mark(self) -> int:
        return len(self._undo)

    def undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            key, before = self._undo.pop()
            if before is None:
                self._rows.pop(key, None)
                self._inserted.pop(key, None)
            else:
                self._rows[key] = before

    def changed_since(self, mark: int) -> bool:
        return len(self._undo) > mark

    def get(self, table: Any, row_id: Any) -> dict[str, Any] | None:
        key = (table, row_id)
        row = self._rows.get(key)
        if row is None:
            kept = self._kept.get(key)
            if kept is not None:
                row = self._rows[key] = dict(kept)
        return row

    def held(self, table: Any) -> list[tuple[Any, dict[str, Any]]]:
        """(id, row) of every row of `table` this batch holds (read, made or changed)."""
        return [(key[1], row) for key, row in self._rows.items() if key[0] is table]

    def carried_rows(self) -> dict[RowKey, dict[str, Any]]:
        """The batch's rows of the carried tables, as they stand (call after the commit)."""
        return {key: row for key, row in self._rows.items() if carried(key[0])}

    def remember(self, table: Any, row_id: Any, row: dict[str, Any]) -> dict[str, Any]:
        """A row just read from the database (it already holds every earlier write)."""
        self._rows.setdefault((table, row_id), row)
        return self._rows[(table, row_id)]

    def insert(self, table: Any, row_id: Any, row: dict[str, Any]) -> None:
        key = (table, row_id)
        require(key not in self._rows, "a new row has a new id")
        self._undo.append((key, None))
        self._rows[key] = dict(row)
        self._inserted[key] = None

    def update(self, table: Any, row_id: Any, **values: Any) -> dict[str, Any]:
        key = (table, row_id)
        before = self._rows[key]
        self._undo.append((key, before))
        self._rows[key] = {**before, **values}
        if key not in self._inserted and not isinstance(table, str):
            # A table named by a string is the batch's own memo (the latest rule set, ...).
            self._dirty[key].update(values)
        return self._rows[key]

    def flush(self, script: Script | None = None) -> None:
        """Write new rows, then changed columns, table by table; the undo log is spent. With
        a script, the writes join it (the caller runs it); without, they go now."""
        own = script is None
        queued = script if script is not None else Script(self.conn)
        by_shape: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for key in self._inserted:
            row = self._rows[key]
            by_shape[(key[0], tuple(row))].append(row)
        for (table, columns), rows in by_shape.items():
            queued.insert(table.__tablename__, columns, rows)
        self._queue_updates(queued)
        if own:
            queued.run()
        self._inserted.clear()
        self._dirty.clear()
        self._undo.clear()

    def _queue_updates(self, script: Script) -> None:
        """One UPDATE ... FROM unnest(typed arrays) per table and set of changed columns, so
        the table's statement triggers (the write generation's bump) fire once."""
        groups: dict[tuple[Any, frozenset[str]], list[tuple[Any, dict[str, Any]]]] = \
            defaultdict(list)
        for (table, row_id), columns in self._dirty.items():
            groups[(table, frozenset(columns))].append((row_id, self._rows[(table, row_id)]))
        for (table, names), rows in groups.items():
            changed = tuple(sorted(names))
            script.add(_unnest_update(table.__tablename__, changed),
                       k_id=[row_id for row_id, _ in rows],
                       **{f"v_{c}": [adapted(row[c]) for _, row in rows] for c in changed})


@lru_cache(maxsize=256)
def _unnest_update(name: str, columns: tuple[str, ...]) -> str:
    arrays = ", ".join(f"CAST(%(v_{c})s AS {column_type(name, c)}[])" for c in columns)
    sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    fields = ", ".join(f'"{c}"' for c in columns)
    return (f"UPDATE {name} SET {sets} FROM unnest(CAST(%(k_id)s AS "
            f"{column_type(name, 'id')}[]), {arrays}) AS v(k_id, {fields}) "
            f"WHERE {name}.id = v.k_id")
