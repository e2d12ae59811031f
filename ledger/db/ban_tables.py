"""Bans and the blacklist (migration 0018): bans and their lifts, written once each; the
arrivals of merchants at premises, and the premises flagged for churn."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class Ban(Base):
    """A ban as listed: its entry is its id. Lifted by a row of `ban_lifts`, never changed."""

    __tablename__ = "bans"
    id: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK),
                                    primary_key=True, autoincrement=False)
    kind: Mapped[str]
    subject: Mapped[str]  # a person's pseudonym, or a premises (normalised address)
    reason: Mapped[str]
    source: Mapped[str]
    starts_on: Mapped[date]
    ends_on: Mapped[date | None]
    listed_by: Mapped[int]  # the key (0: the command line's LOCAL_OPERATOR, as in jobs)
    merchant_id: Mapped[str | None] = mapped_column(  # the merchant it arose from
        ForeignKey("merchants.id", **DEFERRED_FK))
    __table_args__ = (
        CheckConstraint("kind IN ('person','premises')", name="kind_known"),
        CheckConstraint("kind <> 'person' OR subject ~ '^[0-9a-f]{64}$'",
                        name="person_is_pseudonym"),
        CheckConstraint("length(subject) BETWEEN 1 AND 200", name="subject_bounded"),
        CheckConstraint("length(reason) > 0 AND length(source) > 0", name="reason_and_source"),
        CheckConstraint("ends_on IS NULL OR ends_on > starts_on", name="ends_after_start"),
        Index("ix_bans_subject", "kind", "subject"),
    )


class BanLift(Base):
    """A ban lifted (解除): at most once."""

    __tablename__ = "ban_lifts"
    ban_id: Mapped[int] = mapped_column(ForeignKey("bans.id", **DEFERRED_FK),
                                        primary_key=True, autoincrement=False)
    reason: Mapped[str]
    lifted_on: Mapped[date]
    lifted_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK),
                                            unique=True)
    lifted_by: Mapped[int]
    __table_args__ = (CheckConstraint("length(reason) > 0", name="reason_given"),)


class PremisesArrival(Base):
    """A merchant filed or amended onto a premises, or its legal representative changed
    there: one per journal entry."""

    __tablename__ = "premises_arrivals"
    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK),
                                     primary_key=True, autoincrement=False)
    premises: Mapped[str]
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id", **DEFERRED_FK))
    legal_representative: Mapped[str | None]
    arrived_on: Mapped[date]
    __table_args__ = (Index("ix_premises_arrivals_premises", "premises", "arrived_on"),)


class PremisesFlag(Base):
    """A premises flagged for churn of operators: once."""

    __tablename__ = "premises_flags"
    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK),
                                     primary_key=True, autoincrement=False)
    premises: Mapped[str] = mapped_column(unique=True)
    flagged_on: Mapped[date]
