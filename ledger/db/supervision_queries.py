"""Read side of supervision: a merchant's risk (signals, tier, overrides, hold), the alerts
inbox, and what the webhook worker delivers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, text, update

from ledger.access import require_book_reader, require_overseer
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


# -- webhook deliveries (operational: attempts and status, outside the journal) ------------
webhook_attempts_max = 8  # then the delivery is `failed`, and stays listed as such
webhook_backoff_first_s = 5  # the wait after the first failed attempt; doubled each time
webhook_backoff_max_s = 3600


def schedule_deliveries(conn: Connection, now: datetime) -> int:
    """A pending delivery for every alert a subscription's department or street covers,
    raised since the subscription: each pair once (the unique key)."""
    result = conn.execute(text(
        "INSERT INTO webhook_deliveries (subscription_id, alert_id, status, attempts, "
        "next_attempt_at) SELECT w.id, a.id, 'pending', 0, :now FROM alerts a "
        "JOIN webhook_subscriptions w ON (w.department = a.department OR w.street = a.street) "
        "AND a.created_seq > w.created_seq "
        "ON CONFLICT ON CONSTRAINT uq_webhook_deliveries_once DO NOTHING"), {"now": now})
    return int(result.rowcount or 0)


def due_deliveries(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending deliveries whose time has come, locked (another worker skips them), with
    their subscription's URL and secret and the alert as the inbox shows it."""
    rows = conn.execute(
        select(s.WebhookDelivery.id, s.WebhookDelivery.attempts, s.WebhookSubscription.url,
               s.WebhookSubscription.secret, s.Alert.__table__, c.Merchant.name)
        .join(s.WebhookSubscription,
              s.WebhookSubscription.id == s.WebhookDelivery.subscription_id)
        .join(s.Alert, s.Alert.id == s.WebhookDelivery.alert_id)
        .join(c.Merchant, c.Merchant.id == s.Alert.merchant_id)
        .where(s.WebhookDelivery.status == "pending", s.WebhookDelivery.next_attempt_at <= now)
        .order_by(s.WebhookDelivery.id).limit(limit)
        .with_for_update(of=s.WebhookDelivery, skip_locked=True)).all()
    return [{"delivery_id": r[0], "attempts": r[1], "url": r[2], "secret": r[3],
             "alert": alert_view(r)} for r in rows]


class Attempt(NamedTuple):
    delivery_id: int
    attempts: int  # this one included
    answer: int | None  # the HTTP status, if the receiver answered
    error: str | None  # why not, if it did not (or not with 2xx)


def record_attempt(conn: Connection, attempt: Attempt, now: datetime) -> str:
    """One attempt counted: delivered on a 2xx answer; else retried after a backoff that
    doubles, until `webhook_attempts_max` (then failed). Returns the new status."""
    delivery_id, attempts, answer, error = attempt
    delivered = answer is not None and 200 <= answer < 300
    wait = min(webhook_backoff_max_s, webhook_backoff_first_s * 2 ** (attempts - 1))
    status = "delivered" if delivered else \
        "failed" if attempts >= webhook_attempts_max else "pending"
    conn.execute(
        update(s.WebhookDelivery).where(s.WebhookDelivery.id == delivery_id)
        .values(attempts=attempts, status=status, last_status=answer,
                last_error=None if error is None else error[:500],
                next_attempt_at=now + timedelta(seconds=wait),
                delivered_at=now if delivered else None))
    return status


def deliveries(conn: Connection, principal: Principal) -> list[dict[str, Any]]:
    """Every delivery of the subscriptions a key's scope covers: nothing is dropped unseen."""
    require_overseer(principal)
    query = select(s.WebhookDelivery.__table__, s.WebhookSubscription.department,
                   s.WebhookSubscription.street).join(
        s.WebhookSubscription, s.WebhookSubscription.id == s.WebhookDelivery.subscription_id)
    if principal.department is not None:
        query = query.where(s.WebhookSubscription.department == principal.department)
    if principal.street is not None:
        query = query.where(s.WebhookSubscription.street == principal.street)
    return [{"id": r.id, "subscription_id": r.subscription_id, "alert_id": r.alert_id,
             "status": r.status, "attempts": r.attempts, "last_status": r.last_status,
             "last_error": r.last_error, "delivered_at": _iso(r.delivered_at)}
            for r in conn.execute(query.order_by(s.WebhookDelivery.id)).all()]


