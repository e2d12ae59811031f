"""The supervision store (ledger/supervision/store.py) on a batch: rows through the batch's
row cache, queries through `Batch.query`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ledger.bank.reconciliation import BreakStatus
from ledger.custody.lifecycle import CardStatus, ConsumptionStatus
from ledger.custody.merchants import Tier
from ledger.db import bank_tables as b
from ledger.db import complaint_tables as k
from ledger.db import custody_tables as c
from ledger.db import supervision_tables as s
from ledger.db.batch import Batch
from ledger.errors import NotFound
from ledger.supervision.checks import (
    Facts,
    consumption_window_days,
    people_changes,
    sales_day_window_days,
    sales_week_window_days,
    week_days,
)
from ledger.supervision.signals import RECORDED_KINDS, Signal, SignalKind, SignalState
from ledger.supervision.store import NO_RISK, AlertRow, Risk, StandingOverride, Window
from ledger.supervision.thresholds import SupervisionRules, parse_supervision_rules
from ledger.supervision.tiers import Override

LATEST_SUPERVISION_RULES = "latest supervision rules"  # a batch memo, not a table


class SupervisionRows:
    """`SupervisionStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    # -- lookups -------------------------------------------------------------------------
    def rules_of(self, jurisdiction: str, industry: str) -> SupervisionRules | None:
        for wanted in (industry, "*"):
            memo = self.batch.rows.get(LATEST_SUPERVISION_RULES, (jurisdiction, wanted))
            if memo is not None:
                rules: SupervisionRules = memo["rules"]
                return rules
            row = self.batch.lookup(
                select(s.SupervisionRuleVersion.id, s.SupervisionRuleVersion.rules)
                .where(s.SupervisionRuleVersion.jurisdiction == jurisdiction,
                       s.SupervisionRuleVersion.industry == wanted)
                .order_by(s.SupervisionRuleVersion.version.desc()).limit(1)).first()
            if row is not None:
                rules = parse_supervision_rules(row.rules)
                self.batch.rows.remember(LATEST_SUPERVISION_RULES, (jurisdiction, wanted),
                                         {"id": row.id, "rules": rules})
                return rules
        return None

    def risk(self, merchant_id: str) -> Risk:
        row = self._risk_row(merchant_id)
        if row is None:
            return NO_RISK
        active = {SignalKind(v["kind"]): Signal(SignalKind(v["kind"]), v["value"],
                                                v["threshold"], v["source"])
                  for v in row["active"]["signals"]}
        return Risk(active, Tier(row["computed_tier"]), row["releases_held"], row["held_seq"])

    def _risk_row(self, merchant_id: str) -> dict[str, Any] | None:
        row = self.batch.rows.get(s.MerchantRisk, merchant_id)
        if row is not None:
            return row
        found = self.batch.lookup(select(s.MerchantRisk.__table__).where(
            s.MerchantRisk.id == merchant_id).with_for_update()).first()
        return None if found is None else self.batch.rows.remember(
            s.MerchantRisk, merchant_id, dict(found._mapping))

    def overrides(self, merchant_id: str) -> list[StandingOverride]:
        stored = list(self.batch.lookup(select(s.TierOverride.id).where(
            s.TierOverride.merchant_id == merchant_id)).scalars())
        ids = set(stored) | {i for i, row in self.batch.rows.held(s.TierOverride)
                             if row["merchant_id"] == merchant_id}
        return [self.override(i) for i in sorted(ids)]

    def override(self, override_id: int) -> StandingOverride:
        row = self._row(s.TierOverride, override_id, "override")
        return StandingOverride(row["id"], row["merchant_id"], row["reason"], Override(
            row["created_seq"], Tier(row["tier"]), row["expires_on"], row["ended_seq"] is not None))

    def alert(self, alert_id: int) -> AlertRow:
        row = self._row(s.Alert, alert_id, "alert")
        return AlertRow(row["id"], row["merchant_id"], row["kind"],
                        row["acknowledged_seq"] is not None)

    def _row(self, table: Any, row_id: int, what: str) -> dict[str, Any]:
        row = self.batch.rows.get(table, row_id)
        if row is not None:
            return row
        found = self.batch.lookup(select(table.__table__).where(table.id == row_id)
                                  .with_for_update()).first()
        if found is None:
            raise NotFound(f"{what} {row_id} does not exist", field=f"{what}_id")
        return self.batch.rows.remember(table, row_id, dict(found._mapping))

    # -- queries -------------------------------------------------------------------------
    def next_rules_version(self, jurisdiction: str, industry: str
                           ) -> tuple[int, Mapping[str, Any] | None]:
        row = self.batch.query(
            select(s.SupervisionRuleVersion.version, s.SupervisionRuleVersion.rules)
            .where(s.SupervisionRuleVersion.jurisdiction == jurisdiction,
                   s.SupervisionRuleVersion.industry == industry)
            .order_by(s.SupervisionRuleVersion.version.desc()).limit(1)).first()
        return (1, None) if row is None else (row.version + 1, row.rules)

    def merchant_of_credit_code(self, credit_code: str) -> str | None:
        found = self.batch.query(select(c.Merchant.id).where(
            c.Merchant.credit_code == credit_code)).scalar()
        return None if found is None else str(found)

    def facts(self, merchant_id: str, as_of: date, rules: SupervisionRules,
              custody_fen: int, required_ratio_bp: int) -> Facts:
        sales = _Sales(self, merchant_id, as_of)
        consumed_last, consumed_prior = self._consumption(merchant_id, as_of)
        complaints = Window(as_of - timedelta(days=rules.complaint_window_days - 1), as_of)
        before = Window(complaints.since - timedelta(days=rules.complaint_window_days),
                        complaints.since - timedelta(days=1))
        legal, officers = self._changes(merchant_id, as_of, rules.change_window_days)
        return Facts(
            as_of=as_of, card_liability_fen=self._liability(merchant_id),
            custody_fen=custody_fen, required_ratio_bp=required_ratio_bp,
            prior_year_revenue_fen=self._revenue(merchant_id, as_of.year - 1),
            sales_today_fen=sales.between(as_of, as_of),
            sales_week_fen=sales.days_to(week_days, as_of),
            sales_trailing_30_fen=sales.days_to(sales_day_window_days,
                                                as_of - timedelta(days=1)),
            sales_trailing_90_fen=sales.days_to(sales_week_window_days,
                                                as_of - timedelta(days=week_days)),
            sales_last_30_fen=sales.days_to(consumption_window_days, as_of),
            consumption_last_30_fen=consumed_last, consumption_prior_30_fen=consumed_prior,
            open_breaks=self._open_breaks(merchant_id),
            cross_verification_difference_fen=self._difference(merchant_id),
            complaints_window=self.complaint_counts([merchant_id], complaints).get(
                merchant_id, 0),
            complaints_prior_window=self.complaint_counts([merchant_id], before).get(
                merchant_id, 0),
            legal_representative_changes=legal, officer_changes=officers,
            records=self._records(merchant_id),
            complaints_source="complaints (12345/12315 work orders and direct, by day received)")

    def complaint_counts(self, merchant_ids: Sequence[str], window: Window
                         ) -> dict[str, int]:
        """Complaints received per merchant in the window (both ends), as recorded."""
        rows = self.batch.query(
            select(k.Complaint.merchant_id, func.count())
            .where(k.Complaint.merchant_id.in_(list(merchant_ids)),
                   k.Complaint.received_on >= window.since,
                   k.Complaint.received_on <= window.until)
            .group_by(k.Complaint.merchant_id))
        return {str(merchant): int(count) for merchant, count in rows}

    def sales_on(self, merchant_id: str, day: date) -> int:
        return _Sales(self, merchant_id, day).between(day, day)

    def _liability(self, merchant_id: str) -> int:
        return int(self.batch.query(
            select(func.coalesce(func.sum(c.Card.paid_fen - c.Card.consumed_paid_fen), 0))
            .where(c.Card.merchant_id == merchant_id,
                   c.Card.status == CardStatus.active)).scalar_one())

    def _revenue(self, merchant_id: str, year: int) -> int | None:
        found = self.batch.query(
            select(s.MerchantRevenue.revenue_fen)
            .where(s.MerchantRevenue.merchant_id == merchant_id, s.MerchantRevenue.year == year)
            .order_by(s.MerchantRevenue.recorded_seq.desc()).limit(1)).scalar()
        return None if found is None else int(found)

    def _consumption(self, merchant_id: str, as_of: date) -> tuple[int, int]:
        def paid(since: date, until: date) -> int:
            return int(self.batch.query(
                select(func.coalesce(func.sum(c.Consumption.paid_fen), 0))
                .where(c.Consumption.merchant_id == merchant_id,
                       c.Consumption.status == ConsumptionStatus.confirmed,
                       c.Consumption.confirmed_on.between(since, until))).scalar_one())
        window = timedelta(days=consumption_window_days)
        last_since = as_of - window + timedelta(days=1)
        return (paid(last_since, as_of),
                paid(last_since - window, last_since - timedelta(days=1)))

    def _open_breaks(self, merchant_id: str) -> int:
        return int(self.batch.query(
            select(func.count()).select_from(b.ReconciliationBreak)
            .where(b.ReconciliationBreak.merchant_id == merchant_id,
                   b.ReconciliationBreak.status == BreakStatus.open)).scalar_one())

    def _difference(self, merchant_id: str) -> int:
        found = self.batch.query(
            select(b.CrossVerification.difference_fen)
            .where(b.CrossVerification.merchant_id == merchant_id)
            .order_by(b.CrossVerification.id.desc()).limit(1)).scalar()
        return 0 if found is None else int(found)

    def _changes(self, merchant_id: str, as_of: date, days: int) -> tuple[int, int]:
        rows = self.batch.query(
            select(c.MerchantAmendment.changes)
            .where(c.MerchantAmendment.merchant_id == merchant_id,
                   c.MerchantAmendment.amended_on > as_of - timedelta(days=days),
                   c.MerchantAmendment.amended_on <= as_of)).scalars()
        legal = officers = 0
        for changes in rows:
            people = changes.get("people")
            if people is not None:
                one, other = people_changes(people["before"], people["after"])
                legal, officers = legal + one, officers + other
        return legal, officers

    def _records(self, merchant_id: str) -> dict[SignalKind, list[str]]:
        """The standing records: per kind and source, the latest one, if it lists."""
        rows = self.batch.query(
            select(s.StatusRecord.kind, s.StatusRecord.source, s.StatusRecord.listed)
            .where(s.StatusRecord.merchant_id == merchant_id)
            .order_by(s.StatusRecord.id)).all()
        latest = {(r.kind, r.source): r.listed for r in rows}
        standing: dict[SignalKind, list[str]] = {}
        for (kind, source), listed in latest.items():
            if listed and kind in RECORDED_KINDS:
                standing.setdefault(SignalKind(kind), []).append(source)
        return standing

    # -- writes --------------------------------------------------------------------------
    def add_rules(self, view: Mapping[str, Any], rules: SupervisionRules) -> None:
        self.batch.rows.insert(s.SupervisionRuleVersion, view["id"], {
            "id": view["id"], "jurisdiction": view["jurisdiction"],
            "industry": view["industry"], "version": view["version"],
            "rules": view["rules"], "created_seq": view["created_seq"]})
        key = (view["jurisdiction"], view["industry"])
        memo = {"id": view["id"], "rules": rules}
        if self.batch.rows.get(LATEST_SUPERVISION_RULES, key) is None:
            self.batch.rows.remember(LATEST_SUPERVISION_RULES, key, memo)
        else:
            self.batch.rows.update(LATEST_SUPERVISION_RULES, key, **memo)

    def add_signal(self, merchant_id: str, signal: Signal, state: SignalState,
                   observed_on: date, seq: int) -> None:
        row_id = self.batch.next_id(s.SignalRecord)
        self.batch.rows.insert(s.SignalRecord, row_id, {
            "id": row_id, "merchant_id": merchant_id, "kind": signal.kind.value,
            "state": state.value, "value": signal.value, "threshold": signal.threshold,
            "source": signal.source, "observed_on": observed_on, "seq": seq})

    def set_risk(self, merchant_id: str, risk: Risk, assessed_on: date | None) -> None:
        standing = [risk.active[k].view() for k in sorted(risk.active)]
        values: dict[str, Any] = {
            "active": {"signals": standing}, "computed_tier": risk.computed_tier.value,
            "releases_held": risk.releases_held, "held_seq": risk.held_seq}
        row = self._risk_row(merchant_id)
        if row is None:
            self.batch.rows.insert(s.MerchantRisk, merchant_id, {
                "id": merchant_id, **values, "assessed_on": assessed_on})
            return
        if assessed_on is not None:
            values["assessed_on"] = assessed_on
        self.batch.rows.update(s.MerchantRisk, merchant_id, **values)

    def add_status_record(self, row: Mapping[str, Any]) -> None:
        row_id = self.batch.next_id(s.StatusRecord)
        self.batch.rows.insert(s.StatusRecord, row_id, {"id": row_id, **row})

    def add_revenue(self, row: Mapping[str, Any]) -> None:
        self.batch.rows.insert(s.MerchantRevenue, row["recorded_seq"], dict(row))

    def add_override(self, row: Mapping[str, Any]) -> int:
        row_id = self.batch.next_id(s.TierOverride)
        self.batch.rows.insert(s.TierOverride, row_id, {"id": row_id, **row,
                                                        "ended_seq": None})
        return row_id

    def end_override(self, override_id: int, seq: int) -> None:
        self._row(s.TierOverride, override_id, "override")
        self.batch.rows.update(s.TierOverride, override_id, ended_seq=seq)

    def add_alert(self, row: Mapping[str, Any]) -> int:
        row_id = self.batch.next_id(s.Alert)
        self.batch.rows.insert(s.Alert, row_id, {
            "id": row_id, **row, "created_at": datetime.fromisoformat(row["created_at"]),
            "acknowledged_key_id": None, "acknowledged_seq": None,
            "acknowledged_at": None})
        return row_id

    def acknowledge(self, alert_id: int, key_id: int, seq: int, at: str) -> None:
        self._row(s.Alert, alert_id, "alert")
        self.batch.rows.update(s.Alert, alert_id, acknowledged_key_id=key_id,
                               acknowledged_seq=seq, acknowledged_at=datetime.fromisoformat(at))

    def add_subscription(self, row: Mapping[str, Any]) -> int:
        row_id = self.batch.next_id(s.WebhookSubscription)
        self.batch.rows.insert(s.WebhookSubscription, row_id, {"id": row_id, **row})
        return row_id


class _Sales:
    """A merchant's card sales by day, read once for the windows the checks need."""

    def __init__(self, rows: SupervisionRows, merchant_id: str, as_of: date) -> None:
        since = as_of - timedelta(days=sales_week_window_days + week_days)
        found = rows.batch.query(
            select(c.Card.sold_on, func.sum(c.Card.paid_fen))
            .where(c.Card.merchant_id == merchant_id, c.Card.sold_on > since,
                   c.Card.sold_on <= as_of)
            .group_by(c.Card.sold_on)).all()
        self.by_day: dict[date, int] = {day: int(total) for day, total in found}

    def between(self, since: date, until: date) -> int:
        return sum(v for day, v in self.by_day.items() if since <= day <= until)

    def days_to(self, days: int, until: date) -> int:
        return self.between(until - timedelta(days=days - 1), until)

