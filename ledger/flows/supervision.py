"""Supervision's writes: the four checks (四查) assessed into signals, the tier (红黄蓝) that
follows with its controls and alerts, and what regulators record (operating-status records,
public-sentiment flags, prior-year revenue, overrides, release holds cleared, alerts seen).

An assessment reads first (`gather`: every query) and writes after (`settle`), so a command
assessing many merchants (a sweep's slice) reads them all, then writes them all. A record
that changes a merchant's signals (an import, a flag, a revenue) assesses the merchant in the
same command, with the new record taken into the figures it read before writing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from ledger.access import (
    covers,
    require_operator,
    require_overseer,
    require_supervisor,
    supervises,
)
from ledger.auth import Principal
from ledger.commands import Books, Command, IdKind
from ledger.custody.lifecycle import Merchant
from ledger.custody.merchants import HARD_BLOCKS, Tier
from ledger.errors import Conflict, Forbidden, InvalidInput, NotFound
from ledger.supervision.checks import Facts, evaluate, people_changes
from ledger.supervision.records import StatusEntry
from ledger.supervision.signals import HARD_BLOCK_KINDS, SignalKind, SignalState
from ledger.supervision.store import Risk
from ledger.supervision.thresholds import SupervisionRules, parse_supervision_rules
from ledger.supervision.tiers import judge

reason_chars_max = 500
source_chars_max = 200


class AlertKind(StrEnum):
    tier_yellow = "tier_yellow"  # a warning to the merchant and its department (警示提示)
    tier_red = "tier_red"
    run_away = "run_away"  # the run-away pattern (关门跑路): at once


class Severity(StrEnum):
    warning = "warning"
    critical = "critical"


SEVERITY = {AlertKind.tier_yellow: Severity.warning, AlertKind.tier_red: Severity.critical,
            AlertKind.run_away: Severity.critical}


def missing_merchant(merchant_id: str) -> NotFound:
    return NotFound(f"merchant {merchant_id} does not exist", field="merchant_id")


@dataclass(frozen=True, slots=True)
class Gathered:
    merchant: Merchant
    rules: SupervisionRules
    facts: Facts


def gather(books: Books, merchant_id: str, as_of: date) -> Gathered | None:
    """Every query an assessment needs: before the command writes anything. None for a
    merchant of a jurisdiction without supervision rules: it is not assessed."""
    m = books.custody.merchant(merchant_id)
    rules = books.supervision.rules_of(m.jurisdiction, m.industry)
    if rules is None:
        return None
    _, custody_rules = books.custody.latest_rule_set(m.jurisdiction, m.industry)
    custody = books.balance(m.accounts["custody_cash"]) + \
        books.balance(m.accounts["custody_in_transit"])
    facts = books.supervision.facts(m.id, as_of, rules, custody, custody_rules.custody_ratio_bp)
    return Gathered(m, rules, facts)


def settle_all(books: Books, gathered: Iterable[Gathered | None], as_of: date
               ) -> list[dict[str, Any]]:
    return [settle(books, g, as_of) for g in gathered if g is not None]


def rules_for(books: Books, m: Merchant) -> SupervisionRules:
    rules = books.supervision.rules_of(m.jurisdiction, m.industry)
    if rules is None:
        raise Conflict(f"jurisdiction {m.jurisdiction} has no supervision rules "
                       "(POST /v1/supervision/rules)", field="merchant_id")
    return rules


def settle(books: Books, g: Gathered, as_of: date) -> dict[str, Any]:
    """Signals raised and cleared, the tier and its controls: the assessment's writes."""
    m = g.merchant
    before = books.supervision.risk(m.id)
    found = {s.kind: s for s in evaluate(g.facts, g.rules)}
    raised = [found[k] for k in sorted(set(found) - set(before.active))]
    cleared = [before.active[k] for k in sorted(set(before.active) - set(found))]
    for signal in raised:
        entry = books.append("signal.raised", {
            "merchant_id": m.id, "as_of": as_of.isoformat(), **signal.view()})
        books.supervision.add_signal(m.id, signal, SignalState.raised, as_of, entry.seq)
    for signal in cleared:
        entry = books.append("signal.cleared", {
            "merchant_id": m.id, "as_of": as_of.isoformat(), **signal.view()})
        books.supervision.add_signal(m.id, signal, SignalState.cleared, as_of, entry.seq)
    risk = Risk(found, before.computed_tier, before.releases_held, before.held_seq)
    answer = decide(books, m, g.rules, risk, as_of)
    return {"merchant_id": m.id, "raised": [s.kind.value for s in raised],
            "cleared": [s.kind.value for s in cleared], **answer}


