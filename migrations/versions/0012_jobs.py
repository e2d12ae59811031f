"""jobs: a long write (a statement import, a release run, an auto-confirmation sweep, a
closure) carried out in slices, each its own group commit, with its progress

One row per job, unique by its kind and natural key (a file's sha256 at a bank, a run's date,
a merchant), so a job sent again resumes rather than starts over. Its progress and status are
updated in place: they are operational, not history; every money effect of the job is in the
journal as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 17:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("slices", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("kind IN ('statement_import','release_run','auto_confirm',"
                           "'closure')", name=op.f("ck_jobs_kind_known")),
        sa.CheckConstraint("status IN ('running','done','failed')",
                           name=op.f("ck_jobs_status_known")),
        sa.CheckConstraint("done >= 0 AND total >= 0 AND slices >= 0",
                           name=op.f("ck_jobs_progress_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("kind", "key", name="uq_jobs_kind_key"),
    )


def downgrade() -> None:
    op.drop_table("jobs")
