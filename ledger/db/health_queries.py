"""Read side of observing the service: what /metrics and /v1/ready ask the database, each
bounded by a statement timeout so a slow database makes a scrape fail, not hang."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, func, select, text

from ledger.db import audit_tables as a
from ledger.db import bank_tables as b
from ledger.db import job_tables as j
from ledger.db import tables as t

# Long enough for a COUNT over an index of open breaks; short enough that a scrape (Prometheus
# waits 10 s by default) or a readiness probe gets its answer.
health_statement_timeout_ms = 2_000


class Gauges(NamedTuple):
    open_breaks: int
    journal_size: int
    signed_tree_size: int  # 0: nothing signed yet

    @property
    def signer_lag(self) -> int:
        """Journal entries no signed tree head covers yet."""
        return self.journal_size - self.signed_tree_size


def bounded(conn: Connection) -> Connection:
    """In the connection's transaction: no statement runs longer than the bound."""
    conn.execute(text(f"SET LOCAL statement_timeout = {health_statement_timeout_ms}"))
    return conn


def gauges(conn: Connection) -> Gauges:
    """Open reconciliation breaks (one COUNT), the journal's size and the latest signed tree
    head's size. Across every merchant and bank: no label names one."""
    bounded(conn)
    breaks = conn.execute(select(func.count()).select_from(b.ReconciliationBreak)
                          .where(b.ReconciliationBreak.status == "open")).scalar_one()
    seq = conn.execute(select(t.ChainHead.seq).where(t.ChainHead.id == 1)).scalar_one()
    signed = conn.execute(select(func.max(a.TreeHead.tree_size))).scalar_one()
    return Gauges(int(breaks), int(seq), int(signed or 0))


def jobs_running(conn: Connection) -> dict[str, int]:
    """Long jobs not finished, by kind (a handful of rows: a job is one per file or run)."""
    bounded(conn)
    rows = conn.execute(select(j.Job.kind, func.count()).where(j.Job.status == "running")
                        .group_by(j.Job.kind)).all()
    return {str(kind): int(count) for kind, count in rows}


def database_revision(conn: Connection) -> str | None:
    """The migration the database is at (Alembic's table), None if it has none."""
    bounded(conn)
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
