"""What making a report reads and writes: the reports half of the doorway
(`ledger.commands.Books.reports`). ledger/db/report_store.py implements it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ledger.supervision.routines import Period, ReportKind, Scope


@dataclass(frozen=True, slots=True)
class NewReport:
    """A report as computed in its snapshot, ready to be stored by its `report.made` entry."""

    kind: ReportKind
    period: Period
    scope: Scope
    scheduled: bool
    tree_size: int  # the signed tree head it names
    journal_size: int  # the snapshot's
    made_at: datetime
    figures: Mapping[str, Any]
    figures_sha256: bytes


class ReportStore(Protocol):
    def scheduled_made(self, kind: ReportKind, period: Period) -> bool:
        """Whether the scheduled report of this kind and period is stored already."""
        ...

    def head_signed(self, tree_size: int) -> bool:
        """Whether a signed tree head of exactly this size is stored."""
        ...

    def add(self, report: NewReport, seq: int, created_key_id: int | None) -> None: ...
