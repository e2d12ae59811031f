"""Custody state: rule sets, merchants, products, cards, consumptions and instructions.

Money lives in accounts and postings; these tables hold the state the rules need. Every
change to them is journaled by the command that makes it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class RuleSetVersion(Base):
    __tablename__ = "rule_sets"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    jurisdiction: Mapped[str]
    industry: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    rules: Mapped[dict[str, Any]]
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (UniqueConstraint("jurisdiction", "industry", "version",
                                       name="uq_rule_sets_version"),)


class DepartmentMap(Base):
    """One version of a jurisdiction's industry -> supervising-department map (行业主管部门),
    with the department an industry nobody supervises is filed to pending designation.
    Append-only: a designation or a correction is a new version (migration 0016)."""

    __tablename__ = "department_maps"
    jurisdiction: Mapped[str] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    departments: Mapped[dict[str, Any]]
    pending_department: Mapped[str]
    reason: Mapped[str] = mapped_column(server_default="")
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    # NULL when the service wrote it at its first start (or the CLI did).
    created_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("jsonb_typeof(departments) = 'object'", name="departments_object"),
        CheckConstraint("pending_department <> ''", name="pending_named"),
    )


class Merchant(Base):
    __tablename__ = "merchants"
    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    credit_code: Mapped[str] = mapped_column(unique=True)
    industry: Mapped[str]
    department: Mapped[str] = mapped_column(index=True)  # department keys' lists filter on it
    department_pending: Mapped[bool]
    jurisdiction: Mapped[str]
    # The custodian bank, registered (banks) before a merchant can be filed with it.
    bank_id: Mapped[str] = mapped_column(ForeignKey("banks.id", **DEFERRED_FK), index=True)
    custody_account: Mapped[str]
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id"))
    status: Mapped[str]
    tier: Mapped[str]
    hard_blocks: Mapped[dict[str, Any]]
    complaint_count: Mapped[int] = mapped_column(Integer, server_default="0")
    filed_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    # The register (migration 0015): 属地, premises as written and normalised, its people as
    # pseudonyms ([{"role", "person_id"}]); every change an amendment (merchant_amendments).
    street: Mapped[str | None] = mapped_column(index=True)
    address: Mapped[str | None]
    premises: Mapped[str | None] = mapped_column(index=True)
    people: Mapped[list[dict[str, str]]] = mapped_column(JSONB, server_default="[]")
    __table_args__ = (
        CheckConstraint("status IN ('active','frozen','closing','closed')", name="status_known"),
        CheckConstraint("tier IN ('blue','yellow','red')", name="tier_known"),
        # One merchant per custody account at a bank, the account normalised (migration 0013).
        UniqueConstraint("bank_id", "custody_account", name="uq_merchants_custody_account"),
        CheckConstraint("jsonb_typeof(people) = 'array'", name="people_listed"),
        Index("ix_merchants_people", "people", postgresql_using="gin",
              postgresql_ops={"people": "jsonb_path_ops"}),
    )


class MerchantAmendment(Base):
    """A change to a filing (变更登记), as journaled: each field before and after."""

    __tablename__ = "merchant_amendments"
    # One amendment per journal entry: its entry is its id.
    amended_seq: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK), primary_key=True, autoincrement=False)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    changes: Mapped[dict[str, Any]]
    reason: Mapped[str]
    amended_on: Mapped[date]


class MerchantAccount(Base):
    """The merchant's chart of accounts: one account per purpose."""

    __tablename__ = "merchant_accounts"
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", **DEFERRED_FK), unique=True)


class Product(Base):
    __tablename__ = "products"
    id: Mapped[str] = mapped_column(primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[str]
    name: Mapped[str]
    price_fen: Mapped[int]
    sessions: Mapped[int] = mapped_column(Integer)
    bonus_units: Mapped[int]
    validity_months: Mapped[int] = mapped_column(SmallInteger)
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("kind IN ('stored_value','sessions')", name="kind_known"),
        CheckConstraint("price_fen > 0 AND sessions >= 0 AND bonus_units >= 0",
                        name="amounts_valid"),
    )


