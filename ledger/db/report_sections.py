"""The sections of the routines' reports: each a unit, a function from the report's read-only
snapshot (a connection) and its parameters to rows, with its titles and columns.

A report is its kind's sections in order (`SECTIONS`), each computed in the one snapshot that
ledger/db/report_queries.py opens, so every figure is as at the same journal size. To add a
section (complaints, 四查 signals, alerts): write its function here (read only what the
snapshot shows, filter merchants with `in_scope`, and bound journal reads by
`params.journal_size`), describe it as a `Section` with its columns (Chinese and English),
and append it to the tuple of each kind that shows it in `SECTIONS`. Nothing else changes:
storing, the JSON, XLSX and CSV all follow the stored figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, and_, func, or_, select, union

from ledger.custody.rules import basis_points_whole
from ledger.db import bank_tables as b
from ledger.db import complaint_tables as q
from ledger.db import custody_tables as c
from ledger.db import supervision_tables as s
from ledger.db import tables as t
from ledger.db.complaint_queries import Window
from ledger.db.complaint_queries import figures as complaint_figures
from ledger.db.custody_queries import exposure
from ledger.supervision.routines import (
    CHINA_TIME,
    ReportKind,
    ReportParams,
    ScopeKind,
    SweepCandidate,
    SweepReason,
    china_date,
    rank_sweep,
)
from ledger.supervision.signals import CHECK_OF, Check, SignalKind

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


def _period_entries(params: ReportParams) -> Any:
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

_MERCHANT = (Column("merchant_id", "商户编号", "Merchant id"),
             Column("name", "商户名称", "Name"),
             Column("industry", "行业", "Industry"),
             Column("department", "主管部门", "Department"),
             Column("street", "属地", "Street"))
_MONEY = (Column("cards", "预付卡数", "Cards"),
          Column("card_liability_fen", "未消费预付余额(分)", "Outstanding prepaid (fen)"),
          Column("custody_balance_fen", "存管资金(分)", "Custody cash (fen)"))

DAILY_MERCHANT_COLUMNS = (
    *_MERCHANT,
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
    *_MERCHANT,
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
                        .where(_period_entries(params), e.kind.in_(list(kinds)),
                               e.merchant_id.is_not(None))
                        .group_by(e.merchant_id, e.kind)).all()
    return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


def _filed_in_period(conn: Connection, params: ReportParams) -> set[str]:
    """The merchants whose filing (its entry: a filing's payload names the merchant `id`, so
    the entry's merchant column is empty) falls in the period."""
    e = t.JournalEntry
    query = select(c.Merchant.id).join(e, e.seq == c.Merchant.filed_seq) \
        .where(_period_entries(params))
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
    *_MERCHANT,
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
             .where(_period_entries(params), e.kind.in_(list(ACTION_KINDS))))
    rows: Rows = []
    for r in conn.execute(in_scope(query, params).order_by(e.seq)).all():
        payload = json.loads(bytes(r.body)).get("payload", {})
        rows.append([r.seq, r.ts.astimezone(CHINA_TIME).isoformat(timespec="seconds"), r.kind,
                     ACTION_KINDS[r.kind][0], r.id, r.name, r.industry, r.department, r.street,
                     _detail(r.kind, payload)])
    return rows


# --- 日管控: the day's new signals and alerts ------------------------------------------------

CHECK_NAMES: Mapping[Check, str] = {
    Check.fund_flows: "查资金流水", Check.complaints: "查投诉记录",
    Check.operating_status: "查经营状态", Check.public_sentiment: "查舆情信息"}

SIGNAL_COLUMNS = (
    Column("journal_seq", "日志序号", "Journal seq"),
    Column("time", "时间(北京时间)", "Time (China)"),
    *_MERCHANT,
    Column("check", "四查", "Check"),
    Column("check_zh", "四查(中文)", "Check (Chinese)"),
    Column("kind", "风险信号", "Signal"),
    Column("state", "状态(发出/解除)", "State (raised or cleared)"),
    Column("value", "数值", "Value"),
    Column("threshold", "阈值", "Threshold"),
    Column("source", "来源", "Source"),
    Column("day", "观察日", "Day observed"),
)


def _when(moment: Any) -> str:
    return str(moment.astimezone(CHINA_TIME).isoformat(timespec="seconds"))


def new_signals(conn: Connection, params: ReportParams) -> Rows:
    """The signals raised or cleared in the period (journaled in it), in journal order."""
    e, r = t.JournalEntry, s.SignalRecord
    query = (select(r.seq, e.ts, c.Merchant.id, c.Merchant.name, c.Merchant.industry,
                    c.Merchant.department, c.Merchant.street, r.kind, r.state, r.value,
                    r.threshold, r.source, r.observed_on)
             .join(e, e.seq == r.seq).join(c.Merchant, c.Merchant.id == r.merchant_id)
             .where(_period_entries(params)))
    rows: Rows = []
    for row in conn.execute(in_scope(query, params).order_by(r.seq)).all():
        check = CHECK_OF[SignalKind(row.kind)]
        rows.append([row.seq, _when(row.ts), row.id, row.name, row.industry, row.department,
                     row.street, check.value, CHECK_NAMES[check], row.kind, row.state,
                     row.value, row.threshold, row.source, row.observed_on.isoformat()])
    return rows


