"""supervision signals: the four checks (四查) as signals, tiers (红黄蓝) and their controls,
alerts and webhooks

- supervision_rules: every version of a jurisdiction's and industry's thresholds, tier rules
  and controls (ledger/supervision/thresholds.py), journaled `supervision_rules.created`;
  append-only.
- signals: each signal raised or cleared (journaled `signal.raised` / `signal.cleared`);
  append-only. merchant_risk caches a merchant's standing signals and computed tier, and
  whether its releases are held (a run-away pattern, until a regulator clears it).
- status_records: operating-status records (经营异常名录, 失信被执行人, 涉诉, 欠税, 注销) and
  public-sentiment flags (舆情), keyed by credit code; append-only (a lifting is a record).
- merchant_revenues: prior-year revenue as recorded per merchant and year; append-only.
- tier_overrides: a regulator's or the operator's tier with its reason, ended by a review.
- alerts, routed to the merchant's department and street; acknowledged in place (journaled).
- webhook_subscriptions (append-only) and webhook_deliveries (operational: attempts).
- jobs may be a supervision sweep.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("supervision_rules", "signals", "status_records", "merchant_revenues",
               "webhook_subscriptions")
JOB_KINDS_BEFORE = "'statement_import','release_run','auto_confirm','closure'"


def _seq(name: str, table: str, nullable: bool = False) -> tuple[sa.Column, sa.Constraint]:
    return (sa.Column(name, sa.BigInteger(), nullable=nullable),
            sa.ForeignKeyConstraint([name], ["journal_entries.seq"],
                                    name=op.f(f"fk_{table}_{name}_journal_entries"),
                                    initially="DEFERRED", deferrable=True))


def _merchant(table: str, nullable: bool = False) -> tuple[sa.Column, sa.Constraint]:
    return (sa.Column("merchant_id", sa.Text(), nullable=nullable),
            sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                    name=op.f(f"fk_{table}_merchant_id_merchants")))


def upgrade() -> None:
    op.create_table(
        "supervision_rules",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("jurisdiction", sa.Text(), nullable=False),
        sa.Column("industry", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        *_seq("created_seq", "supervision_rules"),
        sa.CheckConstraint("version >= 1", name=op.f("ck_supervision_rules_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_rules")),
        sa.UniqueConstraint("jurisdiction", "industry", "version",
                            name="uq_supervision_rules_version"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        *_merchant("signals"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("observed_on", sa.Date(), nullable=False),
        *_seq("seq", "signals"),
        sa.CheckConstraint("state IN ('raised','cleared')", name=op.f("ck_signals_state_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
    )
    op.create_index(op.f("ix_signals_merchant_id"), "signals", ["merchant_id"])
    op.create_table(
        "merchant_risk",
        sa.Column("id", sa.Text(), nullable=False),  # the merchant's
        sa.ForeignKeyConstraint(["id"], ["merchants.id"],
                                name=op.f("fk_merchant_risk_id_merchants")),
        sa.Column("active", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("computed_tier", sa.Text(), nullable=False),
        sa.Column("releases_held", sa.Boolean(), nullable=False),
        *_seq("held_seq", "merchant_risk", nullable=True),
        sa.Column("assessed_on", sa.Date(), nullable=True),
        sa.CheckConstraint("computed_tier IN ('blue','yellow','red')",
                           name=op.f("ck_merchant_risk_tier_known")),
        sa.CheckConstraint("NOT releases_held OR held_seq IS NOT NULL",
                           name=op.f("ck_merchant_risk_hold_journaled")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_risk")),
    )
    op.create_table(
        "status_records",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("credit_code", sa.Text(), nullable=False),
        *_merchant("status_records", nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("recorded_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        *_seq("recorded_seq", "status_records"),
        sa.CheckConstraint("source <> ''", name=op.f("ck_status_records_source_named")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_records")),
    )
    op.create_index(op.f("ix_status_records_credit_code"), "status_records", ["credit_code"])
    op.create_table(
        "merchant_revenues",
        *_seq("recorded_seq", "merchant_revenues"),
        *_merchant("merchant_revenues"),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("revenue_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("revenue_fen >= 0",
                           name=op.f("ck_merchant_revenues_revenue_not_negative")),
        sa.PrimaryKeyConstraint("recorded_seq", name=op.f("pk_merchant_revenues")),
    )
    op.create_index(op.f("ix_merchant_revenues_merchant_id"), "merchant_revenues",
                    ["merchant_id"])
    op.create_table(
        "tier_overrides",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        *_merchant("tier_overrides"),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        *_seq("created_seq", "tier_overrides"),
        *_seq("ended_seq", "tier_overrides", nullable=True),
        sa.CheckConstraint("tier IN ('blue','yellow','red')",
                           name=op.f("ck_tier_overrides_tier_known")),
        sa.CheckConstraint("reason <> ''", name=op.f("ck_tier_overrides_reason_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_overrides")),
    )
    op.create_index(op.f("ix_tier_overrides_merchant_id"), "tier_overrides", ["merchant_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        *_merchant("alerts"),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("signals", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
        sa.Column("street", sa.Text(), nullable=True),
        *_seq("created_seq", "alerts"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_key_id", sa.BigInteger(), nullable=True),
        *_seq("acknowledged_seq", "alerts", nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["acknowledged_key_id"], ["api_keys.id"],
                                name=op.f("fk_alerts_acknowledged_key_id_api_keys")),
        sa.CheckConstraint("severity IN ('warning','critical')",
                           name=op.f("ck_alerts_severity_known")),
        sa.CheckConstraint("(acknowledged_seq IS NULL) = (acknowledged_at IS NULL)",
                           name=op.f("ck_alerts_acknowledged_journaled")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_merchant_id"), "alerts", ["merchant_id"])
    op.create_index(op.f("ix_alerts_department"), "alerts", ["department"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("street", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        *_seq("created_seq", "webhook_subscriptions"),
        sa.CheckConstraint("(department IS NULL) <> (street IS NULL)",
                           name=op.f("ck_webhook_subscriptions_one_scope")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhook_subscriptions.id"],
                                name=op.f("fk_webhook_deliveries_subscription_id_"
                                          "webhook_subscriptions")),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name=op.f("fk_webhook_deliveries_alert_id_alerts")),
        sa.CheckConstraint("status IN ('pending','delivered','failed')",
                           name=op.f("ck_webhook_deliveries_status_known")),
        sa.CheckConstraint("attempts >= 0",
                           name=op.f("ck_webhook_deliveries_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("subscription_id", "alert_id", name="uq_webhook_deliveries_once"),
    )
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION yufu_refuse_change();")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION yufu_refuse_change();")
    op.drop_constraint(op.f("ck_jobs_kind_known"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_kind_known"), "jobs",
                               f"kind IN ({JOB_KINDS_BEFORE},'supervision_sweep')")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_jobs_kind_known"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_kind_known"), "jobs", f"kind IN ({JOB_KINDS_BEFORE})")
    for table in ("webhook_deliveries", "webhook_subscriptions", "alerts", "tier_overrides",
                  "merchant_revenues", "status_records", "merchant_risk", "signals",
                  "supervision_rules"):
        op.drop_table(table)
