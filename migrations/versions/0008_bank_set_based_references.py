"""bank set-based references: a statement's lines and cleared deposits checked per statement

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 22:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

# A foreign key is checked row by row: one look-up (and one row lock) per statement line for
# its file, and one per cleared deposit for its line. An import of 100,000 lines paid about
# 0.5 s for each. The same two references are checked here once per statement, set-based,
# over the rows it wrote (a transition table):
# - a statement line names a file that exists (statement_lines.file_id -> statement_files.id);
# - a deposit cleared by a line names a line that exists (expected_deposits.cleared_line_id ->
#   statement_lines.id); a deposit is inserted pending, so an insert naming a line is checked
#   row by row, and only then (WHEN: no function call for the pending ones).
# The other half of a foreign key, that the row named is not deleted or renumbered later:
# statement files are append-only and statement lines are never deleted (0004), and a line's
# id and file are fixed here.
SQL = """
CREATE FUNCTION yufu_refuse_dangling(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'yufu: % that does not exist', what USING ERRCODE = 'foreign_key_violation';
END $$;

-- Once per statement, over the rows it wrote (the transition table "written"): each value of
-- column TG_ARGV[0] that is not null is the id of a row of table TG_ARGV[1]. TG_ARGV[2] says
-- what is refused otherwise.
CREATE FUNCTION yufu_written_rows_name_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  dangling boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM (SELECT DISTINCT %I AS ref FROM written) w '
                 'WHERE ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %I t WHERE t.id = ref))',
                 TG_ARGV[0], TG_ARGV[1]) INTO dangling;
  IF dangling THEN PERFORM yufu_refuse_dangling(TG_ARGV[2]); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION yufu_deposit_names_a_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM statement_lines l WHERE l.id = NEW.cleared_line_id) THEN
    PERFORM yufu_refuse_dangling('a deposit names a statement line'); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION yufu_line_keys_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'yufu: a statement line keeps its id and its file'
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER statement_lines_name_files AFTER INSERT ON statement_lines
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT
  EXECUTE FUNCTION yufu_written_rows_name_rows(
    'file_id', 'statement_files', 'a statement line names a statement file');
CREATE TRIGGER statement_lines_keys_fixed BEFORE UPDATE ON statement_lines FOR EACH ROW
  WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.file_id IS DISTINCT FROM OLD.file_id)
  EXECUTE FUNCTION yufu_line_keys_fixed();
CREATE TRIGGER expected_deposits_name_lines AFTER UPDATE ON expected_deposits
  REFERENCING NEW TABLE AS written FOR EACH STATEMENT
  EXECUTE FUNCTION yufu_written_rows_name_rows(
    'cleared_line_id', 'statement_lines', 'a deposit names a statement line');
CREATE TRIGGER expected_deposits_name_a_line AFTER INSERT ON expected_deposits FOR EACH ROW
  WHEN (NEW.cleared_line_id IS NOT NULL)
  EXECUTE FUNCTION yufu_deposit_names_a_line();
"""
TRIGGERS = (("statement_lines", "statement_lines_name_files"),
            ("statement_lines", "statement_lines_keys_fixed"),
            ("expected_deposits", "expected_deposits_name_lines"),
            ("expected_deposits", "expected_deposits_name_a_line"))
FUNCTIONS = ("yufu_written_rows_name_rows()", "yufu_deposit_names_a_line()",
             "yufu_line_keys_fixed()", "yufu_refuse_dangling(text)")

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_statement_lines_file_id_statement_files", "statement_lines",
                       type_="foreignkey")
    op.drop_constraint("fk_expected_deposits_cleared_line_id_statement_lines",
                       "expected_deposits", type_="foreignkey")
    op.execute(SQL)


def downgrade() -> None:
    for table, trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.create_foreign_key("fk_expected_deposits_cleared_line_id_statement_lines",
                          "expected_deposits", "statement_lines", ["cleared_line_id"], ["id"])
    op.create_foreign_key("fk_statement_lines_file_id_statement_files", "statement_lines",
                          "statement_files", ["file_id"], ["id"])
