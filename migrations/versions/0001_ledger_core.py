"""ledger core

Revision ID: 0001
Revises:
Create Date: 2026-11-23 18:16:43.546861
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Hand-written SQL: the database's own guard on the invariants the domain checks first.
TRIGGERS_SQL = """
CREATE FUNCTION yufu_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'yufu: % on % is refused: the table is append-only', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION yufu_journal_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  before_hash bytea;
BEGIN
  IF NEW.entry_hash <> sha256(NEW.body) THEN
    RAISE EXCEPTION 'yufu: entry % hash is not SHA-256 of its bytes', NEW.seq
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.seq = 1 THEN
    before_hash := decode(repeat('00', 32), 'hex');
  ELSE
    SELECT entry_hash INTO before_hash FROM journal_entries WHERE seq = NEW.seq - 1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'yufu: entry % would leave a gap', NEW.seq USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF NEW.prev_hash <> before_hash THEN
    RAISE EXCEPTION 'yufu: entry % does not link to entry %', NEW.seq, NEW.seq - 1
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE FUNCTION yufu_head_matches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq < OLD.seq THEN
    RAISE EXCEPTION 'yufu: the chain head never moves back' USING ERRCODE = 'check_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM journal_entries WHERE seq = NEW.seq AND entry_hash = NEW.entry_hash)
     OR EXISTS (SELECT 1 FROM journal_entries WHERE seq = NEW.seq + 1) THEN
    RAISE EXCEPTION 'yufu: the chain head must be the last journal entry'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

-- One check per transaction at commit: its postings fill every slot (postings_count) and sum
-- to zero per currency. Postings name their transaction's postings_count and an idx below it,
-- so a posting can never be added to a transaction afterwards.
CREATE FUNCTION yufu_transaction_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  found_count bigint;
  off_currency text;
  off_total numeric;
BEGIN
  SELECT count(*) INTO found_count FROM postings WHERE transaction_id = NEW.id;
  IF found_count <> NEW.postings_count THEN
    RAISE EXCEPTION 'yufu: transaction % has % postings, not %', NEW.id, found_count,
      NEW.postings_count USING ERRCODE = 'check_violation';
  END IF;
  SELECT currency, sum(amount_fen) INTO off_currency, off_total FROM postings
    WHERE transaction_id = NEW.id GROUP BY currency HAVING sum(amount_fen) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'yufu: transaction % does not balance in % (off by %)',
      NEW.id, off_currency, off_total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION yufu_account_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.id, NEW.kind, NEW.currency, NEW.name, NEW.merchant_id, NEW.bank_id, NEW.non_negative,
      NEW.opened_seq) IS DISTINCT FROM (OLD.id, OLD.kind, OLD.currency, OLD.name,
      OLD.merchant_id, OLD.bank_id, OLD.non_negative, OLD.opened_seq) THEN
    RAISE EXCEPTION 'yufu: only an account''s cached balance may change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER journal_entries_link BEFORE INSERT ON journal_entries
  FOR EACH ROW EXECUTE FUNCTION yufu_journal_link();
CREATE TRIGGER chain_head_matches BEFORE UPDATE ON chain_head
  FOR EACH ROW EXECUTE FUNCTION yufu_head_matches();
CREATE CONSTRAINT TRIGGER transactions_balance AFTER INSERT ON transactions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION yufu_transaction_balances();
CREATE TRIGGER accounts_fixed BEFORE UPDATE ON accounts
  FOR EACH ROW EXECUTE FUNCTION yufu_account_fixed();
