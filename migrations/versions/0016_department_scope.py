"""department scope: regulator keys scoped to a department or a street, and the industry ->
supervising-department maps as versioned data per jurisdiction

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:10:00

A regulator key may name one department (行业主管部门, e.g. 区文旅体局) or one street
(属地, e.g. 望京街道), or neither (a district key, which sees every merchant). Only a
regulator key is scoped this way: the database refuses a scope on any other key, and both at
once, as the domain does (ledger/auth.py check_scope).

department_maps holds every version of a jurisdiction's industry -> department map (seed 000
for Beijing, seed 002 for Tianjin): append-only, each version journaled
(`department_map.published`, `department.designated`). Filing reads the latest version; a
merchant filed to the pending department moves when the district government designates a
department for its industry (journaled `merchant.department_changed`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_SQL = """
CREATE TRIGGER department_maps_append_only BEFORE UPDATE OR DELETE ON department_maps
  FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER department_maps_no_truncate BEFORE TRUNCATE ON department_maps
  FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();
"""


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("department", sa.Text(), nullable=True))
    op.add_column("api_keys", sa.Column("street", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_api_keys_regulator_scope"), "api_keys",
        "role = 'regulator' OR (department IS NULL AND street IS NULL)")
    op.create_check_constraint(op.f("ck_api_keys_one_scope"), "api_keys",
                               "department IS NULL OR street IS NULL")
    # A department key's lists are filtered in SQL by the merchant's department.
    op.create_index(op.f("ix_merchants_department"), "merchants", ["department"], unique=False)
    op.create_table(
        "department_maps",
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("departments", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("pending_department", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_department_maps_version_positive")),
        sa.CheckConstraint("jsonb_typeof(departments) = 'object'",
                           name=op.f("ck_department_maps_departments_object")),
        sa.CheckConstraint("pending_department <> ''",
                           name=op.f("ck_department_maps_pending_named")),
        sa.ForeignKeyConstraint(["created_key_id"], ["api_keys.id"],
                                name=op.f("fk_department_maps_created_key_id_api_keys")),
        sa.ForeignKeyConstraint(["created_seq"], ["journal_entries.seq"],
                                name=op.f("fk_department_maps_created_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("jurisdiction", "version", name=op.f("pk_department_maps")),
    )
    op.execute(APPEND_ONLY_SQL)


def downgrade() -> None:
    op.execute("DROP TRIGGER department_maps_no_truncate ON department_maps")
    op.execute("DROP TRIGGER department_maps_append_only ON department_maps")
    op.drop_table("department_maps")
    op.drop_index(op.f("ix_merchants_department"), table_name="merchants")
    op.drop_constraint(op.f("ck_api_keys_one_scope"), "api_keys", type_="check")
    op.drop_constraint(op.f("ck_api_keys_regulator_scope"), "api_keys", type_="check")
    op.drop_column("api_keys", "street")
    op.drop_column("api_keys", "department")
