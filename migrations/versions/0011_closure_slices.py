"""closure of any size: a closing merchant's plan of payouts, and the status `closing`

A closure decides every card's payout at once (pro rata over all claims, largest remainder)
and keeps that plan here; the refunds are then instructed in slices, each its own group
commit, so a merchant with a million cards neither holds the writer nor leaves a card out.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_merchants_status_known"), "merchants", type_="check")
    op.create_check_constraint(op.f("ck_merchants_status_known"), "merchants",
                               "status IN ('active','frozen','closing','closed')")
    op.create_table(
        "closures",
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("available_fen", sa.BigInteger(), nullable=False),
        sa.Column("planned_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("available_fen >= 0", name=op.f("ck_closures_available_valid")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_closures_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["planned_seq"], ["journal_entries.seq"],
                                name=op.f("fk_closures_planned_seq_journal_entries"),
                                deferrable=True, initially="DEFERRED"),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_closures")),
    )
    op.create_table(
        "closure_payouts",
        sa.Column("card_id", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("claim_fen", sa.BigInteger(), nullable=False),
        sa.Column("payout_fen", sa.BigInteger(), nullable=False),
        sa.Column("planned_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("claim_fen > 0 AND payout_fen >= 0 AND payout_fen <= claim_fen",
                           name=op.f("ck_closure_payouts_amounts_valid")),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"],
                                name=op.f("fk_closure_payouts_card_id_cards")),
        sa.ForeignKeyConstraint(["merchant_id"], ["closures.merchant_id"],
                                name=op.f("fk_closure_payouts_merchant_id_closures")),
        sa.ForeignKeyConstraint(["planned_seq"], ["journal_entries.seq"],
                                name=op.f("fk_closure_payouts_planned_seq_journal_entries"),
                                deferrable=True, initially="DEFERRED"),
        sa.PrimaryKeyConstraint("card_id", name=op.f("pk_closure_payouts")),
    )
    op.create_index("ix_closure_payouts_merchant_id_card_id", "closure_payouts",
                    ["merchant_id", "card_id"], unique=False)
    for table in ("closures", "closure_payouts"):
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change()")


def downgrade() -> None:
    op.drop_table("closure_payouts")
    op.drop_table("closures")
    op.drop_constraint(op.f("ck_merchants_status_known"), "merchants", type_="check")
    op.create_check_constraint(op.f("ck_merchants_status_known"), "merchants",
                               "status IN ('active','frozen','closed')")