"""

APPEND_ONLY_TABLES = ("journal_entries", "transactions", "postings", "api_keys")
NO_DELETE_TABLES = ("accounts", "chain_head")


def _refuse_changes_sql() -> str:
    statements = []
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();"
        )
    for table in APPEND_ONLY_TABLES + NO_DELETE_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();"
        )
    for table in NO_DELETE_TABLES:
        statements.append(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();"
        )
    return "\n".join(statements)


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "chain_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_chain_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_head")),
    )
    op.create_table(
        "journal_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "octet_length(prev_hash) = 32 AND octet_length(entry_hash) = 32",
            name=op.f("ck_journal_entries_hash_lengths"),
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_journal_entries_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_journal_entries_entry_hash")),
    )
    op.create_index("ix_journal_entries_kind_seq", "journal_entries", ["kind", "seq"], unique=False)
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=True),
        sa.Column("bank_id", sa.Text(), nullable=True),
        sa.Column("non_negative", sa.Boolean(), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("opened_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "NOT non_negative OR (CASE WHEN kind IN ('asset','expense') THEN balance_fen >= 0 "
            "ELSE balance_fen <= 0 END)",
            name=op.f("ck_accounts_non_negative_balance"),
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_accounts_currency_iso")),
        sa.CheckConstraint(
            "kind IN ('asset','liability','equity','income','expense')",
            name=op.f("ck_accounts_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["opened_seq"],
            ["journal_entries.seq"],
            name=op.f("fk_accounts_opened_seq_journal_entries"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
    )
    op.create_index(op.f("ix_accounts_bank_id"), "accounts", ["bank_id"], unique=False)
    op.create_index(op.f("ix_accounts_merchant_id"), "accounts", ["merchant_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=True),
        sa.Column("bank_id", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("issued_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(role = 'bank') = (bank_id IS NOT NULL)", name=op.f("ck_api_keys_bank_scope")
        ),
        sa.CheckConstraint(
            "(role = 'merchant') = (merchant_id IS NOT NULL)",
            name=op.f("ck_api_keys_merchant_scope"),
        ),
        sa.CheckConstraint(
            "role IN ('operator','merchant','bank','regulator')",
            name=op.f("ck_api_keys_role_known"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_seq"],
            ["journal_entries.seq"],
            name=op.f("fk_api_keys_issued_seq_journal_entries"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("postings_count", sa.SmallInteger(), nullable=False),
        sa.Column("reverses_id", sa.BigInteger(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reverses_id IS NULL OR reverses_id < id", name=op.f("ck_transactions_reverses_earlier")
        ),
        sa.ForeignKeyConstraint(
            ["id"],
            ["journal_entries.seq"],
            name=op.f("fk_transactions_id_journal_entries"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["transactions.id"],
            name=op.f("fk_transactions_reverses_id_transactions"),
        ),
        sa.CheckConstraint("postings_count >= 2", name=op.f("ck_transactions_two_postings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_transactions_reverses_id")),
        sa.UniqueConstraint("id", "postings_count", name="uq_transactions_id_postings_count"),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("api_key_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_idempotency_records_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("api_key_id", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "postings",
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("idx", sa.SmallInteger(), nullable=False),
        sa.Column("postings_count", sa.SmallInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "abs(amount_fen) <= 9007199254740991", name=op.f("ck_postings_amount_exact_in_json")
        ),
        sa.CheckConstraint("amount_fen <> 0", name=op.f("ck_postings_amount_not_zero")),
        sa.CheckConstraint(
            "idx >= 0 AND idx < postings_count", name=op.f("ck_postings_idx_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "currency"],
            ["accounts.id", "accounts.currency"],
            name="fk_postings_account_currency",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id", "postings_count"],
            ["transactions.id", "transactions.postings_count"],
            name="fk_postings_transaction",
        ),
        sa.PrimaryKeyConstraint("transaction_id", "idx", name=op.f("pk_postings")),
    )
    op.create_index(
        "ix_postings_account_id_transaction_id",
        "postings",
        ["account_id", "transaction_id"],
        unique=False,
    )
    # ### end Alembic commands ###
    op.execute(
        "INSERT INTO chain_head (id, seq, entry_hash, ts) "
        "VALUES (1, 0, decode(repeat('00', 32), 'hex'), NULL)"
    )
    op.execute(TRIGGERS_SQL)
    op.execute(_refuse_changes_sql())


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    # Dropping the tables drops their triggers; the functions go last.
    op.drop_index("ix_postings_account_id_transaction_id", table_name="postings")
    op.drop_table("postings")
    op.drop_table("idempotency_records")
    op.drop_table("transactions")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_accounts_merchant_id"), table_name="accounts")
    op.drop_index(op.f("ix_accounts_bank_id"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index("ix_journal_entries_kind_seq", table_name="journal_entries")
    op.drop_table("journal_entries")
    op.drop_table("chain_head")
    # ### end Alembic commands ###
    for name in (
        "yufu_refuse_change",
        "yufu_journal_link",
        "yufu_head_matches",
        "yufu_transaction_balances",
        "yufu_account_fixed",
    ):
        op.execute(f"DROP FUNCTION {name}()")