def decide(books: Books, m: Merchant, rules: SupervisionRules, risk: Risk, as_of: date
           ) -> dict[str, Any]:
    """The tier of the standing signals, its change journaled with the signals that caused
    it, and the controls and alerts that follow."""
    overrides = [o.override for o in books.supervision.overrides(m.id)]
    verdict = judge(risk.active, rules, overrides, as_of)
    blocks = (m.hard_blocks - HARD_BLOCKS) | {k.value for k in risk.active
                                               if k in HARD_BLOCK_KINDS}
    alerts: list[int] = []
    if verdict.tier != m.tier or blocks != m.hard_blocks:
        causes = [risk.active[k].view() for k in verdict.causes]
        books.append("merchant.tier_changed", {
            "merchant_id": m.id, "tier": verdict.tier.value, "previous_tier": m.tier.value,
            "reasons": [k.value for k in verdict.causes], "hard_blocks": sorted(blocks),
            "computed_tier": verdict.computed.value, "signals": causes,
            "override_seq": verdict.override_seq, "as_of": as_of.isoformat()})
        books.custody.set_tier(m.id, verdict.tier, sorted(blocks))
        if verdict.tier != m.tier and verdict.tier != Tier.blue:
            kind = AlertKind.tier_red if verdict.tier == Tier.red else AlertKind.tier_yellow
            alerts.append(raise_alert(books, m, kind, causes))
    held, held_seq = risk.releases_held, risk.held_seq
    if SignalKind.run_away_pattern in risk.active and \
            SignalKind.run_away_pattern not in books.supervision.risk(m.id).active:
        pattern = [risk.active[SignalKind.run_away_pattern].view()]
        alert_id = raise_alert(books, m, AlertKind.run_away, pattern)
        alerts.append(alert_id)
        if rules.hold_releases_on_run_away and not held:
            entry = books.append("releases.held", {
                "merchant_id": m.id, "alert_id": alert_id,
                "reason": "run-away pattern: releases wait until a regulator looks"})
            held, held_seq = True, entry.seq
    books.supervision.set_risk(m.id, Risk(risk.active, verdict.computed, held, held_seq),
                               as_of)
    return {"tier": verdict.tier.value, "computed_tier": verdict.computed.value,
            "previous_tier": m.tier.value, "alerts": alerts, "releases_held": held}


def raise_alert(books: Books, m: Merchant, kind: AlertKind, signals: list[dict[str, Any]]
                ) -> int:
    view = {"merchant_id": m.id, "kind": kind.value, "severity": SEVERITY[kind].value,
            "signals": signals, "department": m.department, "street": m.street}
    entry = books.append("alert.raised", view)
    return books.supervision.add_alert({
        **view, "signals": {"signals": signals}, "created_seq": entry.seq,
        "created_at": entry.ts})


def supervised_merchant(books: Books, principal: Principal, merchant_id: str) -> Merchant:
    """The merchant a regulator acts on: the role decided first (so a missing id and another
    scope's merchant answer alike), then the key's scope."""
    require_overseer(principal)
    m = books.custody.merchant(merchant_id)
    require_supervisor(principal, m, missing_merchant(merchant_id))
    return m


@dataclass(frozen=True)
class AssessMerchant(Command):
    """The four checks on one merchant, now (an event) or as of a day."""

    principal: Principal
    merchant_id: str
    as_of: date

    def run(self, books: Books) -> dict[str, Any]:
        m = supervised_merchant(books, self.principal, self.merchant_id)
        rules_for(books, m)  # a jurisdiction without rules: said, not skipped
        gathered = gather(books, m.id, self.as_of)
        assert gathered is not None
        return settle(books, gathered, self.as_of)


@dataclass(frozen=True)
class SuperviseMerchants(Command):
    """A slice of the sweep: the active merchants after `after`, at most `merchants_max`,
    read first and then assessed; `next_after` is where the next slice starts."""

    principal: Principal
    as_of: date
    after: str = ""
    merchants_max: int | None = None

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        ids = books.custody.active_merchant_ids(self.after, self.merchants_max)
        gathered = [gather(books, i, self.as_of) for i in ids]
        assessed = settle_all(books, gathered, self.as_of)
        changed = [a for a in assessed
                   if a["raised"] or a["cleared"] or a["tier"] != a["previous_tier"]]
        full = self.merchants_max is not None and len(ids) == self.merchants_max
        return {"as_of": self.as_of.isoformat(), "assessed": changed, "merchants": len(ids),
                "next_after": ids[-1] if full else None}


