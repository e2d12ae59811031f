"""The sections of the routines' reports: each a unit, a function from the report's read-only
snapshot (a connection) and its parameters to rows, with its titles and columns.

A report is its kind's sections in order (`SECTIONS`), each computed in the one snapshot that
ledger/db/report_queries.py opens, so every figure is as at the same journal size. To add a
section (complaints, 四查 signals, alerts): write its function here (read only what the
snapshot shows, filter merchants with `in_scope`, and bound journal reads by
`params.journal_size`), describe it as a `Section` with its columns (Chinese and English),
and append it to the tuple of each kind that shows it in `SECTIONS` (ledger/db/report_kinds.py;
supervision's own sections are in ledger/db/report_supervision.py). Nothing else changes:
storing, the JSON, XLSX and CSV all follow the stored figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, and_, func, or_, select

from ledger.custody.rules import basis_points_whole
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db import supervision_tables as s
from ledger.db import tables as t
from ledger.db.custody_queries import exposure
from ledger.supervision.routines import (
    CHINA_TIME,
    ReportParams,
    ScopeKind,
    SweepCandidate,
    SweepReason,
    rank_sweep,
)

Rows = list[list[Any]]  # each row a list, in the order of its section's columns

# Any select: a filter hands back the query it was given, its columns kept.
Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Section:
    """One unit of a report: its name, titles, columns and the function of its rows."""

    name: str
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: Callable[[Connection, ReportParams], Rows]

    def figures(self, conn: Connection, params: ReportParams) -> dict[str, Any]:
        rows = self.rows(conn, params)
        width = len(self.columns)
        if any(len(row) != width for row in rows):
            raise AssertionError(f"section {self.name}: a row is not {width} columns wide")
        return {"name": self.name, "title": {"zh": self.zh, "en": self.en},
                "columns": [{"name": col.name, "zh": col.zh, "en": col.en}
                            for col in self.columns],
                "rows": rows}


def in_scope(query: Q, params: ReportParams) -> Q:
    """The query's merchants (c.Merchant in its FROM) narrowed to the report's scope."""
    scope = params.scope
    if scope.kind == ScopeKind.department:
        return query.where(c.Merchant.department == scope.name)
    if scope.kind == ScopeKind.street:
        return query.where(c.Merchant.street == scope.name)
    return query


def _merchants(conn: Connection, params: ReportParams) -> list[Any]:
    query = in_scope(select(c.Merchant.__table__), params)
    return list(conn.execute(query.order_by(c.Merchant.id)).all())


def period_entries(params: ReportParams) -> Any:
    """Journal entries of the period, and none beyond the snapshot's journal size."""
    e = t.JournalEntry
    return and_(e.ts >= params.period.starts_at, e.ts < params.period.ends_at,
                e.seq <= params.journal_size)


def _uncovered(liability_fen: int, custody_fen: int) -> int:
    return max(liability_fen - custody_fen, 0)


def _shortfall(liability_fen: int, custody_fen: int, required_bp: int | None) -> int:
    """Custody below what the rule set's ratio asks of the outstanding prepaid (rounded up)."""
    if required_bp is None or liability_fen <= 0:
        return 0
    required_fen = -(-liability_fen * required_bp // basis_points_whole)
    return max(required_fen - custody_fen, 0)


def _open_breaks(conn: Connection, ids: list[str]) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        select(b.ReconciliationBreak.merchant_id, func.count(),
               func.coalesce(func.sum(b.ReconciliationBreak.amount_fen), 0))
        .where(b.ReconciliationBreak.status == "open",
               b.ReconciliationBreak.merchant_id.in_(ids))
        .group_by(b.ReconciliationBreak.merchant_id)).all()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}


def _verifications(conn: Connection, params: ReportParams, ids: list[str]
                   ) -> dict[str, list[Any]]:
    """Each merchant's cross-verifications (交叉验证) of statements closing in the period."""
    v = b.CrossVerification
    rows = conn.execute(
        select(v.merchant_id, v.closing_date, v.bank_balance_fen, v.ledger_balance_fen,
               v.difference_fen)
        .where(v.merchant_id.in_(ids), v.closing_date >= params.period.start,
               v.closing_date < params.period.end, v.verified_seq <= params.journal_size)
        .order_by(v.merchant_id, v.closing_date, v.id)).all()
    found: dict[str, list[Any]] = {}
    for r in rows:
        found.setdefault(r.merchant_id, []).append(r)
    return found


