"""The report store (ledger/supervision/report_store.py) on a batch."""

from __future__ import annotations

from sqlalchemy import select

from ledger.db.audit_tables import TreeHead
from ledger.db.batch import Batch
from ledger.db.report_tables import Report
from ledger.supervision.report_store import NewReport
from ledger.supervision.routines import Period, ReportKind


class ReportRows:
    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    def scheduled_made(self, kind: ReportKind, period: Period) -> bool:
        # Written once and never changed, so a plain read is right; and one buffered by an
        # earlier command of this batch counts too.
        for table, row in self.batch.extra_rows:
            if table is Report and row["scheduled"] and (row["kind"], row["period"]) == (
                    kind.value, period.label):
                return True
        found = self.batch.lookup(select(Report.created_seq).where(
            Report.kind == kind.value, Report.period == period.label, Report.scheduled)).first()
        return found is not None

    def head_signed(self, tree_size: int) -> bool:
        found = self.batch.lookup(select(TreeHead.tree_size)
                                  .where(TreeHead.tree_size == tree_size)).first()
        return found is not None

    def add(self, report: NewReport, seq: int, created_key_id: int | None) -> None:
        self.batch.add_row(Report, {
            "created_seq": seq, "kind": report.kind.value, "period": report.period.label,
            "period_start": report.period.start, "period_end": report.period.end,
            "scope_kind": report.scope.kind.value, "scope_name": report.scope.name,
            "scheduled": report.scheduled, "tree_size": report.tree_size,
            "journal_size": report.journal_size, "made_at": report.made_at,
            "figures": dict(report.figures), "figures_sha256": report.figures_sha256,
            "created_key_id": created_key_id})