ALERT_COLUMNS = (
    Column("alert_id", "预警编号", "Alert id"),
    Column("time", "时间(北京时间)", "Time (China)"),
    *_MERCHANT,
    Column("kind", "预警类型", "Kind"),
    Column("severity", "级别", "Severity"),
    Column("signals", "风险信号", "Signals"),
    Column("acknowledged", "是否已处理", "Acknowledged"),
    Column("journal_seq", "日志序号", "Journal seq"),
)


def new_alerts(conn: Connection, params: ReportParams) -> Rows:
    """The alerts raised in the period, and whether a regulator had acknowledged each by
    the snapshot."""
    e, a = t.JournalEntry, s.Alert
    query = (select(a.id, e.ts, c.Merchant.id.label("merchant_id"), c.Merchant.name,
                    c.Merchant.industry, c.Merchant.department, c.Merchant.street, a.kind,
                    a.severity, a.signals, a.acknowledged_seq, a.created_seq)
             .join(e, e.seq == a.created_seq).join(c.Merchant, c.Merchant.id == a.merchant_id)
             .where(_period_entries(params)))
    rows: Rows = []
    for row in conn.execute(in_scope(query, params).order_by(a.created_seq)).all():
        seen = row.acknowledged_seq is not None and row.acknowledged_seq <= params.journal_size
        rows.append([row.id, _when(row.ts), row.merchant_id, row.name, row.industry,
                     row.department, row.street, row.kind, row.severity,
                     ",".join(sig["kind"] for sig in row.signals["signals"]), seen,
                     row.created_seq])
    return rows


# --- 月调度 and 季度报告: complaints per department (seed 004) -------------------------------

def _rate_columns(name: str, zh: str, en: str) -> tuple[Column, ...]:
    return (Column(f"{name}_numerator", f"{zh}分子", f"{en}: numerator"),
            Column(f"{name}_denominator", f"{zh}分母", f"{en}: denominator"),
            Column(f"{name}_bp", f"{zh}(基点)", f"{en} (bp)"))


COMPLAINT_COLUMNS = (
    Column("department", "主管部门", "Department"),
    Column("received", "收到投诉", "Received"),
    Column("accepted", "已受理", "Accepted"),
    *_rate_columns("acceptance_rate", "受理率", "Acceptance rate"),
    *_rate_columns("on_time_closure_rate", "按时办结率", "On-time closure rate"),
    Column("overdue", "超期未办", "Overdue"),
    Column("routed", "12345/12315转办", "Routed in (12345/12315)"),
    Column("routed_open", "转办未办结", "Routed in, open"),
    Column("direct", "直接受理", "Received directly"),
    Column("direct_open", "直接受理未办结", "Received directly, open"),
    Column("returned", "退单", "Sent back (退单)"),
    Column("rerouted_in", "改派转入", "Re-routed in"),
    Column("rerouted_away", "改派转出(错单)", "Re-routed away (错单)"),
    Column("as_of", "统计截至", "As of"),
)


def complaint_window(conn: Connection, params: ReportParams) -> Window:
    """The complaints received in the period, as they stood at its last day; a period not
    over yet as they stood on the day of the snapshot's newest journal entry, so a deadline
    still ahead is not counted as crossed. Both come from the snapshot: the figures are a
    function of it."""
    last = params.period.end - timedelta(days=1)
    e = t.JournalEntry
    newest = conn.execute(select(e.ts).where(e.seq == params.journal_size)).scalar()
    as_of = last if newest is None else min(last, china_date(newest))
    return Window(params.period.start, last, as_of)


def _complaint_departments(conn: Connection, params: ReportParams, window: Window
                           ) -> list[str]:
    """The departments in scope that have merchants, complaints received in the window, or
    complaints sent back or re-routed to or from them in it."""
    scope = params.scope
    if scope.kind == ScopeKind.department:
        assert scope.name is not None
        return [scope.name]
    C, S = q.Complaint, q.ComplaintStep
    received = select(C.department).where(C.received_on >= window.since,
                                          C.received_on <= min(window.until, window.as_of))
    stepped = [select(column).join(C, C.id == S.complaint_id)
               .where(S.on >= window.since, S.on <= min(window.until, window.as_of),
                      column.is_not(None))
               for column in (S.department, S.from_department)]
    if scope.kind == ScopeKind.street:
        received = received.where(C.street == scope.name)
        stepped = [query.where(C.street == scope.name) for query in stepped]
    merchants = in_scope(select(c.Merchant.department), params)
    found = conn.execute(union(merchants, received, *stepped)).scalars()
    return sorted(str(name) for name in found)