# --- 日管控: every merchant ----------------------------------------------------------------

MERCHANT_COLUMNS = (Column("merchant_id", "商户编号", "Merchant id"),
             Column("name", "商户名称", "Name"),
             Column("industry", "行业", "Industry"),
             Column("department", "主管部门", "Department"),
             Column("street", "属地", "Street"))
_MONEY = (Column("cards", "预付卡数", "Cards"),
          Column("card_liability_fen", "未消费预付余额(分)", "Outstanding prepaid (fen)"),
          Column("custody_balance_fen", "存管资金(分)", "Custody cash (fen)"))

DAILY_MERCHANT_COLUMNS = (
    *MERCHANT_COLUMNS,
    Column("status", "经营状态", "Status"),
    Column("tier", "风险等级", "Tier"),
    *_MONEY,
    Column("coverage_ratio_bp", "存管覆盖率(基点)", "Custody coverage (bp)"),
    Column("required_ratio_bp", "规定存管比例(基点)", "Required ratio (bp)"),
    Column("meets_rule", "是否达标", "Meets the rule"),
    Column("uncovered_fen", "风险敞口(分)", "Exposure: prepaid not in custody (fen)"),
    Column("cross_verification", "当日交叉验证", "The day's cross-verification"),
    Column("bank_balance_fen", "银行余额(分)", "Bank balance (fen)"),
    Column("ledger_balance_fen", "账面余额(分)", "Ledger balance (fen)"),
    Column("difference_fen", "差额(分)", "Difference (fen)"),
    Column("open_breaks", "未结差错数", "Open breaks"),
    Column("open_breaks_fen", "未结差错金额(分)", "Open breaks (fen)"),
)


def daily_merchants(conn: Connection, params: ReportParams) -> Rows:
    merchants = _merchants(conn, params)
    ids = [m.id for m in merchants]
    breaks = _open_breaks(conn, ids)
    verified = _verifications(conn, params, ids)
    rows: Rows = []
    for m in merchants:
        x = exposure(conn, m)
        day = verified.get(m.id, [])
        last = day[-1] if day else None
        result = "none" if last is None else "match" if last.difference_fen == 0 \
            else "difference"
        count, amount = breaks.get(m.id, (0, 0))
        rows.append([
            m.id, m.name, m.industry, m.department, m.street, m.status, m.tier, x["cards"],
            x["card_liability_fen"], x["custody_balance_fen"], x["coverage_ratio_bp"],
            x["required_ratio_bp"], x["meets_rule"],
            _uncovered(x["card_liability_fen"], x["custody_balance_fen"]), result,
            None if last is None else last.bank_balance_fen,
            None if last is None else last.ledger_balance_fen,
            None if last is None else last.difference_fen, count, amount])
    return rows


# --- 周排查: the sweep list ----------------------------------------------------------------

REASON_NAMES: Mapping[SweepReason, tuple[str, str]] = {
    SweepReason.red_tier: ("红色标签", "red tier"),
    SweepReason.yellow_tier: ("黄色标签", "yellow tier"),
    SweepReason.coverage_shortfall: ("存管资金不足", "custody below the required ratio"),
    SweepReason.cross_verification_difference: ("对账差异", "cross-verification difference"),
    SweepReason.open_alerts: ("未处理预警", "alerts not yet acknowledged"),
    SweepReason.open_breaks: ("未结差错", "open reconciliation breaks"),
    SweepReason.active_signals: ("存在风险信号", "四查 signals standing"),
    SweepReason.prepaid_growth: ("预收款快速增长", "outstanding prepaid growing fast"),
}

