"""Storing a report of the routines (日管控、周排查、月调度, 季度报告).

The figures were computed before, in one read-only snapshot (ledger/db/report_queries.py,
which names the signed tree head the snapshot saw); this command journals `report.made` with
the head, the period, the scope and the SHA-256 of the canonical figures, and stores the row
(written once), so a report can never be changed without the journal showing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.access import report_scope
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.errors import Conflict, InvalidInput, require
from ledger.supervision.report_store import NewReport
from ledger.supervision.routines import ScopeKind, figures_sha256


@dataclass(frozen=True)
class MakeReport(Command):
    """`principal` None: the scheduler (the system), which makes district reports only."""

    principal: Principal | None
    report: NewReport

    def run(self, books: Books) -> dict[str, Any]:
        r = self.report
        if self.principal is not None:
            require(report_scope(self.principal, r.scope) == r.scope,
                    "the route asks for the scope this key may make")
        if r.scheduled and r.scope.kind != ScopeKind.district:
            raise InvalidInput("scheduled reports are the district's", field="scope")
        require(figures_sha256(r.figures) == r.figures_sha256, "the hash is the figures'")
        if r.scheduled and books.reports.scheduled_made(r.kind, r.period):
            raise Conflict(f"the scheduled {r.kind.value} report of {r.period.label} is made",
                           field="period")
        require(books.reports.head_signed(r.tree_size), "a report names a signed head")
        details = {"kind": r.kind.value, "period": r.period.label, "scope": r.scope.view(),
                   "scheduled": r.scheduled, "tree_size": r.tree_size,
                   "journal_size": r.journal_size, "figures_sha256": r.figures_sha256.hex()}
        entry = books.append("report.made", details)
        key_id = self.principal.key_id if self.principal is not None else None
        books.reports.add(r, entry.seq, key_id or None)  # key 0, the local operator: no row
        return {"id": entry.seq, **details, "journal_seq": entry.seq}
