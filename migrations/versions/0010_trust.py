"""trust at the edges: a registry of custodian banks, key expiry and revocation, consumers'
keys and one-time codes, records of reads, and each journal entry's merchant and bank

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:22:51.939155
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("banks", "key_revocations", "access_records")

# Every worker keeps authenticated keys in memory: a revocation tells them all at its commit
# (LISTEN yufu_key_revoked), so it takes effect on the next request in every process.
NOTIFY_SQL = """
CREATE FUNCTION yufu_key_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('yufu_key_revoked', NEW.key_id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER key_revocations_notify AFTER INSERT ON key_revocations
  FOR EACH ROW EXECUTE FUNCTION yufu_key_revoked();
CREATE FUNCTION yufu_operator_remains() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Only an operator key's revocation can leave nobody to administer Yufu; a merchant, bank
  -- or consumer may always revoke its own key. An expiring operator key does not count.
  IF EXISTS (SELECT 1 FROM api_keys WHERE id = NEW.key_id AND role = 'operator')
     AND NOT EXISTS (SELECT 1 FROM api_keys k
                  WHERE k.role = 'operator' AND k.expires_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM key_revocations r WHERE r.key_id = k.id)) THEN
    RAISE EXCEPTION 'yufu: the last active operator key cannot be revoked'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER key_revocations_operator_remains AFTER INSERT ON key_revocations
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION yufu_operator_remains();
"""

# The entry's merchant and bank, as its payload names them (the hashed bytes stay as they are).
BACKFILL_JOURNAL_SQL = """
ALTER TABLE journal_entries DISABLE TRIGGER journal_entries_append_only;
UPDATE journal_entries
   SET merchant_id = convert_from(body, 'UTF8')::jsonb #>> '{payload,merchant_id}',
       bank_id = convert_from(body, 'UTF8')::jsonb #>> '{payload,bank_id}';
ALTER TABLE journal_entries ENABLE TRIGGER journal_entries_append_only;
"""

# Banks that merchants or keys named before the registry existed: registered by this
# migration, with a placeholder code an operator cannot confuse with a real one.
BACKFILL_BANKS_SQL = """
INSERT INTO banks (id, name, code, registered_seq)
SELECT bank_id, bank_id, 'unregistered:' || bank_id, NULL
  FROM (SELECT bank_id FROM merchants UNION SELECT bank_id FROM api_keys
         WHERE bank_id IS NOT NULL) named