SWEEP_COLUMNS = (
    Column("rank", "排序", "Rank"),
    *MERCHANT_COLUMNS,
    Column("tier", "风险等级", "Tier"),
    Column("reasons", "排查原因", "Why"),
    Column("reasons_zh", "排查原因(中文)", "Why (Chinese)"),
    Column("shortfall_fen", "存管缺口(分)", "Custody shortfall (fen)"),
    Column("difference_fen", "对账差额(分)", "Cross-verification difference (fen)"),
    Column("open_breaks", "未结差错数", "Open breaks"),
    Column("liability_start_fen", "期初未消费预付余额(分)",
           "Outstanding prepaid, week start (fen)"),
    Column("liability_end_fen", "期末未消费预付余额(分)", "Outstanding prepaid, now (fen)"),
    Column("growth_fen", "增长(分)", "Growth (fen)"),
    Column("open_alerts", "未处理预警数", "Alerts not acknowledged"),
    Column("signals", "风险信号", "Signals standing"),
)


def seq_before(conn: Connection, params: ReportParams) -> int:
    """The journal's size as the period began (the last entry before its first instant)."""
    e = t.JournalEntry
    found = conn.execute(select(func.max(e.seq)).where(
        e.ts < params.period.starts_at, e.seq <= params.journal_size)).scalar()
    return int(found or 0)


def card_liability_at(conn: Connection, seq: int, ids: Iterable[str]) -> dict[str, int]:
    """Each merchant's outstanding prepaid (the cards' unused balances) as the journal's first
    `seq` entries left it: the postings on its cards' accounts up to that entry."""
    rows = conn.execute(
        select(c.Card.merchant_id, func.coalesce(func.sum(-t.Posting.amount_fen), 0))
        .join(t.Posting, t.Posting.account_id == c.Card.account_id)
        .where(t.Posting.transaction_id <= seq, c.Card.merchant_id.in_(list(ids)))
        .group_by(c.Card.merchant_id)).all()
    return {r[0]: int(r[1]) for r in rows}


def open_alerts(conn: Connection, params: ReportParams, ids: list[str]) -> dict[str, int]:
    """Each merchant's alerts no regulator had acknowledged at the snapshot."""
    a = s.Alert
    rows = conn.execute(
        select(a.merchant_id, func.count())
        .where(a.merchant_id.in_(ids), a.created_seq <= params.journal_size,
               or_(a.acknowledged_seq.is_(None), a.acknowledged_seq > params.journal_size))
        .group_by(a.merchant_id)).all()
    return {str(r[0]): int(r[1]) for r in rows}


def standing_signals(conn: Connection, params: ReportParams, ids: list[str]
                     ) -> dict[str, tuple[str, ...]]:
    """Each merchant's signals standing at the snapshot (each kind's latest record is a
    raise), their kinds in order: what `merchant_risk` caches, read from the history."""
    r = s.SignalRecord
    latest = (select(r.merchant_id, r.kind, func.max(r.seq).label("seq"))
              .where(r.merchant_id.in_(ids), r.seq <= params.journal_size)
              .group_by(r.merchant_id, r.kind)).subquery()
    rows = conn.execute(select(r.merchant_id, r.kind)
                        .join(latest, and_(latest.c.merchant_id == r.merchant_id,
                                           latest.c.kind == r.kind, latest.c.seq == r.seq))
                        .where(r.state == "raised").order_by(r.merchant_id, r.kind)).all()
    found: dict[str, tuple[str, ...]] = {}
    for merchant_id, kind in rows:
        found[merchant_id] = (*found.get(merchant_id, ()), kind)
    return found


def weekly_sweep(conn: Connection, params: ReportParams) -> Rows:
    merchants = [m for m in _merchants(conn, params) if m.status != "closed"]
    ids = [m.id for m in merchants]
    breaks = _open_breaks(conn, ids)
    alerts = open_alerts(conn, params, ids)
    signals = standing_signals(conn, params, ids)
    verified = _verifications(conn, params, ids)
    opening = card_liability_at(conn, seq_before(conn, params), ids)
    by_id = {m.id: m for m in merchants}
    candidates = []
    for m in merchants:
        x = exposure(conn, m)
        differences = [abs(v.difference_fen) for v in verified.get(m.id, [])]
        candidates.append(SweepCandidate(
            merchant_id=m.id, tier=m.tier,
            shortfall_fen=_shortfall(x["card_liability_fen"], x["custody_balance_fen"],
                                     x["required_ratio_bp"]),
            difference_fen=max(differences, default=0),
            open_breaks=breaks.get(m.id, (0, 0))[0],
            liability_start_fen=opening.get(m.id, 0),
            liability_end_fen=x["card_liability_fen"],
            open_alerts=alerts.get(m.id, 0), signals=signals.get(m.id, ())))
    rows: Rows = []
    for rank, (cand, reasons) in enumerate(rank_sweep(candidates), start=1):
        m = by_id[cand.merchant_id]
        rows.append([
            rank, m.id, m.name, m.industry, m.department, m.street, m.tier,
            ",".join(r.value for r in reasons), "、".join(REASON_NAMES[r][0] for r in reasons),
            cand.shortfall_fen, cand.difference_fen, cand.open_breaks,
            cand.liability_start_fen, cand.liability_end_fen, cand.growth_fen,
            cand.open_alerts, ",".join(cand.signals) or None])
    return rows


