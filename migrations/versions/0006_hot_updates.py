"""hot updates: cheaper writes to balances and cards

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

# Every group commit rewrites the balance of each account it moved and the counters of each
# card it consumed. Two things made those rows expensive to rewrite:
# - the guard that keeps an account's identity fixed ran a PL/pgSQL function for every row;
#   the same comparison as the trigger's WHEN condition is evaluated without entering
#   PL/pgSQL, and the function (which refuses) runs only when it is broken;
# - full pages: a new row version that fits on its page, with no indexed column changed,
#   is a heap-only (HOT) update, with no new index entries. Room is left on each page.
ACCOUNT_IDENTITY = ("id", "kind", "currency", "name", "merchant_id", "bank_id", "non_negative",
                    "opened_seq")
FILLFACTOR_TABLES = {"accounts": 80, "cards": 80}

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identity(row: str) -> str:
    return "(" + ", ".join(f"{row}.{c}" for c in ACCOUNT_IDENTITY) + ")"


def upgrade() -> None:
    op.execute("DROP TRIGGER accounts_fixed ON accounts")
    op.execute("CREATE TRIGGER accounts_fixed BEFORE UPDATE ON accounts FOR EACH ROW "
               f"WHEN ({_identity('NEW')} IS DISTINCT FROM {_identity('OLD')}) "
               "EXECUTE FUNCTION yufu_account_fixed()")
    for table, percent in FILLFACTOR_TABLES.items():
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def downgrade() -> None:
    for table in FILLFACTOR_TABLES:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
    op.execute("DROP TRIGGER accounts_fixed ON accounts")
    op.execute("CREATE TRIGGER accounts_fixed BEFORE UPDATE ON accounts FOR EACH ROW "
               "EXECUTE FUNCTION yufu_account_fixed()")
