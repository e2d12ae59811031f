"""Supervision state (migration 0019): the rules of the four checks, signals, standing
records, tiers' overrides, release holds, alerts and webhooks. Every change is journaled by
the command that makes it, except webhook deliveries (operational, like a job's progress)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class SupervisionRuleVersion(Base):
    __tablename__ = "supervision_rules"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    jurisdiction: Mapped[str]
    industry: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    rules: Mapped[dict[str, Any]]
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (UniqueConstraint("jurisdiction", "industry", "version",
                                       name="uq_supervision_rules_version"),
                      CheckConstraint("version >= 1", name="version_positive"))


class SignalRecord(Base):
    """A signal raised or cleared, as journaled: a merchant's signals' whole history."""

    __tablename__ = "signals"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str]
    state: Mapped[str]
    value: Mapped[int]
    threshold: Mapped[int]
    source: Mapped[str]
    observed_on: Mapped[date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (CheckConstraint("state IN ('raised','cleared')", name="state_known"),)


class MerchantRisk(Base):
    """A merchant's standing signals and computed tier (a cache of `signals`), and whether a
    run-away pattern holds its releases until a regulator clears it."""

    __tablename__ = "merchant_risk"
    # The merchant's id (named `id`: the batch's row cache updates rows by their `id`).
    id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    active: Mapped[dict[str, Any]]  # {"signals": [Signal.view(), ...]}
    computed_tier: Mapped[str]
    releases_held: Mapped[bool]
    held_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    assessed_on: Mapped[date | None] = mapped_column(Date)
    __table_args__ = (
        CheckConstraint("computed_tier IN ('blue','yellow','red')", name="tier_known"),
        CheckConstraint("NOT releases_held OR held_seq IS NOT NULL", name="hold_journaled"))


class StatusRecord(Base):
    """An operating-status record (经营异常名录, 失信被执行人, 涉诉, 欠税, 注销) or a public
    sentiment flag (舆情), keyed by credit code: listed, or lifted (`listed` false)."""

    __tablename__ = "status_records"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    credit_code: Mapped[str] = mapped_column(index=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"))
    kind: Mapped[str]
    listed: Mapped[bool]
    source: Mapped[str]
    recorded_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str]
    recorded_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (CheckConstraint("source <> ''", name="source_named"),)


class MerchantRevenue(Base):
    """A merchant's revenue for a year (上一年度营业收入), as an operator or regulator recorded
    it: the latest record of a year stands."""

    __tablename__ = "merchant_revenues"
    recorded_seq: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK), primary_key=True, autoincrement=False)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    revenue_fen: Mapped[int]
    __table_args__ = (CheckConstraint("revenue_fen >= 0", name="revenue_not_negative"),)


class TierOverride(Base):
    __tablename__ = "tier_overrides"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    tier: Mapped[str]
    reason: Mapped[str]
    expires_on: Mapped[date | None] = mapped_column(Date)
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    ended_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (CheckConstraint("tier IN ('blue','yellow','red')", name="tier_known"),
                      CheckConstraint("reason <> ''", name="reason_given"))


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str]
    severity: Mapped[str]
    signals: Mapped[dict[str, Any]]  # {"signals": [Signal.view(), ...]}
    department: Mapped[str] = mapped_column(index=True)
    street: Mapped[str | None]
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    created_at: Mapped[datetime]
    acknowledged_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    acknowledged_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    acknowledged_at: Mapped[datetime | None]
    __table_args__ = (
        CheckConstraint("severity IN ('warning','critical')", name="severity_known"),
        CheckConstraint("(acknowledged_seq IS NULL) = (acknowledged_at IS NULL)",
                        name="acknowledged_journaled"))


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    department: Mapped[str | None]
    street: Mapped[str | None]
    url: Mapped[str]
    secret: Mapped[str]
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (CheckConstraint("(department IS NULL) <> (street IS NULL)",
                                      name="one_scope"),)


class WebhookDelivery(Base):
    """One alert to one subscription: tried until delivered or out of attempts, every try
    counted, so nothing is dropped unseen."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    status: Mapped[str]
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None]
    delivered_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_id", name="uq_webhook_deliveries_once"),
        CheckConstraint("status IN ('pending','delivered','failed')", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"))