# --- 月调度 and 季度报告: by department, by industry, totals --------------------------------

# The journal's kinds that are actions taken on a merchant (措施), counted per period.
ACTION_KINDS: Mapping[str, tuple[str, str]] = {
    "merchant.frozen": ("冻结", "frozen"),
    "merchant.unfrozen": ("解冻", "unfrozen"),
    "merchant.tier_changed": ("调整风险等级", "tier changed"),
    "merchant.closing": ("启动退出清算", "closure started"),
    "merchant.closed": ("注销退出", "closed"),
}
_ACTION_COLUMNS = {"merchant.frozen": "freezes", "merchant.unfrozen": "unfreezes",
                   "merchant.tier_changed": "tier_changes",
                   "merchant.closing": "closures_started", "merchant.closed": "closed"}
_TIERS = ("blue", "yellow", "red")

_GROUP_FIGURES = (
    Column("merchants", "商户数", "Merchants"),
    Column("filed", "本期备案", "Filed in the period"),
    *_MONEY,
    Column("coverage_ratio_bp", "存管覆盖率(基点)", "Custody coverage (bp)"),
    Column("uncovered_fen", "风险敞口(分)", "Exposure: prepaid not in custody (fen)"),
    Column("below_rule", "存管未达标商户", "Merchants below the required ratio"),
    Column("blue", "蓝色", "Blue"),
    Column("yellow", "黄色", "Yellow"),
    Column("red", "红色", "Red"),
    Column("freezes", "冻结", "Freezes"),
    Column("unfreezes", "解冻", "Unfreezes"),
    Column("tier_changes", "风险等级调整", "Tier changes"),
    Column("closures_started", "启动退出清算", "Closures started"),
    Column("closed", "注销退出", "Closed"),
)


@dataclass
class _Sums:
    merchants: int = 0
    filed: int = 0
    cards: int = 0
    card_liability_fen: int = 0
    custody_balance_fen: int = 0
    uncovered_fen: int = 0
    below_rule: int = 0
    blue: int = 0
    yellow: int = 0
    red: int = 0
    freezes: int = 0
    unfreezes: int = 0
    tier_changes: int = 0
    closures_started: int = 0
    closed: int = 0

    def row(self) -> list[Any]:
        coverage = self.custody_balance_fen * basis_points_whole // self.card_liability_fen \
            if self.card_liability_fen else None
        return [self.merchants, self.filed, self.cards, self.card_liability_fen,
                self.custody_balance_fen, coverage, self.uncovered_fen, self.below_rule,
                self.blue, self.yellow, self.red, self.freezes, self.unfreezes,
                self.tier_changes, self.closures_started, self.closed]


def _period_counts(conn: Connection, params: ReportParams, kinds: Iterable[str]
                   ) -> dict[tuple[str, str], int]:
    """(merchant id, kind) -> how many entries of the kind the period journaled."""
    e = t.JournalEntry
    rows = conn.execute(select(e.merchant_id, e.kind, func.count())
                        .where(period_entries(params), e.kind.in_(list(kinds)),
                               e.merchant_id.is_not(None))
                        .group_by(e.merchant_id, e.kind)).all()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def _filed_in_period(conn: Connection, params: ReportParams) -> set[str]:
    """The merchants whose filing (its entry: a filing's payload names the merchant `id`, so
    the entry's merchant column is empty) falls in the period."""
    e = t.JournalEntry
    query = select(c.Merchant.id).join(e, e.seq == c.Merchant.filed_seq) \
        .where(period_entries(params))
    return set(conn.execute(in_scope(query, params)).scalars())