def _complaint_row(label: str, f: Mapping[str, Any]) -> list[Any]:
    accepted, on_time = f["acceptance_rate"], f["on_time_closure_rate"]
    register = f["register"]
    return [label, f["received"], accepted["numerator"], accepted["numerator"],
            accepted["denominator"], accepted["rate_bp"], on_time["numerator"],
            on_time["denominator"], on_time["rate_bp"], f["overdue"],
            register["routed"]["received"], register["routed"]["open"],
            register["direct"]["received"], register["direct"]["open"], f["returned"],
            f["rerouted_in"], f["rerouted_away"], f["as_of"]]


def complaints_by_department(conn: Connection, params: ReportParams) -> Rows:
    """Each department's complaint figures over the period, as GET /v1/complaints/stats
    gives them (ledger/db/complaint_queries.py `figures`), within a street scope that
    street's; then, unless the scope is one department, the scope's total."""
    window = complaint_window(conn, params)
    street = params.scope.name if params.scope.kind == ScopeKind.street else None
    rows = [_complaint_row(name, complaint_figures(conn, name, street, window))
            for name in _complaint_departments(conn, params, window)]
    if params.scope.kind != ScopeKind.department:
        rows.append(_complaint_row("合计 total", complaint_figures(conn, None, street, window)))
    return rows


# --- 季度报告: tiers per department -----------------------------------------------------------

TIER_COLUMNS = (
    Column("department", "主管部门", "Department"),
    Column("merchants", "商户数", "Merchants"),
    Column("blue", "蓝色", "Blue"),
    Column("yellow", "黄色", "Yellow"),
    Column("red", "红色", "Red"),
    Column("set_by_hand", "人工调整等级", "Tier not the computed one (override or set by hand)"),
    Column("releases_held", "暂停释放", "Releases held"),
    Column("to_red", "本期转红", "Turned red in the period"),
    Column("to_yellow", "本期转黄", "Turned yellow in the period"),
    Column("to_blue", "本期转蓝", "Turned blue in the period"),
)


def tiers_by_department(conn: Connection, params: ReportParams) -> Rows:
    """Merchants per tier (红黄蓝) per department as the snapshot has them (`merchants.tier`),
    those whose tier is not the one the signals compute, those whose releases are held, and
    the tier changes the period journaled, by the tier changed to."""
    risk = s.MerchantRisk
    query = in_scope(select(c.Merchant.id, c.Merchant.department, c.Merchant.tier,
                            risk.computed_tier, risk.releases_held)
                     .outerjoin(risk, risk.id == c.Merchant.id), params)
    e = t.JournalEntry
    changes = in_scope(select(c.Merchant.department, e.body)
                       .join(c.Merchant, c.Merchant.id == e.merchant_id)
                       .where(_period_entries(params), e.kind == "merchant.tier_changed"),
                       params)
    counts: dict[str, dict[str, int]] = {}

    def of(department: str) -> dict[str, int]:
        return counts.setdefault(department, dict.fromkeys(
            (col.name for col in TIER_COLUMNS[1:]), 0))

    for m in conn.execute(query).all():
        row = of(m.department)
        row["merchants"] += 1
        row[m.tier] += 1
        row["set_by_hand"] += m.tier != (m.computed_tier or "blue")
        row["releases_held"] += bool(m.releases_held)
    for department, body in conn.execute(changes).all():
        payload = json.loads(bytes(body)).get("payload", {})
        if payload.get("tier") != payload.get("previous_tier"):
            of(department)[f"to_{payload['tier']}"] += 1
    return [[name, *counts[name].values()] for name in sorted(counts)]


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
SIGNALS = Section("signals", "新增风险信号", "New signals", SIGNAL_COLUMNS, new_signals)
ALERTS = Section("alerts", "新增预警", "New alerts", ALERT_COLUMNS, new_alerts)
COMPLAINTS = Section("complaints", "分部门投诉情况", "Complaints by department",
                     COMPLAINT_COLUMNS, complaints_by_department)
TIERS = Section("tiers", "分部门风险等级", "Tiers by department", TIER_COLUMNS,
                tiers_by_department)

# Each kind's sections, in the order the report shows them.
SECTIONS: Mapping[ReportKind, tuple[Section, ...]] = {
    ReportKind.daily: (MERCHANTS, SIGNALS, ALERTS),
    ReportKind.weekly: (SWEEP,),
    ReportKind.monthly: (DEPARTMENTS, COMPLAINTS, ACTIONS),
    ReportKind.quarterly: (DEPARTMENTS, INDUSTRIES, TOTALS, TIERS, COMPLAINTS, ACTIONS),
}
