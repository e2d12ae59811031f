"""Computing a report in one snapshot, and reading the stored ones.

A report's figures are computed in ONE read-only REPEATABLE READ transaction: its first
statement reads the chain head (the snapshot's journal size), then the latest signed tree head
at or below it, then every section (ledger/db/report_sections.py) in that same snapshot. So
every figure is as the journal's first `journal_size` entries left the ledger, and the report
names the head it was computed at. The caller signs a head first (ledger/audit_service.py
SignTreeHead) and computes again while writes land in between, so the head it names normally
covers the snapshot exactly (`tree_size == journal_size`); api/reports.py does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Select, select

from ledger import journal
from ledger.access import own_scope, reads_report, require_overseer
from ledger.audit import SignedTreeHead, TreeHead
from ledger.auth import Principal
from ledger.db import queries
from ledger.db.audit_tables import TreeHead as TreeHeadRow
from ledger.db.report_kinds import SECTIONS
from ledger.db.report_tables import Report
from ledger.errors import NotFound, Refused
from ledger.supervision.report_store import NewReport
from ledger.supervision.routines import (
    KIND_NAMES,
    ReportAsk,
    ReportKind,
    ReportParams,
    Scope,
    ScopeKind,
    figures_sha256,
)

# Any select: a filter hands back the query it was given, its columns kept.
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class Computed:
    report: NewReport
    head: SignedTreeHead

    @property
    def head_covers_snapshot(self) -> bool:
        return self.head.head.tree_size == self.report.journal_size


def head_at_or_below(conn: Connection, size: int) -> SignedTreeHead | None:
    row = conn.execute(
        select(TreeHeadRow.tree_size, TreeHeadRow.root_hash, TreeHeadRow.ts,
               TreeHeadRow.key_id, TreeHeadRow.signature)
        .where(TreeHeadRow.tree_size <= size)
        .order_by(TreeHeadRow.tree_size.desc()).limit(1)).first()
    if row is None:
        return None
    return SignedTreeHead(TreeHead(row.tree_size, bytes(row.root_hash),
                                   journal.format_ts(row.ts), row.key_id),
                          bytes(row.signature))


def snapshot(engine: Engine) -> Connection:
    """A connection whose next transaction is read only and REPEATABLE READ: one snapshot,
    taken at its first statement, for everything read in it."""
    return engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                              postgresql_readonly=True)


def compute(engine: Engine, ask: ReportAsk) -> Computed:
    """The report's figures, computed in one snapshot, naming the signed head it saw."""
    kind, period, scope = ask.kind, ask.period, ask.scope
    with snapshot(engine) as conn, conn.begin():
        journal_size = queries.chain_head(conn)[0]  # the first statement: the snapshot
        made_at = datetime.now(UTC)
        head = head_at_or_below(conn, journal_size)
        if head is None:
            raise Refused("no tree head is signed yet: a report names the head it was "
                          "computed at", field="tree_size")
        params = ReportParams(kind, period, scope, journal_size)
        figures = {
            "kind": kind.value, "kind_name": dict(zip(("zh", "en"), KIND_NAMES[kind],
                                                      strict=True)),
            "period": {"label": period.label, "start": period.start.isoformat(),
                       "end": period.end.isoformat()},
            "scope": scope.view(), "tree_head": head.view(), "journal_size": journal_size,
            "as_of": journal.format_ts(made_at),
            "sections": [section.figures(conn, params) for section in SECTIONS[kind]]}
    report = NewReport(kind, period, scope, ask.scheduled, head.head.tree_size, journal_size,
                       made_at, figures, figures_sha256(figures))
    return Computed(report, head)


# --- stored reports --------------------------------------------------------------------------

_SUMMARY = (Report.created_seq, Report.kind, Report.period, Report.period_start,
            Report.period_end, Report.scope_kind, Report.scope_name, Report.scheduled,
            Report.tree_size, Report.journal_size, Report.made_at, Report.figures_sha256,
            TreeHeadRow.root_hash, TreeHeadRow.ts, TreeHeadRow.key_id, TreeHeadRow.signature)


def _summary(row: Any) -> dict[str, Any]:
    return {"id": row.created_seq, "kind": row.kind,
            "period": {"label": row.period, "start": row.period_start.isoformat(),
                       "end": row.period_end.isoformat()},
            "scope": {"kind": row.scope_kind, "name": row.scope_name},
            "scheduled": row.scheduled,
            "tree_head": {"tree_size": row.tree_size, "root_hash": bytes(row.root_hash).hex(),
                          "timestamp": journal.format_ts(row.ts), "key_id": row.key_id,
                          "signature": bytes(row.signature).hex()},
            "journal_size": row.journal_size, "made_at": journal.format_ts(row.made_at),
            "figures_sha256": bytes(row.figures_sha256).hex(), "journal_seq": row.created_seq}


def _readable(query: Q, principal: Principal) -> Q:
    own = own_scope(principal)
    if own.kind == ScopeKind.district:
        return query
    return query.where(Report.scope_kind == own.kind.value, Report.scope_name == own.name)


def reports_page(conn: Connection, principal: Principal, kind: ReportKind | None,
                 after: int, limit: int) -> dict[str, Any]:
    """The stored reports this key may read, newest last, a page by id."""
    require_overseer(principal)
    query = (select(*_SUMMARY).join(TreeHeadRow, TreeHeadRow.tree_size == Report.tree_size)
             .where(Report.created_seq > after))
    if kind is not None:
        query = query.where(Report.kind == kind.value)
    rows = conn.execute(_readable(query, principal).order_by(Report.created_seq)
                        .limit(limit)).all()
    return {"items": [_summary(r) for r in rows],
            "next_after": rows[-1].created_seq if len(rows) == limit else None}


def report(conn: Connection, principal: Principal, report_id: int) -> dict[str, Any]:
    """A stored report with its figures; one outside this key's scope answers as missing."""
    require_overseer(principal)
    row = conn.execute(select(*_SUMMARY, Report.figures)
                       .join(TreeHeadRow, TreeHeadRow.tree_size == Report.tree_size)
                       .where(Report.created_seq == report_id)).first()
    if row is not None:
        scope = Scope(ScopeKind(row.scope_kind), row.scope_name)
        if not reads_report(principal, scope):
            row = None  # a regulator's report outside its scope: as if missing
    if row is None:
        raise NotFound(f"report {report_id} does not exist", field="report_id")
    return {**_summary(row), "figures": row.figures}


def scheduled_made(conn: Connection, wanted: list[tuple[ReportKind, str]]
                   ) -> set[tuple[ReportKind, str]]:
    """Which of these (kind, period) have their scheduled report stored."""
    if not wanted:
        return set()
    rows = conn.execute(select(Report.kind, Report.period).where(
        Report.scheduled, Report.period.in_([p for _, p in wanted]))).all()
    return {(ReportKind(r.kind), r.period) for r in rows}
