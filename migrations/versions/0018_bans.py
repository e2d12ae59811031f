"""bans: the blacklist (黑名单, 市场禁入) of persons and premises, their lifts, the arrivals of
merchants at premises and the premises flagged for churn of operators

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:40:00

- bans: one row per ban listed (`ban.listed`; its entry is its id), never changed: a person
  by pseudonym or a premises by normalised address, with reason, source, start and optional
  end. The database refuses an unknown kind, a person that is not a pseudonym, an end not
  after the start, and (trigger) a second ban not lifted over the same days of one subject.
- ban_lifts: a ban lifted (`ban.lifted`), at most once (its primary key is the ban).
- listed_by, lifted_by: the key that acted, as jobs.created_by (0: the operator's command
  line, ledger/auth.py LOCAL_OPERATOR, which has no key row); the journal's actor says so too.
- premises_arrivals: a merchant filed or amended onto a premises, or its legal
  representative changed there: what the churn flag counts.
- premises_flags: a premises flagged (`premises.flagged`), once.
All four are append-only. Sales screen through a memo the writer carries between batches
(ledger/db/ban_store.py), so bans and ban_lifts bump the write generation like the other
carried tables (migration 0005): a ban written by anyone else drops the carry.

Arrivals are backfilled from the `merchant.filed` entries that named a premises (the
register, migration 0015); amendments before this revision are not (their premises was not
kept normalised), so a churn counted across this revision may start low.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("bans", "ban_lifts", "premises_arrivals", "premises_flags")
CARRIED = ("bans", "ban_lifts")

ONE_IN_FORCE_SQL = """
CREATE FUNCTION yufu_one_ban_in_force() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Rows inserted earlier by the same statement are visible here (a BEFORE ROW trigger).
  PERFORM 1 FROM bans b
    WHERE b.kind = NEW.kind AND b.subject = NEW.subject AND b.id <> NEW.id
      AND NOT EXISTS (SELECT 1 FROM ban_lifts l WHERE l.ban_id = b.id)
      AND daterange(b.starts_on, b.ends_on) && daterange(NEW.starts_on, NEW.ends_on);
  IF FOUND THEN
    RAISE EXCEPTION 'yufu: a % already has a ban not lifted over these days', NEW.kind
      USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER bans_one_in_force BEFORE INSERT ON bans
  FOR EACH ROW EXECUTE FUNCTION yufu_one_ban_in_force();
"""

BACKFILL_SQL = """
INSERT INTO premises_arrivals (seq, premises, merchant_id, legal_representative, arrived_on)
SELECT j.seq, m.premises, m.id,
       (SELECT p->>'person_id' FROM jsonb_array_elements(m.people) p
         WHERE p->>'role' = 'legal_representative' LIMIT 1),
       (j.ts AT TIME ZONE 'Asia/Shanghai')::date
FROM merchants m JOIN journal_entries j ON j.seq = m.filed_seq
WHERE m.premises IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM merchant_amendments a WHERE a.merchant_id = m.id)
"""


def upgrade() -> None:
    journal_fk = {"initially": "DEFERRED", "deferrable": True}
    op.create_table(
        "bans",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("listed_by", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('person','premises')", name=op.f("ck_bans_kind_known")),
        sa.CheckConstraint("kind <> 'person' OR subject ~ '^[0-9a-f]{64}$'",
                           name=op.f("ck_bans_person_is_pseudonym")),
        sa.CheckConstraint("length(subject) BETWEEN 1 AND 200",
                           name=op.f("ck_bans_subject_bounded")),
        sa.CheckConstraint("length(reason) > 0 AND length(source) > 0",
                           name=op.f("ck_bans_reason_and_source")),
        sa.CheckConstraint("ends_on IS NULL OR ends_on > starts_on",
                           name=op.f("ck_bans_ends_after_start")),
        sa.ForeignKeyConstraint(["id"], ["journal_entries.seq"],
                                name=op.f("fk_bans_id_journal_entries"), **journal_fk),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_bans_merchant_id_merchants"), **journal_fk),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bans")),
    )
    op.create_index("ix_bans_subject", "bans", ["kind", "subject"])
    op.create_table(
        "ban_lifts",
        sa.Column("ban_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("lifted_on", sa.Date(), nullable=False),
        sa.Column("lifted_seq", sa.BigInteger(), nullable=False),
        sa.Column("lifted_by", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("length(reason) > 0", name=op.f("ck_ban_lifts_reason_given")),
        sa.ForeignKeyConstraint(["ban_id"], ["bans.id"],
                                name=op.f("fk_ban_lifts_ban_id_bans"), **journal_fk),
        sa.ForeignKeyConstraint(["lifted_seq"], ["journal_entries.seq"],
                                name=op.f("fk_ban_lifts_lifted_seq_journal_entries"),
                                **journal_fk),
        sa.PrimaryKeyConstraint("ban_id", name=op.f("pk_ban_lifts")),
        sa.UniqueConstraint("lifted_seq", name=op.f("uq_ban_lifts_lifted_seq")),
    )
    op.create_table(
        "premises_arrivals",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("premises", sa.Text(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("legal_representative", sa.Text(), nullable=True),
        sa.Column("arrived_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["journal_entries.seq"],
                                name=op.f("fk_premises_arrivals_seq_journal_entries"),
                                **journal_fk),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_premises_arrivals_merchant_id_merchants"),
                                **journal_fk),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_premises_arrivals")),
    )
    op.create_index("ix_premises_arrivals_premises", "premises_arrivals",
                    ["premises", "arrived_on"])
    op.create_table(
        "premises_flags",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("premises", sa.Text(), nullable=False),
        sa.Column("flagged_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["seq"], ["journal_entries.seq"],
                                name=op.f("fk_premises_flags_seq_journal_entries"),
                                **journal_fk),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_premises_flags")),
        sa.UniqueConstraint("premises", name=op.f("uq_premises_flags_premises")),
    )
    op.execute(ONE_IN_FORCE_SQL)
    for table in TABLES:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();")
    for table in CARRIED:
        op.execute(f"CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE OR "
                   f"TRUNCATE ON {table} FOR EACH STATEMENT "
                   "EXECUTE FUNCTION yufu_bump_generation();")
    op.execute(BACKFILL_SQL)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    op.execute("DROP FUNCTION yufu_one_ban_in_force()")
