"""reports: the routines' reports (日管控、周排查、月调度, 季度报告), each at a signed tree head

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 00:00:00

One row per report, written once (append-only triggers, and the service role may only
INSERT and SELECT): its kind and period, its scope (the district, one department or one
street), the signed tree head it names (tree_size: a tree_heads row, checked by a trigger)
and the snapshot's journal size (never below the head's size; equal to it unless writes
kept landing while the report was made), the figures as JSON and the SHA-256 of their
canonical bytes, which the `report.made` journal entry that creates the row (created_seq,
also the report's id) names too, so a changed figure shows against the journal. A
scheduled report is made at most once per kind and period (the district's), whatever the
number of workers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The head a report names is a signed one. A trigger, not a foreign key: tree_heads refuses
# every TRUNCATE with its own append-only trigger, and a key referencing it would answer
# such an attempt first, with another reason.
NAMES_A_HEAD_SQL = """
CREATE FUNCTION yufu_report_names_a_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM tree_heads WHERE tree_size = NEW.tree_size) THEN
    RAISE EXCEPTION 'report % names tree size %, which no signed tree head has',
      NEW.created_seq, NEW.tree_size USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reports_name_a_head BEFORE INSERT ON reports
  FOR EACH ROW EXECUTE FUNCTION yufu_report_names_a_head();
"""

APPEND_ONLY_SQL = """
CREATE TRIGGER reports_append_only BEFORE UPDATE OR DELETE ON reports
  FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER reports_no_truncate BEFORE TRUNCATE ON reports
  FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();
"""


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("created_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("scope_kind", sa.Text(), nullable=False),
        sa.Column("scope_name", sa.Text(), nullable=True),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("journal_size", sa.BigInteger(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("figures_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created_key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("kind IN ('daily','weekly','monthly','quarterly')",
                           name=op.f("ck_reports_kind_known")),
        sa.CheckConstraint("period_start < period_end", name=op.f("ck_reports_period_order")),
        sa.CheckConstraint(
            "(scope_kind = 'district' AND scope_name IS NULL) OR "
            "(scope_kind IN ('department','street') AND scope_name IS NOT NULL)",
            name=op.f("ck_reports_scope_known")),
        sa.CheckConstraint("NOT scheduled OR scope_kind = 'district'",
                           name=op.f("ck_reports_scheduled_district")),
        sa.CheckConstraint("tree_size >= 1 AND journal_size >= tree_size",
                           name=op.f("ck_reports_head_within_snapshot")),
        sa.CheckConstraint("created_seq > journal_size",
                           name=op.f("ck_reports_made_after_snapshot")),
        sa.CheckConstraint("jsonb_typeof(figures) = 'object'",
                           name=op.f("ck_reports_figures_object")),
        sa.CheckConstraint("octet_length(figures_sha256) = 32",
                           name=op.f("ck_reports_figures_sha256_length")),
        sa.ForeignKeyConstraint(["created_key_id"], ["api_keys.id"],
                                name=op.f("fk_reports_created_key_id_api_keys")),
        sa.ForeignKeyConstraint(["created_seq"], ["journal_entries.seq"],
                                name=op.f("fk_reports_created_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("created_seq", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_kind_period", "reports", ["kind", "period"], unique=False)
    op.create_index("uq_reports_scheduled", "reports", ["kind", "period"], unique=True,
                    postgresql_where=sa.text("scheduled"))
    op.execute(NAMES_A_HEAD_SQL)
    op.execute(APPEND_ONLY_SQL)


def downgrade() -> None:
    op.execute("DROP TRIGGER reports_name_a_head ON reports")
    op.execute("DROP FUNCTION yufu_report_names_a_head()")
    op.execute("DROP TRIGGER reports_no_truncate ON reports")
    op.execute("DROP TRIGGER reports_append_only ON reports")
    op.drop_index("uq_reports_scheduled", table_name="reports",
                  postgresql_where=sa.text("scheduled"))
    op.drop_index("ix_reports_kind_period", table_name="reports")
    op.drop_table("reports")