ON CONFLICT DO NOTHING;
"""


def upgrade() -> None:
    op.create_table(
        "consumer_codes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("consumer_id", sa.Text(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_consumer_codes_attempts_counted")),
        sa.CheckConstraint("expires_at > created_at",
                           name=op.f("ck_consumer_codes_expires_after_creation")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consumer_codes")),
    )
    op.create_index("ix_consumer_codes_consumer_id_created_at", "consumer_codes",
                    ["consumer_id", "created_at"], unique=False)
    op.create_table(
        "banks",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("registered_seq", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["registered_seq"], ["journal_entries.seq"],
                                name=op.f("fk_banks_registered_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banks")),
        sa.UniqueConstraint("code", name=op.f("uq_banks_code")),
    )
    op.create_table(
        "access_records",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_access_records_key_id_api_keys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_records")),
    )
    op.create_index("ix_access_records_key_id_id", "access_records", ["key_id", "id"],
                    unique=False)
    op.create_table(
        "key_revocations",
        sa.Column("key_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("revoked_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_key_revocations_key_id_api_keys")),
        sa.ForeignKeyConstraint(["revoked_seq"], ["journal_entries.seq"],
                                name=op.f("fk_key_revocations_revoked_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_revocations")),
    )
    op.add_column("api_keys", sa.Column("consumer_id", sa.Text(), nullable=True))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_api_keys_consumer_id"), "api_keys", ["consumer_id"], unique=False)
    op.drop_constraint(op.f("ck_api_keys_role_known"), "api_keys", type_="check")
    op.create_check_constraint(
        op.f("ck_api_keys_role_known"), "api_keys",
        "role IN ('operator','merchant','bank','regulator','consumer')")
    op.create_check_constraint(op.f("ck_api_keys_consumer_scope"), "api_keys",
                               "(role = 'consumer') = (consumer_id IS NOT NULL)")
    op.execute(BACKFILL_BANKS_SQL)
    op.create_foreign_key(op.f("fk_api_keys_bank_id_banks"), "api_keys", "banks", ["bank_id"],
                          ["id"], initially="DEFERRED", deferrable=True)
    # NOT VALID: keys issued before this check may name a merchant that was never filed (the
    # bug it closes); they are left for an operator to revoke, every new key is checked.
    op.create_foreign_key(op.f("fk_api_keys_merchant_id_merchants"), "api_keys", "merchants",
                          ["merchant_id"], ["id"], initially="DEFERRED", deferrable=True,
                          postgresql_not_valid=True)
    op.create_foreign_key(op.f("fk_merchants_bank_id_banks"), "merchants", "banks", ["bank_id"],
                          ["id"], initially="DEFERRED", deferrable=True)
    op.add_column("journal_entries", sa.Column("merchant_id", sa.Text(), nullable=True))
    op.add_column("journal_entries", sa.Column("bank_id", sa.Text(), nullable=True))
    op.execute(BACKFILL_JOURNAL_SQL)
    op.create_index("ix_journal_entries_bank_id_seq", "journal_entries", ["bank_id", "seq"],
                    unique=False, postgresql_where="bank_id IS NOT NULL")
    op.create_index("ix_journal_entries_merchant_id_seq", "journal_entries",
                    ["merchant_id", "seq"], unique=False,
                    postgresql_where="merchant_id IS NOT NULL")
    for table in APPEND_ONLY_TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change()")
    for table in (*APPEND_ONLY_TABLES, "consumer_codes"):
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change()")
    op.execute(NOTIFY_SQL)


def downgrade() -> None:
    op.execute("DROP TRIGGER key_revocations_operator_remains ON key_revocations")
    op.execute("DROP FUNCTION yufu_operator_remains()")
    op.execute("DROP TRIGGER key_revocations_notify ON key_revocations")
    op.execute("DROP FUNCTION yufu_key_revoked()")
    op.drop_constraint(op.f("fk_merchants_bank_id_banks"), "merchants", type_="foreignkey")
    op.drop_index("ix_journal_entries_merchant_id_seq", table_name="journal_entries",
                  postgresql_where="merchant_id IS NOT NULL")
    op.drop_index("ix_journal_entries_bank_id_seq", table_name="journal_entries",
                  postgresql_where="bank_id IS NOT NULL")
    op.drop_column("journal_entries", "bank_id")
    op.drop_column("journal_entries", "merchant_id")
    op.drop_constraint(op.f("fk_api_keys_merchant_id_merchants"), "api_keys",
                       type_="foreignkey")
    op.drop_constraint(op.f("fk_api_keys_bank_id_banks"), "api_keys", type_="foreignkey")
    op.drop_constraint(op.f("ck_api_keys_consumer_scope"), "api_keys", type_="check")
    op.drop_constraint(op.f("ck_api_keys_role_known"), "api_keys", type_="check")
    op.create_check_constraint(op.f("ck_api_keys_role_known"), "api_keys",
                               "role IN ('operator','merchant','bank','regulator')")
    op.drop_index(op.f("ix_api_keys_consumer_id"), table_name="api_keys")
    op.drop_column("api_keys", "expires_at")
    op.drop_column("api_keys", "consumer_id")
    op.drop_table("key_revocations")
    op.drop_index("ix_access_records_key_id_id", table_name="access_records")
    op.drop_table("access_records")
    op.drop_table("banks")
    op.drop_index("ix_consumer_codes_consumer_id_created_at", table_name="consumer_codes")
    op.drop_table("consumer_codes")
