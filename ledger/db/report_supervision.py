"""The routines' sections that read supervision's own records (ledger/db/report_sections.py
says what a section is): the day's new signals and alerts (日管控), complaints per department
(月调度, 季度报告: 受理率 and 按时办结率 as GET /v1/complaints/stats gives them) and tiers per
department (季度报告)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, union

from ledger.db import complaint_tables as q
from ledger.db import custody_tables as c
from ledger.db import supervision_tables as s
from ledger.db import tables as t
from ledger.db.complaint_queries import Window
from ledger.db.complaint_queries import figures as complaint_figures
from ledger.db.report_sections import (
    MERCHANT_COLUMNS,
    Column,
    Rows,
    Section,
    in_scope,
    period_entries,
)
from ledger.supervision.routines import (
    CHINA_TIME,
    ReportParams,
    ScopeKind,
    china_date,
)
from ledger.supervision.signals import CHECK_OF, Check, SignalKind

CHECK_NAMES: Mapping[Check, str] = {
    Check.fund_flows: "查资金流水", Check.complaints: "查投诉记录",
    Check.operating_status: "查经营状态", Check.public_sentiment: "查舆情信息"}

SIGNAL_COLUMNS = (
    Column("journal_seq", "日志序号", "Journal seq"),
    Column("time", "时间(北京时间)", "Time (China)"),
    *MERCHANT_COLUMNS,
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
             .where(period_entries(params)))
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
    *MERCHANT_COLUMNS,
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
             .where(period_entries(params)))
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


def _complaint_row(label: str, f: Mapping[str, Any], as_of: str) -> list[Any]:
    accepted, on_time = f["acceptance_rate"], f["on_time_closure_rate"]
    register = f["register"]
    return [label, f["received"], accepted["numerator"], accepted["numerator"],
            accepted["denominator"], accepted["rate_bp"], on_time["numerator"],
            on_time["denominator"], on_time["rate_bp"], f["overdue"],
            register["routed"]["received"], register["routed"]["open"],
            register["direct"]["received"], register["direct"]["open"], f["returned"],
            f["rerouted_in"], f["rerouted_away"], as_of]


def complaints_by_department(conn: Connection, params: ReportParams) -> Rows:
    """Each department's complaint figures over the period, as GET /v1/complaints/stats
    gives them (ledger/db/complaint_queries.py `figures`), within a street scope that
    street's; then, unless the scope is one department, the scope's total."""
    window = complaint_window(conn, params)
    street = params.scope.name if params.scope.kind == ScopeKind.street else None
    as_of = window.as_of.isoformat()
    rows = [_complaint_row(name, complaint_figures(conn, name, street, window), as_of)
            for name in _complaint_departments(conn, params, window)]
    if params.scope.kind != ScopeKind.department:
        rows.append(_complaint_row("合计 total", complaint_figures(conn, None, street, window),
                                   as_of))
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
                       .where(period_entries(params), e.kind == "merchant.tier_changed"),
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


SIGNALS = Section("signals", "新增风险信号", "New signals", SIGNAL_COLUMNS, new_signals)
ALERTS = Section("alerts", "新增预警", "New alerts", ALERT_COLUMNS, new_alerts)
COMPLAINTS = Section("complaints", "分部门投诉情况", "Complaints by department",
                     COMPLAINT_COLUMNS, complaints_by_department)
TIERS = Section("tiers", "分部门风险等级", "Tiers by department", TIER_COLUMNS,
                tiers_by_department)