@dataclass(frozen=True)
class CreateSupervisionRules(Command):
    principal: Principal
    jurisdiction: str
    industry: str
    rules: Mapping[str, Any]

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        version, previous = books.supervision.next_rules_version(self.jurisdiction,
                                                                 self.industry)
        base = parse_supervision_rules(previous) if previous is not None else \
            self._fallback(books)
        parsed = parse_supervision_rules(self.rules, base)
        view = {"id": books.draw_id(IdKind.supervision_rules),
                "jurisdiction": self.jurisdiction, "industry": self.industry,
                "version": version, "rules": parsed.as_dict()}
        entry = books.append("supervision_rules.created", view)
        books.supervision.add_rules({**view, "created_seq": entry.seq}, parsed)
        return {**view, "journal_seq": entry.seq}

    def _fallback(self, books: Books) -> SupervisionRules | None:
        """An industry's first version fills in from the jurisdiction's '*' rules."""
        return books.supervision.rules_of(self.jurisdiction, self.industry)


@dataclass(frozen=True)
class RecordStatus(Command):
    """Records by credit code: each recorded against the merchant filed with it, or refused
    by name (`refused`: the row's index and why). Every merchant a record names is assessed
    at once, the new records counted."""

    principal: Principal
    entries: Sequence[StatusEntry]
    today: date
    file_name: str | None = None  # an import's file, named in its entries
    refused_rows: Sequence[Mapping[str, Any]] = ()  # the file's rows its reader refused

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)
        accepted: list[tuple[StatusEntry, Merchant]] = []
        refused = [dict(r) for r in self.refused_rows]
        for e in self.entries:
            merchant_id = books.supervision.merchant_of_credit_code(e.credit_code)
            m = None if merchant_id is None else books.custody.merchant(merchant_id)
            if m is None or not supervises(self.principal, m):
                refused.append({"row": e.row, "field": "credit_code",
                                "reason": f"no merchant in your scope is filed with credit "
                                          f"code {e.credit_code}"})
            else:
                accepted.append((e, m))
        gathered = {m.id: gather(books, m.id, self.today) for _, m in accepted}
        recorded = []
        for e, m in accepted:
            view = {"row": e.row, "merchant_id": m.id, "credit_code": e.credit_code,
                    "kind": e.kind.value, "listed": e.listed, "source": e.source,
                    "note": e.note, "recorded_on": self.today.isoformat(),
                    "file": self.file_name}
            entry = books.append("status_record.recorded", view)
            books.supervision.add_status_record({
                "credit_code": e.credit_code, "merchant_id": m.id, "kind": e.kind.value,
                "listed": e.listed, "source": e.source, "recorded_on": self.today,
                "note": e.note, "recorded_seq": entry.seq})
            gathered[m.id] = _with_record(gathered[m.id], e)
            recorded.append({**view, "journal_seq": entry.seq})
        refused.sort(key=lambda r: r["row"])
        if refused:
            books.append("status_record.refused", {"file": self.file_name, "refused": refused})
        assessed = settle_all(books, gathered.values(), self.today)
        return {"recorded": recorded, "refused": refused, "assessed": assessed}


def _with_record(g: Gathered | None, e: StatusEntry) -> Gathered | None:
    """The figures as the new record leaves them (the query ran before it was written)."""
    if g is None:
        return None
    records = {k: list(v) for k, v in g.facts.records.items()}
    sources = [s for s in records.get(e.kind, []) if s != e.source]
    if e.listed:
        sources.append(e.source)
    records[e.kind] = sources
    if not sources:
        del records[e.kind]
    return dataclasses.replace(g, facts=dataclasses.replace(g.facts, records=records))


def with_amendment(g: Gathered | None, changes: Mapping[str, Any]) -> Gathered | None:
    """The figures with an amendment just made counted (its row is written after they
    were read): a change of legal representative, or of officers."""
    people = changes.get("people")
    if g is None or people is None:
        return g
    legal, officers = people_changes(people["before"], people["after"])
    return dataclasses.replace(g, facts=dataclasses.replace(
        g.facts, legal_representative_changes=g.facts.legal_representative_changes + legal,
        officer_changes=g.facts.officer_changes + officers))


@dataclass(frozen=True)
class RecordRevenue(Command):
    """A merchant's revenue for a year (上一年度营业收入), by the operator or a regulator in
    scope; the merchant is assessed at once."""

    principal: Principal
    merchant_id: str
    year: int
    revenue_fen: int
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        m = supervised_merchant(books, self.principal, self.merchant_id)
        g = gather(books, m.id, self.today)
        view = {"merchant_id": m.id, "year": self.year, "revenue_fen": self.revenue_fen}
        entry = books.append("merchant.revenue_recorded", view)
        books.supervision.add_revenue({**view, "recorded_seq": entry.seq})
        if g is not None and self.year == self.today.year - 1:
            g = dataclasses.replace(g, facts=dataclasses.replace(
                g.facts, prior_year_revenue_fen=self.revenue_fen))
        assessed = settle_all(books, [g], self.today)
        return {**view, "journal_seq": entry.seq, "assessed": assessed[0] if assessed else None}


