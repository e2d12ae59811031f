"""Custody rows held by one batch: read once, changed in memory, written in bulk at flush.

A batch runs many commands back to back; a card consumed twice in one batch must show the
first consumption to the second. Keeping the rows here (with an undo log, like the accounts)
lets each command cost one read per row it needs and nothing per write until the flush.
Queries that aggregate over a table (which cards are due, what a period releases) call
`sync` first, while their command has changed nothing yet, so they see every earlier write.

Rows of the carried tables also outlive the batch: the writer hands them to its next batch,
which uses them while the chain head's write generation shows nobody else wrote (see
`batch.Carry`).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Connection, TextClause, bindparam, text, update
from sqlalchemy.dialects import postgresql

from ledger.db.bulk import copy_rows
from ledger.errors import require

RowKey = tuple[Any, Any]  # (table model, primary key)

# A batch's memo of the newest rule set per (jurisdiction, industry): a key, not a table.
LATEST_RULES = "latest rule set"
# What a batch may pass on to the next one: tables whose every write bumps the chain head's
# generation (migration 0005), and memos derived only from them. Accounts go separately.
CARRIED_TABLES = frozenset({"cards", "merchants", "merchant_accounts", "products", "rule_sets",
                            LATEST_RULES})


def carried(table: Any) -> bool:
    return (table if isinstance(table, str) else table.__tablename__) in CARRIED_TABLES


class RowCache:
    def __init__(self, conn: Connection, kept: dict[RowKey, dict[str, Any]] | None = None
                 ) -> None:
        self.conn = conn
        # Rows committed by earlier batches, still current (read only: a batch copies a row
        # before it uses it, so a failed batch leaves them as they were).
        self._kept = kept if kept is not None else {}
        self._rows: dict[RowKey, dict[str, Any]] = {}
        self._inserted: dict[RowKey, None] = {}  # ordered: rows go in as they were made
        self._dirty: dict[RowKey, set[str]] = defaultdict(set)
        self._undo: list[tuple[RowKey, dict[str, Any] | None]] = []

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

    def flush(self) -> None:
        """Write new rows, then changed columns, table by table; the undo log is spent."""
        by_shape: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for key in self._inserted:
            row = self._rows[key]
            by_shape[(key[0], tuple(row))].append(row)
        for (table, columns), rows in by_shape.items():
            copy_rows(self.conn, table.__tablename__, columns, rows)
        self._flush_updates()
        self._inserted.clear()
        self._dirty.clear()
        self._undo.clear()

    def _flush_updates(self) -> None:
        groups: dict[tuple[Any, frozenset[str]], list[dict[str, Any]]] = defaultdict(list)
        for (table, row_id), columns in self._dirty.items():
            row = self._rows[(table, row_id)]
            params = {f"v_{c}": row[c] for c in columns}
            groups[(table, frozenset(columns))].append({"k_id": row_id, **params})
        for (table, names), batch_params in groups.items():
            ordered = sorted(names)
            if len(batch_params) > 1 and not _has_json(table, ordered):
                # One statement for the group: one round trip, and the table's statement
                # triggers (the write generation's bump) fire once.
                self.conn.execute(_unnest_update(table, tuple(ordered)), {
                    "k_id": [p["k_id"] for p in batch_params],
                    **{f"v_{c}": [p[f"v_{c}"] for p in batch_params] for c in ordered}})
                continue
            statement = update(table).where(table.id == bindparam("k_id")).values(
                {c: bindparam(f"v_{c}") for c in ordered})
            self.conn.execute(statement, batch_params)


def _has_json(table: Any, columns: list[str]) -> bool:
    return any(isinstance(table.__table__.c[c].type, JSON) for c in columns)


@lru_cache(maxsize=256)
def _unnest_update(table: Any, columns: tuple[str, ...]) -> TextClause:
    """UPDATE ... FROM unnest(typed arrays): many rows' changed columns in one statement."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def sql_type(name: str) -> str:
        return str(table.__table__.c[name].type.compile(dialect=dialect))

    name = table.__tablename__
    arrays = ", ".join(f"CAST(:v_{c} AS {sql_type(c)}[])" for c in columns)
    sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    fields = ", ".join(f'"{c}"' for c in columns)
    return text(f'UPDATE {name} SET {sets} FROM unnest(CAST(:k_id AS {sql_type("id")}[]), '
                f'{arrays}) AS v(k_id, {fields}) WHERE {name}.id = v.k_id')
