"""Read side of long jobs (ledger/jobs.py): a job to poll, the jobs to resume on start."""

from __future__ import annotations

from sqlalchemy import Connection, select

from ledger.db import bank_tables as b
from ledger.db import job_tables as j
from ledger.db.job_store import job_of
from ledger.jobs import Job, JobKind, JobStatus


def job(conn: Connection, job_id: int) -> Job | None:
    row = conn.execute(select(j.Job.__table__).where(j.Job.id == job_id)).first()
    return None if row is None else job_of(dict(row._mapping))


def running(conn: Connection, kind: JobKind | None = None) -> list[Job]:
    """The jobs started and not over (of `kind`, or of every kind), oldest first."""
    query = select(j.Job.__table__).where(j.Job.status == JobStatus.running.value)
    if kind is not None:
        query = query.where(j.Job.kind == kind.value)
    rows = conn.execute(query.order_by(j.Job.id)).all()
    return [job_of(dict(row._mapping)) for row in rows]


def statement_file(conn: Connection, file_id: int) -> tuple[str, bytes]:
    """A stored statement file's name and bytes: an interrupted import's, to resume it."""
    row = conn.execute(select(b.StatementFile.filename, b.StatementFile.body)
                       .where(b.StatementFile.id == file_id)).one()
    return str(row.filename), bytes(row.body)
