"""write generation: a counter on the chain head that every write to the carried tables bumps

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# A writer process keeps the rows it committed (cards, balances, merchants...) for its next
# group commit, and trusts them only while the chain head's `generation` is the one its own
# commit left. The database bumps the counter on every statement that touches those tables,
# whoever runs it (another worker, `yufu releases run`, an operator in psql), so a stale copy
# can never be mistaken for a fresh one. Statement triggers: one bump per statement, not per row.
CARRIED_TABLES = ("accounts", "cards", "merchants", "merchant_accounts", "products", "rule_sets")

GENERATION_SQL = """
CREATE FUNCTION yufu_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE chain_head SET generation = generation + 1 WHERE id = 1;
  RETURN NULL;
END $$;

CREATE FUNCTION yufu_generation_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.generation < OLD.generation THEN
    RAISE EXCEPTION 'yufu: the write generation never moves back'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER chain_head_generation_grows BEFORE UPDATE ON chain_head
  FOR EACH ROW WHEN (NEW.generation IS DISTINCT FROM OLD.generation)
  EXECUTE FUNCTION yufu_generation_grows();

-- The head's link to the journal is checked when the head moves, not on a bare bump.
DROP TRIGGER chain_head_matches ON chain_head;
CREATE TRIGGER chain_head_matches BEFORE UPDATE ON chain_head
  FOR EACH ROW WHEN (NEW.seq IS DISTINCT FROM OLD.seq
                     OR NEW.entry_hash IS DISTINCT FROM OLD.entry_hash)
  EXECUTE FUNCTION yufu_head_matches();
"""

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bump_triggers_sql() -> str:
    return "\n".join(
        f"CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION yufu_bump_generation();"
        for table in CARRIED_TABLES)


def upgrade() -> None:
    op.add_column("chain_head", sa.Column("generation", sa.BigInteger(), nullable=False,
                                          server_default="0"))
    op.execute(GENERATION_SQL)
    op.execute(_bump_triggers_sql())


def downgrade() -> None:
    for table in CARRIED_TABLES:
        op.execute(f"DROP TRIGGER {table}_generation ON {table}")
    op.execute("DROP TRIGGER chain_head_generation_grows ON chain_head")
    op.execute("DROP TRIGGER chain_head_matches ON chain_head")
    op.execute("CREATE TRIGGER chain_head_matches BEFORE UPDATE ON chain_head "
               "FOR EACH ROW EXECUTE FUNCTION yufu_head_matches()")
    op.execute("DROP FUNCTION yufu_generation_grows()")
    op.execute("DROP FUNCTION yufu_bump_generation()")
    op.drop_column("chain_head", "generation")