def _grouped(conn: Connection, params: ReportParams, key: str | None) -> Rows:
    """The group figures by a merchant column (`department`, `industry`), or all together."""
    counts = _period_counts(conn, params, ACTION_KINDS)
    filed = _filed_in_period(conn, params)
    groups: dict[str, _Sums] = {}
    for m in _merchants(conn, params):
        sums = groups.setdefault(getattr(m, key) if key else "", _Sums())
        x = exposure(conn, m)
        sums.merchants += 1
        sums.filed += m.id in filed
        sums.cards += x["cards"]
        sums.card_liability_fen += x["card_liability_fen"]
        sums.custody_balance_fen += x["custody_balance_fen"]
        sums.uncovered_fen += _uncovered(x["card_liability_fen"], x["custody_balance_fen"])
        sums.below_rule += x["meets_rule"] is False
        setattr(sums, m.tier, getattr(sums, m.tier) + 1)
        for kind, column in _ACTION_COLUMNS.items():
            setattr(sums, column, getattr(sums, column) + counts.get((m.id, kind), 0))
    if key is None:
        return [["合计 total", *groups.get("", _Sums()).row()]]
    return [[name, *groups[name].row()] for name in sorted(groups)]


def by_department(conn: Connection, params: ReportParams) -> Rows:
    return _grouped(conn, params, "department")


def by_industry(conn: Connection, params: ReportParams) -> Rows:
    return _grouped(conn, params, "industry")


def totals(conn: Connection, params: ReportParams) -> Rows:
    return _grouped(conn, params, None)


ACTION_COLUMNS = (
    Column("journal_seq", "日志序号", "Journal seq"),
    Column("time", "时间(北京时间)", "Time (China)"),
    Column("action", "措施", "Action"),
    Column("action_zh", "措施(中文)", "Action (Chinese)"),
    *MERCHANT_COLUMNS,
    Column("detail", "说明", "Detail"),
)


def _detail(kind: str, payload: Mapping[str, Any]) -> str:
    if kind == "merchant.tier_changed":
        return f"{payload.get('previous_tier')} -> {payload.get('tier')}"
    reason = payload.get("reason")
    return str(reason) if reason else ""


def actions(conn: Connection, params: ReportParams) -> Rows:
    """Each action the journal records on a merchant in the period: freezes, tier changes,
    closures (措施)."""
    e = t.JournalEntry
    query = (select(e.seq, e.ts, e.kind, e.body, c.Merchant.id, c.Merchant.name,
                    c.Merchant.industry, c.Merchant.department, c.Merchant.street)
             .join(c.Merchant, c.Merchant.id == e.merchant_id)
             .where(period_entries(params), e.kind.in_(list(ACTION_KINDS))))
    rows: Rows = []
    for r in conn.execute(in_scope(query, params).order_by(e.seq)).all():
        payload = json.loads(bytes(r.body)).get("payload", {})
        rows.append([r.seq, r.ts.astimezone(CHINA_TIME).isoformat(timespec="seconds"), r.kind,
                     ACTION_KINDS[r.kind][0], r.id, r.name, r.industry, r.department, r.street,
                     _detail(r.kind, payload)])
    return rows


# --- 日管控: the day's new signals and alerts ------------------------------------------------

DEPARTMENTS = Section("departments", "分部门情况", "By department",
                      (Column("department", "主管部门", "Department"), *_GROUP_FIGURES),
                      by_department)
INDUSTRIES = Section("industries", "分行业情况", "By industry",
                     (Column("industry", "行业", "Industry"), *_GROUP_FIGURES), by_industry)
TOTALS = Section("totals", "合计", "Totals",
                 (Column("scope", "范围", "Scope"), *_GROUP_FIGURES), totals)
ACTIONS = Section("actions", "采取的措施", "Actions taken", ACTION_COLUMNS, actions)
MERCHANTS = Section("merchants", "商户日管控", "Every merchant", DAILY_MERCHANT_COLUMNS,
                    daily_merchants)
SWEEP = Section("sweep", "周排查名单", "Merchants to inspect", SWEEP_COLUMNS, weekly_sweep)
