"""The routines' reports (migration 0020): one row per report, written once."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.tables import DEFERRED_FK, Base


class Report(Base):
    """A report (ledger/supervision/routines.py): its id is the seq of its `report.made`."""

    __tablename__ = "reports"
    created_seq: Mapped[int] = mapped_column(
        ForeignKey("journal_entries.seq", **DEFERRED_FK), primary_key=True, autoincrement=False)
    kind: Mapped[str]
    period: Mapped[str]
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    scope_kind: Mapped[str]
    scope_name: Mapped[str | None]
    scheduled: Mapped[bool]
    # The signed tree head the report names (a trigger checks it is one, migration 0020),
    # and the snapshot's journal size.
    tree_size: Mapped[int]
    journal_size: Mapped[int]
    made_at: Mapped[datetime]
    figures: Mapped[dict[str, Any]]
    figures_sha256: Mapped[bytes]
    created_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    __table_args__ = (
        CheckConstraint("kind IN ('daily','weekly','monthly','quarterly')", name="kind_known"),
        CheckConstraint("period_start < period_end", name="period_order"),
        CheckConstraint(
            "(scope_kind = 'district' AND scope_name IS NULL) OR "
            "(scope_kind IN ('department','street') AND scope_name IS NOT NULL)",
            name="scope_known"),
        CheckConstraint("NOT scheduled OR scope_kind = 'district'", name="scheduled_district"),
        CheckConstraint("tree_size >= 1 AND journal_size >= tree_size",
                        name="head_within_snapshot"),
        CheckConstraint("created_seq > journal_size", name="made_after_snapshot"),
        CheckConstraint("jsonb_typeof(figures) = 'object'", name="figures_object"),
        CheckConstraint("octet_length(figures_sha256) = 32", name="figures_sha256_length"),
        Index("ix_reports_kind_period", "kind", "period"),
        # A scheduled report once per kind and period, however many workers make it.
        Index("uq_reports_scheduled", "kind", "period", unique=True,
              postgresql_where=text("scheduled")),
    )
