"""register: a merchant's street (属地), premises and people, and its amendments (变更登记)

Supervision (issue 15) routes a merchant's complaints and alerts to its department and its
street, screens its people and premises against bans, and reads a change of its legal
representative or officers as a signal. So a filing now carries:
- street: the street or town (镇街/街乡) it answers to;
- address as written, and premises: the address normalised (ledger/supervision/register.py),
  which bans and the churn of operators at one shop front are keyed by;
- people: its legal representative and officers as pseudonyms (a keyed hash of the identity
  card number), [{"role", "person_id"}]; a GIN index finds every merchant of a person.
Every change of these is an amendment: one row per journal entry, written once.

Merchants filed before keep NULL street and address and no people: nothing was known.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("merchants", sa.Column("street", sa.Text(), nullable=True))
    op.add_column("merchants", sa.Column("address", sa.Text(), nullable=True))
    op.add_column("merchants", sa.Column("premises", sa.Text(), nullable=True))
    op.add_column("merchants", sa.Column(
        "people", postgresql.JSONB(astext_type=sa.Text()), server_default="[]",
        nullable=False))
    op.create_check_constraint(op.f("ck_merchants_people_listed"), "merchants",
                               "jsonb_typeof(people) = 'array'")
    op.create_index(op.f("ix_merchants_street"), "merchants", ["street"])
    op.create_index(op.f("ix_merchants_premises"), "merchants", ["premises"])
    op.create_index("ix_merchants_people", "merchants", ["people"], postgresql_using="gin",
                    postgresql_ops={"people": "jsonb_path_ops"})
    op.create_table(
        "merchant_amendments",
        sa.Column("amended_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("amended_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["amended_seq"], ["journal_entries.seq"],
                                name=op.f("fk_merchant_amendments_amended_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_merchant_amendments_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("amended_seq", name=op.f("pk_merchant_amendments")),
    )
    op.create_index(op.f("ix_merchant_amendments_merchant_id"), "merchant_amendments",
                    ["merchant_id"])


def downgrade() -> None:
    op.drop_table("merchant_amendments")
    op.drop_index("ix_merchants_people", table_name="merchants")
    op.drop_index(op.f("ix_merchants_premises"), table_name="merchants")
    op.drop_index(op.f("ix_merchants_street"), table_name="merchants")
    op.drop_constraint(op.f("ck_merchants_people_listed"), "merchants")
    for column in ("people", "premises", "address", "street"):
        op.drop_column("merchants", column)
