"""The job store (ledger/jobs.py) on a batch: a job's row read locked into the batch, changed
there and written at its flush, like the custody rows (ledger/db/rowcache.py).

A job's row is not one of the carried tables: every batch reads it again, locked, so a slice
sees the progress another worker's batch committed (batches take turns on the chain head's
lock, so the second waits for the first)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ledger.db import job_tables as j
from ledger.db.batch import Batch
from ledger.db.custody_store import load_rows
from ledger.errors import InvariantViolation, NotFound
from ledger.jobs import Job, JobKind, JobStatus


class JobRows:
    """`JobStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def by_key(self, kind: JobKind, key: str) -> Job | None:
        found = self.batch.lookup(select(j.Job.id).where(j.Job.kind == kind.value,
                                                         j.Job.key == key)).scalar()
        if found is None:  # made by an earlier command of this batch, not yet written?
            for _, row in self.batch.rows.held(j.Job):
                if row["kind"] == kind.value and row["key"] == key:
                    return job_of(row)
            return None
        return self.job(int(found))

    def job(self, job_id: int) -> Job:
        load_rows(self.batch, j.Job, [job_id])
        row = self.batch.rows.get(j.Job, job_id)
        if row is None:
            raise NotFound(f"job {job_id} does not exist", field="job_id")
        return job_of(row)

    def start(self, kind: JobKind, key: str, total: int, created_by: int,
              state: Mapping[str, Any]) -> Job:
        job_id = self.batch.next_id(j.Job)
        now = datetime.now(UTC)
        self.batch.rows.insert(j.Job, job_id, {
            "id": job_id, "kind": kind.value, "key": key, "status": JobStatus.running.value,
            "done": 0, "total": total, "slices": 0, "created_by": created_by,
            "created_at": now, "updated_at": now, "state": dict(state), "result": None})
        return self.job(job_id)

    def advance(self, job_id: int, done: int, state: Mapping[str, Any]) -> None:
        row = self._held(job_id)
        self.batch.rows.update(j.Job, job_id, done=done, state=dict(state),
                               slices=row["slices"] + 1, updated_at=datetime.now(UTC))

    def finish(self, job_id: int, status: JobStatus, result: Mapping[str, Any]) -> None:
        self._held(job_id)
        self.batch.rows.update(j.Job, job_id, status=status.value, result=dict(result),
                               updated_at=datetime.now(UTC))

    def restart(self, job_id: int, total: int, created_by: int,
                state: Mapping[str, Any]) -> None:
        self._held(job_id)
        self.batch.rows.update(j.Job, job_id, status=JobStatus.running.value, done=0,
                               total=total, slices=0, created_by=created_by, state=dict(state),
                               result=None, updated_at=datetime.now(UTC))

    def _held(self, job_id: int) -> dict[str, Any]:
        self.job(job_id)
        row = self.batch.rows.get(j.Job, job_id)
        if row is None:
            raise InvariantViolation("a job just read is held by the batch")
        return row


def job_of(row: Mapping[str, Any]) -> Job:
    return Job(row["id"], JobKind(row["kind"]), row["key"], JobStatus(row["status"]),
               row["done"], row["total"], row["slices"], row["created_by"], row["state"],
               row["result"])
