"""Long jobs (ledger/jobs.py): one row per job, its progress updated in place (operational,
not history: every money effect of a job is in the journal)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import Base


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str]
    key: Mapped[str]  # the natural key, unique per kind: a job sent again resumes
    status: Mapped[str]
    done: Mapped[int]
    total: Mapped[int]
    slices: Mapped[int]
    created_by: Mapped[int]  # the API key's id
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    state: Mapped[dict[str, Any]]  # what the next slice needs to go on
    result: Mapped[dict[str, Any] | None]
    __table_args__ = (
        CheckConstraint("kind IN ('statement_import','release_run','auto_confirm','closure',"
                        "'supervision_sweep')",
                        name="kind_known"),
        CheckConstraint("status IN ('running','done','failed')", name="status_known"),
        CheckConstraint("done >= 0 AND total >= 0 AND slices >= 0", name="progress_valid"),
        UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
    )
