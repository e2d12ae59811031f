"""A group commit's writes sent as one script: one round trip instead of one per table.

A POS batch writes a dozen tables (journal, Merkle nodes, transactions, postings, cards,
consumptions, balances, the chain head...). Sent one statement at a time, each waited for its
own round trip, and the appender thread then waited again for the interpreter lock, which
the HTTP thread holds most of the time under load: together they were about a third of a
batch. Small row sets go in as `INSERT ... SELECT FROM unnest(typed arrays)` in one script
that psycopg2 sends as a single simple query; a large one (a bank statement's lines, a big
batch) still goes by COPY, which parses faster, after the script so far has run, so the
order of the writes is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Connection
from sqlalchemy.dialects import postgresql

from ledger.db.bulk import copy_rows
from ledger.db.tables import Base

# Past this many rows a table's rows go by COPY rather than as arrays in the script.
script_rows_max = 2_000


class Script:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._statements: list[str] = []
        self._params: dict[str, Any] = {}
        self._rendered: bytes | None = None

    def add(self, sql: str, **params: Any) -> None:
        """A statement whose parameters are %(name)s placeholders, named uniquely here. A
        list goes as one array literal (see `array_literal`): its placeholder must be cast
        to the array's type, as every one in this module is."""
        prefix = f"s{len(self._statements)}_"
        for name, value in params.items():
            self._params[prefix + name] = array_literal(value) if type(value) is list else value
        self._statements.append(_prefixed(sql, prefix, tuple(params)))

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if len(rows) > script_rows_max:
            self.run()
            copy_rows(self.conn, table, columns, rows)
            return
        arrays = ", ".join(f"CAST(%({c})s AS {column_type(table, c)}[])" for c in columns)
        names = ", ".join(f'"{c}"' for c in columns)
        self.add(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})",
                 **{c: [adapted(row[c]) for row in rows] if is_json(table, c)
                    else [row[c] for row in rows] for c in columns})

    def render(self, dbapi_connection: Any) -> None:
        """Put the parameters into the queued statements now, with any connection to the
        same server (quoting depends only on its settings): the writer's helper renders the
        next batch's script while the appender's connection is busy; `run` sends it as is."""
        cursor = dbapi_connection.cursor()
        try:
            self._rendered = cursor.mogrify(";\n".join(self._statements), self._params)
        finally:
            cursor.close()
            self._statements, self._params = [], {}

    def run(self, conn: Connection | None = None) -> Any:
        """Send what is queued (on `conn`, if given) as one query; the last statement's first
        row, if any."""
        if conn is not None:
            self.conn = conn
        if not self._statements and self._rendered is None:
            return None
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._rendered is not None:
                cursor.execute(self._rendered)
            else:
                cursor.execute(";\n".join(self._statements), self._params)
            return cursor.fetchone() if cursor.description is not None else None
        finally:
            cursor.close()
            self._statements, self._params, self._rendered = [], {}, None


@lru_cache(maxsize=1024)
def _prefixed(sql: str, prefix: str, names: tuple[str, ...]) -> str:
    # A batch's script is the same few statements, batch after batch.
    for name in names:
        sql = sql.replace(f"%({name})s", f"%({prefix}{name})s")
    return sql


def array_literal(values: list[Any]) -> str | list[Any]:
    """The list as PostgreSQL's text form of an array, every element quoted; the list itself
    if it holds a value of another kind (psycopg2 then adapts it).

    psycopg2 adapts a list element by element, each through an adapter object: about
    1.3 us an integer and 3 us a timestamp, some 1.5 ms of interpreter time for a POS
    batch's script (a fifth of the writer's). Written here, the whole array costs about what
    one element did, and psycopg2 quotes the result once, as the string it is."""
    if all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif type(value) is int:
            parts.append(str(value))
        elif type(value) is str:
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif type(value) is bytes:
            parts.append('"\\\\x' + value.hex() + '"')
        elif type(value) is bool:
            parts.append("t" if value else "f")
        elif type(value) in (datetime, date):
            parts.append('"' + value.isoformat() + '"')
        else:
            return values
    return "{" + ",".join(parts) + "}"


def adapted(value: Any) -> Any:
    # psycopg2 sends lists as ARRAY literals; a JSON document goes as text, cast to jsonb.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


@lru_cache(maxsize=512)
def is_json(table: str, column: str) -> bool:
    return isinstance(Base.metadata.tables[table].c[column].type, JSON)


@lru_cache(maxsize=512)
def column_type(table: str, column: str) -> str:
    """The column's SQL type, from the models (which `alembic check` holds to the schema)."""
    sql_type = Base.metadata.tables[table].c[column].type
    return str(sql_type.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
