"""break lines set-based: a break's statement line checked once per statement, not by a
foreign key planned while the table was small

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:00:00

Each break an import opens names its statement line (reconciliation_breaks.line_id ->
statement_lines.id). As a foreign key, that was checked row by row by a query PostgreSQL
prepares once per connection and keeps: the writer's connection lives as long as the service,
so a plan made while statement_lines was small (analysed with a few hundred rows) stayed a
sequential scan as the table grew. 16,000 unmatched lines took 8.2 s instead of 2.2 s, 63,000
about 140 s, and statement_lines showed 130 million tuples read by sequential scans
(tests/ledger/bank/test_import_scale.py shows it: 2,000 breaks, 2,001 scans of the table).

The reference is checked here as migration 0008 checks a line's file and a deposit's line:
once per statement, over the rows it wrote (the transition table), by a query planned afresh
each time (EXECUTE in `yufu_written_rows_name_rows`), so the planner sees the table as it is
now and probes its primary key. The database still enforces it; the cost is one query per
INSERT of breaks, whatever their number. The other half of a foreign key, that the line named
is not deleted or renumbered later: statement lines are never deleted and keep their id
(0004, 0008), and a break keeps its line (the trigger below; resolving a break changes only
its status, resolution and resolved_seq).

The other foreign keys into the big tables were looked at the same way:
- expected_deposits.cleared_line_id and statement_lines.file_id: set-based since 0008;
- expected_deposits is named by no foreign key;
- journal_entries.seq, named by a deferred foreign key from nearly every table (a break's
  opened_seq, a file's imported_seq, a card's, an account's...): the same hazard, measured by
  the same test: two sequential scans of the whole journal per break, 4.3 million tuples read
  for 2,000 breaks. Those are too many to replace by triggers, and the cause is not theirs:
  it is the plan kept for the connection's life. So the service's connections plan every
  prepared query afresh, with its parameters and the tables as they are now
  (`plan_cache_mode=force_custom_plan`, ledger/db/engine.py): a foreign key's check, and
  the queries inside PL/pgSQL triggers, cost a planning each (tens of microseconds) and
  never a scan of a table that has grown since. With it, the test sees at most one scan of
  each big table per slice (a query planned for a table that is still small may read it
  whole; planned again as it grows, it probes the index).
"""

from collections.abc import Sequence

from alembic import op

SQL = """
CREATE FUNCTION yufu_break_line_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'yufu: a break keeps the statement line it names'
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER reconciliation_breaks_name_lines AFTER INSERT ON reconciliation_breaks
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT
  EXECUTE FUNCTION yufu_written_rows_name_rows(
    'line_id', 'statement_lines', 'a break names a statement line');
CREATE TRIGGER reconciliation_breaks_line_fixed BEFORE UPDATE ON reconciliation_breaks
  FOR EACH ROW WHEN (NEW.line_id IS DISTINCT FROM OLD.line_id)
  EXECUTE FUNCTION yufu_break_line_fixed();
"""

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_reconciliation_breaks_line_id_statement_lines",
                       "reconciliation_breaks", type_="foreignkey")
    op.execute(SQL)


def downgrade() -> None:
    op.execute("DROP TRIGGER reconciliation_breaks_line_fixed ON reconciliation_breaks")
    op.execute("DROP TRIGGER reconciliation_breaks_name_lines ON reconciliation_breaks")
    op.execute("DROP FUNCTION yufu_break_line_fixed()")
    op.create_foreign_key("fk_reconciliation_breaks_line_id_statement_lines",
                          "reconciliation_breaks", "statement_lines", ["line_id"], ["id"])
