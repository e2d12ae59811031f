"""Read side for partner banks: instruction files, open breaks, cross-verifications."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from ledger.access import (
    bank_scope,
    merchant_scope,
    require_bank_reader,
    require_book_reader,
    require_journal_reader,
)
from ledger.auth import Principal
from ledger.bank.payments import PaymentInstruction
from ledger.bank.reconciliation import BreakStatus
from ledger.custody.lifecycle import InstructionStatus
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c

# The bank maps these to the merchant's registered settlement account and, for refunds, to
# the account the consumer paid from: the ledger keeps neither (no personal data).
# (ISO account ids here are letters and digits only.)
release_creditor_account_prefix = "MERCHANT"
refund_creditor_account = "RETURNTOPAYER"


def payment_instructions(conn: Connection, principal: Principal, bank_id: str,
                         today: date) -> list[PaymentInstruction]:
    """Pending releases and refunds out of the custody accounts held at this bank."""
    require_bank_reader(principal, bank_id)
    out: list[PaymentInstruction] = []
    for table, is_release in ((c.ReleaseInstruction, True), (c.RefundInstruction, False)):
        extra = [] if is_release else [c.Card.consumer_id]
        query = (select(table.__table__, c.Merchant.name.label("merchant_name"),
                        c.Merchant.custody_account, *extra)
                 .join(c.Merchant, c.Merchant.id == table.merchant_id)
                 .where(c.Merchant.bank_id == bank_id, table.status == InstructionStatus.pending,
                        table.bank_status != "rejected", table.amount_fen > 0))
        if not is_release:
            query = query.join(c.Card, c.Card.id == c.RefundInstruction.card_id)
        for r in conn.execute(query.order_by(table.id)).all():
            out.append(_instruction(r, is_release, today))
    return out


def _instruction(r: Any, is_release: bool, today: date) -> PaymentInstruction:
    if is_release:
        creditor, account = r.merchant_name, (release_creditor_account_prefix
                                                 + r.merchant_id.replace("_", "").upper())
        remittance = f"Yufu release {r.period_start}..{r.period_end}"
    else:
        creditor, account = f"consumer {r.consumer_id[:16]}", refund_creditor_account
        remittance = f"Yufu refund ({r.reason}) card {r.card_id}"
    return PaymentInstruction(
        end_to_end_id=r.end_to_end_id, amount_fen=r.amount_fen, currency="CNY",
        debtor_account=r.custody_account, debtor_name=f"{r.merchant_name} custody",
        creditor_name=creditor[:70], creditor_account=account, remittance=remittance[:140],
        requested_date=today)


class BreakFilter(NamedTuple):
    """Which breaks a list asks for: each field given must match; None or empty, any."""

    bank_id: str | None = None
    merchant_id: str | None = None
    status: str | None = None


def breaks(conn: Connection, principal: Principal, wanted: BreakFilter,
           today: date) -> dict[str, Any]:
    """Breaks, oldest first, with their age in days; `by_bank_merchant` sums the open ones
    per bank and merchant (count, amount, oldest age)."""
    require_journal_reader(principal)  # breaks: the operator, regulators and banks
    bank_id, merchant_id, status = wanted
    bank_id = bank_scope(principal, bank_id, "breaks")
    query = select(b.ReconciliationBreak.__table__)
    if bank_id:
        query = query.where(b.ReconciliationBreak.bank_id == bank_id)
    if merchant_id:
        query = query.where(b.ReconciliationBreak.merchant_id == merchant_id)
    if status:
        query = query.where(b.ReconciliationBreak.status == status)
    rows = conn.execute(query.order_by(b.ReconciliationBreak.id)).all()
    items = [{**_plain(r._mapping), "age_days": (today - r.opened_on).days} for r in rows]
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    for i in items:
        if i["status"] != BreakStatus.open:
            continue
        group = groups.setdefault((i["bank_id"], i["merchant_id"]), {
            "bank_id": i["bank_id"], "merchant_id": i["merchant_id"], "open": 0,
            "amount_fen": 0, "oldest_age_days": 0})
        group["open"] += 1
        group["amount_fen"] += i["amount_fen"]
        group["oldest_age_days"] = max(group["oldest_age_days"], i["age_days"])
    return {"items": items, "open": sum(1 for i in items if i["status"] == BreakStatus.open),
            "by_bank_merchant": [groups[k] for k in
                                 sorted(groups, key=lambda k: (k[0], k[1] or ""))]}


def cross_verifications(conn: Connection, principal: Principal, merchant_id: str | None,
                        bank_id: str | None = None) -> dict[str, Any]:
    """The last cross-verification of every custody account (the principal may see): all
    for the operator and regulators, a bank's own, a merchant's own; none for a consumer."""
    require_book_reader(principal)
    bank_id = bank_scope(principal, bank_id, "cross-verifications")
    own = merchant_scope(principal, None)  # a merchant key: its own accounts, whatever it asks
    latest = (select(func.max(b.CrossVerification.id))
              .group_by(b.CrossVerification.bank_id, b.CrossVerification.account))
    query = select(b.CrossVerification.__table__).where(b.CrossVerification.id.in_(latest))
    if merchant_id:
        query = query.where(b.CrossVerification.merchant_id == merchant_id)
    if bank_id:
        query = query.where(b.CrossVerification.bank_id == bank_id)
    if own:
        query = query.where(b.CrossVerification.merchant_id == own)
    rows = conn.execute(query.order_by(b.CrossVerification.id)).all()
    return {"items": [{**_plain(r._mapping),
                       "result": "match" if r.difference_fen == 0 else "difference"}
                      for r in rows]}


def _plain(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v)
            for k, v in dict(row).items()}
