"""Complaints (12345 / 12315 工单): the work orders, each step of their lives, and the
deadlines they were given (migration 0017). Every change is journaled by the command that
makes it (ledger/flows/complaints.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base

STATUSES_SQL = ("'received','returned','assigned','merchant_responded','mediated',"
                "'escalated','resolved','case_opened'")


class ComplaintDeadlineSet(Base):
    """One version of a jurisdiction's complaint deadlines, as a complaint first used it.
    Append-only."""

    __tablename__ = "complaint_deadlines"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    jurisdiction: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    deadlines: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(server_default="")
    created_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        UniqueConstraint("jurisdiction", "version", name="uq_complaint_deadlines_version"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("jsonb_typeof(deadlines) = 'object'", name="deadlines_object"),
    )


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    channel: Mapped[str]
    external_id: Mapped[str | None]  # the hotline's order id: one complaint per channel's id
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    department: Mapped[str] = mapped_column(index=True)  # routed to now
    street: Mapped[str | None] = mapped_column(index=True)
    jurisdiction: Mapped[str]
    category: Mapped[str]
    amount_fen: Mapped[int]
    card_id: Mapped[str | None] = mapped_column(ForeignKey("cards.id"))
    holds_card: Mapped[bool]
    consumer_id: Mapped[str | None]  # a pseudonym, as a sale's
    status: Mapped[str] = mapped_column(index=True)
    received_at: Mapped[datetime]
    received_on: Mapped[date] = mapped_column(index=True)
    accept_by: Mapped[date]
    respond_by: Mapped[date | None]
    close_by: Mapped[date]
    accepted_on: Mapped[date | None]
    responded_on: Mapped[date | None]
    closed_on: Mapped[date | None]
    deadline_set_id: Mapped[int] = mapped_column(ForeignKey("complaint_deadlines.id"))
    received_seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK))
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_complaints_order"),
        CheckConstraint("channel IN ('12345','12315','direct')", name="channel_known"),
        CheckConstraint(f"status IN ({STATUSES_SQL})", name="status_known"),
        CheckConstraint("channel = 'direct' OR external_id IS NOT NULL", name="order_named"),
        CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        CheckConstraint("card_id IS NOT NULL OR NOT holds_card", name="hold_names_card"),
        CheckConstraint("(closed_on IS NOT NULL) = (status IN ('resolved','case_opened'))",
                        name="closed_when_closed"),
        CheckConstraint("accepted_on IS NULL OR accepted_on >= received_on",
                        name="accepted_after_received"),
        CheckConstraint("closed_on IS NULL OR closed_on >= received_on",
                        name="closed_after_received"),
    )


class ComplaintStep(Base):
    """A step of a complaint's life, as journaled: one row per journal entry, written once.
    `department` is the department the step is counted to (the one that sent it back, the
    one it was re-routed to); `from_department` the one it left, on a re-route."""

    __tablename__ = "complaint_steps"
    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq", **DEFERRED_FK),
                                     primary_key=True, autoincrement=False)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id"), index=True)
    step: Mapped[str]
    from_status: Mapped[str]
    to_status: Mapped[str]
    department: Mapped[str]
    from_department: Mapped[str | None]
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    note: Mapped[str] = mapped_column(server_default="")
    on: Mapped[date]
    __table_args__ = (
        Index("ix_complaint_steps_department_step", "department", "step"),
    )
