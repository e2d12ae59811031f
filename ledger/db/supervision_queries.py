"""Read side of supervision: a merchant's risk (signals, tier, overrides, hold), the alerts
inbox, and what the webhook worker delivers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from ledger.access import require_book_reader
from ledger.auth import Principal, Role
from ledger.db import custody_tables as c
from ledger.db import supervision_tables as s
from ledger.db.custody_queries import readable_merchant
from ledger.db.queries import Page, next_after


def rule_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(s.SupervisionRuleVersion))
               .scalar_one())


def merchant_risk(conn: Connection, principal: Principal, merchant_id: str) -> dict[str, Any]:
    """A merchant's standing signals, tiers, overrides and hold: to whoever reads its books."""
    m = readable_merchant(conn, principal, merchant_id)
    risk = conn.execute(select(s.MerchantRisk.__table__)
                        .where(s.MerchantRisk.id == merchant_id)).first()
    overrides = conn.execute(select(s.TierOverride.__table__)
                             .where(s.TierOverride.merchant_id == merchant_id)
                             .order_by(s.TierOverride.id)).all()
    return {"merchant_id": m.id, "tier": m.tier,
            "computed_tier": risk.computed_tier if risk else "blue",
            "hard_blocks": m.hard_blocks.get("blocks", []),
            "signals": risk.active["signals"] if risk else [],
            "releases_held": bool(risk and risk.releases_held),
            "assessed_on": risk.assessed_on.isoformat() if risk and risk.assessed_on else None,
            "overrides": [{"id": o.id, "tier": o.tier, "reason": o.reason,
                           "expires_on": o.expires_on.isoformat() if o.expires_on else None,
                           "created_seq": o.created_seq, "ended_seq": o.ended_seq}
                          for o in overrides]}


def signal_history(conn: Connection, principal: Principal, merchant_id: str, page: Page
                   ) -> dict[str, Any]:
    readable_merchant(conn, principal, merchant_id)
    rows = conn.execute(select(s.SignalRecord.__table__)
                        .where(s.SignalRecord.merchant_id == merchant_id,
                               s.SignalRecord.id > page.after)
                        .order_by(s.SignalRecord.id).limit(page.limit)).all()
    return {"items": [{"id": r.id, "kind": r.kind, "state": r.state, "value": r.value,
                       "threshold": r.threshold, "source": r.source,
                       "observed_on": r.observed_on.isoformat(), "journal_seq": r.seq}
                      for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def _scoped_alerts(query: Any, principal: Principal) -> Any:
    """A regulator's inbox holds its scope's alerts (its department's or street's; a district
    key all); a merchant's its own (the warning, 警示提示); the operator's all."""
    if principal.role == Role.merchant:
        return query.where(s.Alert.merchant_id == principal.merchant_id)
    if principal.department is not None:
        return query.where(s.Alert.department == principal.department)
    if principal.street is not None:
        return query.where(s.Alert.street == principal.street)
    return query


def alerts(conn: Connection, principal: Principal, page: Page, unacknowledged: bool,
           merchant_id: str | None = None) -> dict[str, Any]:
    principal.require_role(Role.operator, Role.regulator, Role.merchant)
    require_book_reader(principal)
    query = select(s.Alert.__table__, c.Merchant.name).join(
        c.Merchant, c.Merchant.id == s.Alert.merchant_id).where(s.Alert.id > page.after)
    if unacknowledged:
        query = query.where(s.Alert.acknowledged_seq.is_(None))
    if merchant_id:
        query = query.where(s.Alert.merchant_id == merchant_id)
    rows = conn.execute(_scoped_alerts(query, principal).order_by(s.Alert.id)
                        .limit(page.limit)).all()
    return {"items": [alert_view(r) for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def alert_view(r: Any) -> dict[str, Any]:
    return {"id": r.id, "merchant_id": r.merchant_id, "merchant_name": r.name,
            "kind": r.kind, "severity": r.severity, "signals": r.signals["signals"],
            "department": r.department, "street": r.street, "created_seq": r.created_seq,
            "created_at": _iso(r.created_at), "acknowledged_by": r.acknowledged_key_id,
            "acknowledged_at": _iso(r.acknowledged_at)}
