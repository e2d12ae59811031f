"""complaints: hotline work orders (12345 / 12315 工单), their steps and their deadlines

Issue 15 item 4. A complaint is routed to its merchant's department and street (属地); each
step of its life is journaled (`complaint.*`) and kept as a row of complaint_steps, written
once; the deadlines it was given are a stored version of its jurisdiction's (data shipped in
ledger/supervision/complaint_deadlines.json), written once. The database holds, besides the
domain's checks: one complaint per channel's order id; the status among the known ones, and
moved only along the transitions the domain allows (a trigger, from
ledger/supervision/complaints.py TRANSITIONS); closed_on set exactly when the status is a
closed one; a hold on a card only with the card named.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("'received','returned','assigned','merchant_responded','mediated',"
            "'escalated','resolved','case_opened'")
# ledger/supervision/complaints.py STEPS, as (from, to) pairs; a test holds the two equal.
TRANSITIONS = (
    ("received", "assigned"), ("received", "returned"), ("received", "received"),
    ("returned", "received"), ("assigned", "merchant_responded"),
    ("assigned", "mediated"), ("merchant_responded", "mediated"), ("escalated", "mediated"),
    ("assigned", "escalated"), ("merchant_responded", "escalated"),
    ("mediated", "escalated"), ("merchant_responded", "resolved"), ("mediated", "resolved"),
    ("escalated", "resolved"), ("assigned", "case_opened"),
    ("merchant_responded", "case_opened"), ("mediated", "case_opened"),
    ("escalated", "case_opened"),
)
PAIRS = ", ".join(f"('{a}','{b}')" for a, b in TRANSITIONS)

TRIGGERS_SQL = f"""
CREATE FUNCTION yufu_complaint_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status
     AND (OLD.status, NEW.status) NOT IN ({PAIRS}) THEN
    RAISE EXCEPTION 'yufu: a complaint cannot go from % to %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = OLD.status AND NEW.status <> 'received' THEN
    -- only a re-route keeps the status (received -> received, to another department)
    IF NEW.closed_on IS DISTINCT FROM OLD.closed_on THEN
      RAISE EXCEPTION 'yufu: a complaint closes only by a step' USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER complaints_transition BEFORE UPDATE ON complaints
  FOR EACH ROW EXECUTE FUNCTION yufu_complaint_transition();
CREATE TRIGGER complaint_steps_append_only BEFORE UPDATE OR DELETE ON complaint_steps
  FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER complaint_steps_no_truncate BEFORE TRUNCATE ON complaint_steps
  FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER complaint_deadlines_append_only BEFORE UPDATE OR DELETE ON complaint_deadlines
  FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();
CREATE TRIGGER complaint_deadlines_no_truncate BEFORE TRUNCATE ON complaint_deadlines
  FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();
"""


def upgrade() -> None:
    op.create_table(
        "complaint_deadlines",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deadlines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.Text(), server_default="", nullable=False),
        sa.Column("created_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_complaint_deadlines_version_positive")),
        sa.CheckConstraint("jsonb_typeof(deadlines) = 'object'",
                           name=op.f("ck_complaint_deadlines_deadlines_object")),
        sa.ForeignKeyConstraint(["created_seq"], ["journal_entries.seq"],
                                name=op.f("fk_complaint_deadlines_created_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_deadlines")),
        sa.UniqueConstraint("jurisdiction", "version", name="uq_complaint_deadlines_version"),
    )
    op.create_table(
        "complaints",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("street", sa.Text(), nullable=True),
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("card_id", sa.Text(), nullable=True),
        sa.Column("holds_card", sa.Boolean(), nullable=False),
        sa.Column("consumer_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("accept_by", sa.Date(), nullable=False),
        sa.Column("respond_by", sa.Date(), nullable=True),
        sa.Column("close_by", sa.Date(), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("responded_on", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("deadline_set_id", sa.BigInteger(), nullable=False),
        sa.Column("received_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("channel IN ('12345','12315','direct')",
                           name=op.f("ck_complaints_channel_known")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_complaints_status_known")),
        sa.CheckConstraint("channel = 'direct' OR external_id IS NOT NULL",
                           name=op.f("ck_complaints_order_named")),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_complaints_amount_not_negative")),
        sa.CheckConstraint("card_id IS NOT NULL OR NOT holds_card",
                           name=op.f("ck_complaints_hold_names_card")),
        sa.CheckConstraint("(closed_on IS NOT NULL) = (status IN ('resolved','case_opened'))",
                           name=op.f("ck_complaints_closed_when_closed")),
        sa.CheckConstraint("accepted_on IS NULL OR accepted_on >= received_on",
                           name=op.f("ck_complaints_accepted_after_received")),
        sa.CheckConstraint("closed_on IS NULL OR closed_on >= received_on",
                           name=op.f("ck_complaints_closed_after_received")),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"],
                                name=op.f("fk_complaints_card_id_cards")),
        sa.ForeignKeyConstraint(["deadline_set_id"], ["complaint_deadlines.id"],
                                name=op.f("fk_complaints_deadline_set_id_complaint_deadlines")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_complaints_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["received_seq"], ["journal_entries.seq"],
                                name=op.f("fk_complaints_received_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("channel", "external_id", name="uq_complaints_order"),
    )
    for column in ("merchant_id", "department", "street", "status", "received_on"):
        op.create_index(op.f(f"ix_complaints_{column}"), "complaints", [column])
    op.create_table(
        "complaint_steps",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("complaint_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("from_department", sa.Text(), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["complaint_id"], ["complaints.id"],
                                name=op.f("fk_complaint_steps_complaint_id_complaints")),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_complaint_steps_key_id_api_keys")),
        sa.ForeignKeyConstraint(["seq"], ["journal_entries.seq"],
                                name=op.f("fk_complaint_steps_seq_journal_entries"),
                                initially="DEFERRED", deferrable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_complaint_steps")),
    )
    op.create_index(op.f("ix_complaint_steps_complaint_id"), "complaint_steps",
                    ["complaint_id"])
    op.create_index("ix_complaint_steps_department_step", "complaint_steps",
                    ["department", "step"])
    op.execute(TRIGGERS_SQL)


def downgrade() -> None:
    op.drop_table("complaint_steps")  # its triggers go with it
    op.execute("DROP TRIGGER complaints_transition ON complaints")
    op.drop_table("complaints")
    op.drop_table("complaint_deadlines")
    op.execute("DROP FUNCTION yufu_complaint_transition()")