@dataclass(frozen=True)
class OverrideTier(Command):
    """A regulator in scope, or the operator, sets a merchant's tier with a reason, until
    `expires_on` (exclusive) or a review that ends it."""

    principal: Principal
    merchant_id: str
    tier: Tier
    reason: str
    today: date
    expires_on: date | None = None

    def run(self, books: Books) -> dict[str, Any]:
        m = supervised_merchant(books, self.principal, self.merchant_id)
        if self.expires_on is not None and self.expires_on <= self.today:
            raise InvalidInput("must be after today", field="expires_on")
        view = {"merchant_id": m.id, "tier": self.tier.value, "reason": self.reason,
                "expires_on": None if self.expires_on is None else self.expires_on.isoformat()}
        entry = books.append("tier.overridden", view)
        override_id = books.supervision.add_override({
            "merchant_id": m.id, "tier": self.tier.value, "reason": self.reason,
            "expires_on": self.expires_on, "created_seq": entry.seq})
        decided = decide(books, m, rules_for(books, m), books.supervision.risk(m.id),
                         self.today)
        return {**view, "override_id": override_id, "journal_seq": entry.seq, **decided}


@dataclass(frozen=True)
class ReviewOverride(Command):
    """The review a regulator records: the override ends, and the computed tier returns."""

    principal: Principal
    override_id: int
    reason: str
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)  # the role first: a missing id answers alike
        o = books.supervision.override(self.override_id)  # NotFound names the override
        m = books.custody.merchant(o.merchant_id)
        require_supervisor(self.principal, m, NotFound(
            f"override {self.override_id} does not exist", field="override_id"))
        if o.override.ended:
            raise Conflict("the override was reviewed already", field="override_id")
        view = {"override_id": o.id, "merchant_id": m.id, "reason": self.reason,
                "reviewed_on": self.today.isoformat()}
        entry = books.append("tier.override_reviewed", view)
        books.supervision.end_override(o.id, entry.seq)
        decided = decide(books, m, rules_for(books, m), books.supervision.risk(m.id),
                         self.today)
        return {**view, "journal_seq": entry.seq, **decided}


@dataclass(frozen=True)
class ClearHold(Command):
    """A regulator in scope (or the operator) looked: the merchant's releases go on."""

    principal: Principal
    merchant_id: str
    reason: str

    def run(self, books: Books) -> dict[str, Any]:
        m = supervised_merchant(books, self.principal, self.merchant_id)
        risk = books.supervision.risk(m.id)
        if not risk.releases_held:
            raise Conflict("the merchant's releases are not held", field="merchant_id")
        view = {"merchant_id": m.id, "reason": self.reason, "held_seq": risk.held_seq}
        entry = books.append("releases.hold_cleared", view)
        books.supervision.set_risk(m.id, dataclasses.replace(risk, releases_held=False,
                                                             held_seq=None), None)
        return {**view, "releases_held": False, "journal_seq": entry.seq}


@dataclass(frozen=True)
class AcknowledgeAlert(Command):
    principal: Principal
    alert_id: int

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)  # the role first: a missing id answers alike
        alert = books.supervision.alert(self.alert_id)  # NotFound names the alert
        require_supervisor(self.principal, books.custody.merchant(alert.merchant_id),
                           NotFound(f"alert {self.alert_id} does not exist", field="alert_id"))
        if alert.acknowledged:
            raise Conflict("the alert was acknowledged already", field="alert_id")
        entry = books.append("alert.acknowledged", {"alert_id": alert.id,
                                                    "merchant_id": alert.merchant_id})
        books.supervision.acknowledge(alert.id, self.principal.key_id, entry.seq, entry.ts)
        return {"alert_id": alert.id, "acknowledged_seq": entry.seq,
                "acknowledged_at": entry.ts, "journal_seq": entry.seq}


@dataclass(frozen=True)
class Subscribe(Command):
    """A webhook for a department's or a street's alerts, by a regulator whose scope covers
    it (or the operator). The secret signs deliveries; it is not journaled."""

    principal: Principal
    url: str
    secret: str
    department: str | None = None
    street: str | None = None

    def run(self, books: Books) -> dict[str, Any]:
        require_overseer(self.principal)
        if (self.department is None) == (self.street is None):
            raise InvalidInput("name a department or a street, not both", field="department")
        # A department key covers its department's name, a street key its street's.
        if not covers(self.principal, self.department or "", self.street):
            raise Forbidden("a department or street key subscribes to its own scope's "
                            "alerts only")
        view = {"department": self.department, "street": self.street, "url": self.url}
        entry = books.append("webhook.subscribed", view)
        subscription_id = books.supervision.add_subscription({
            **view, "secret": self.secret, "created_seq": entry.seq})
        return {**view, "subscription_id": subscription_id, "journal_seq": entry.seq}