class Card(Base):
    __tablename__ = "cards"
    id: Mapped[str] = mapped_column(primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"))
    rule_set_id: Mapped[int] = mapped_column(ForeignKey("rule_sets.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", **DEFERRED_FK), unique=True)
    consumer_id: Mapped[str] = mapped_column(index=True)
    token_hash: Mapped[bytes]
    named: Mapped[bool]
    kind: Mapped[str]
    paid_fen: Mapped[int]
    custody_fen: Mapped[int]
    total_units: Mapped[int]
    used_units: Mapped[int]
    consumed_paid_fen: Mapped[int]
    consumed_custody_fen: Mapped[int]
    status: Mapped[str]
    disputed: Mapped[bool]
    sold_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    sold_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("status IN ('active','refund_pending','refunded','closed')",
                        name="status_known"),
        CheckConstraint("0 <= used_units AND used_units <= total_units", name="units_in_range"),
        CheckConstraint("0 <= consumed_paid_fen AND consumed_paid_fen <= paid_fen",
                        name="paid_in_range"),
        CheckConstraint("0 <= consumed_custody_fen AND consumed_custody_fen <= custody_fen "
                        "AND custody_fen <= paid_fen", name="custody_in_range"),
    )


class Consumption(Base):
    __tablename__ = "consumptions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    units: Mapped[int]
    paid_fen: Mapped[int]
    custody_fen: Mapped[int]
    status: Mapped[str]
    confirm_by: Mapped[date] = mapped_column(Date)
    confirmed_on: Mapped[date | None] = mapped_column(Date)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("release_instructions.id"))
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("status IN ('pending','confirmed','rejected')", name="status_known"),
        CheckConstraint("units > 0 AND paid_fen >= 0 AND custody_fen BETWEEN 0 AND paid_fen",
                        name="amounts_valid"),
        Index("ix_consumptions_releasable", "merchant_id", "status", "release_id"),
    )


class ReleaseInstruction(Base):
    __tablename__ = "release_instructions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    amount_fen: Mapped[int]
    holdback_fen: Mapped[int]
    status: Mapped[str]
    end_to_end_id: Mapped[str] = mapped_column(unique=True)
    # The bank's answer to the instruction file: pending, accepted or rejected.
    bank_status: Mapped[str] = mapped_column(server_default="pending")
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    resolved_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("status IN ('pending','settled','failed')", name="status_known"),
        CheckConstraint("amount_fen >= 0 AND holdback_fen >= 0", name="amounts_valid"),
        Index("uq_release_instructions_period", "merchant_id", "period_end", unique=True,
              postgresql_where=text("status <> 'failed'")),
    )


class RefundInstruction(Base):
    __tablename__ = "refund_instructions"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), index=True)
    reason: Mapped[str]
    claim_fen: Mapped[int]
    amount_fen: Mapped[int]
    merchant_due_fen: Mapped[int]
    status: Mapped[str]
    end_to_end_id: Mapped[str] = mapped_column(unique=True)
    # The bank's answer to the instruction file: pending, accepted or rejected.
    bank_status: Mapped[str] = mapped_column(server_default="pending")
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    resolved_seq: Mapped[int | None] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("status IN ('pending','settled','failed')", name="status_known"),
        CheckConstraint("reason IN ('cooling_off','balance','dispute','closure')",
                        name="reason_known"),
        CheckConstraint("amount_fen >= 0 AND merchant_due_fen >= 0 AND "
                        "amount_fen + merchant_due_fen <= claim_fen", name="amounts_valid"),
    )


class Closure(Base):
    """A merchant's closure: what custody could pay when it was planned. Append-only."""

    __tablename__ = "closures"
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    available_fen: Mapped[int]
    planned_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (CheckConstraint("available_fen >= 0", name="available_valid"),)


class ClosurePayout(Base):
    """A closing merchant's plan (关门跑路): each card's claim and what custody pays of it,
    decided once over every claim (largest remainder) before the first refund is instructed.
    The refunds are then instructed in slices; a card's refund is the closure refund
    instruction naming it. Append-only."""

    __tablename__ = "closure_payouts"
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("closures.merchant_id"))
    claim_fen: Mapped[int]
    payout_fen: Mapped[int]
    planned_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("claim_fen > 0 AND payout_fen >= 0 AND payout_fen <= claim_fen",
                        name="amounts_valid"),
        Index("ix_closure_payouts_merchant_id_card_id", "merchant_id", "card_id"),
    )
