"""Read side of custody: merchants' books, cards, exposure, instructions, payout lists."""

from __future__ import annotations

import hmac
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, func, select

from ledger.access import MerchantBooks, may_read_card, may_read_merchant, require_book_reader
from ledger.auth import Principal, Role
from ledger.books import normal_sign
from ledger.custody.cards import token_hash
from ledger.custody.lifecycle import CardStatus, ConsumptionStatus
from ledger.custody.merchants import MerchantStatus
from ledger.custody.rules import ANY_INDUSTRY, basis_points_whole, parse_rule_set
from ledger.custody.settlement import period_of, release_split
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.queries import Page, next_after
from ledger.db.scope import within_scope
from ledger.errors import NotFound


def _merchant_row(conn: Connection, merchant_id: str) -> Any:
    row = conn.execute(select(c.Merchant.__table__).where(c.Merchant.id == merchant_id)).first()
    if row is None:
        raise NotFound(f"merchant {merchant_id} does not exist", field="merchant_id")
    return row


def readable_merchant(conn: Connection, principal: Principal, merchant_id: str) -> Any:
    """The merchant's row, if this key may read its books. Decided before existence: a role
    that never reads merchants' books (a consumer) is refused first, and to a key that may
    not read this merchant's, a merchant that exists answers as one that does not."""
    require_book_reader(principal)
    merchant = _merchant_row(conn, merchant_id)
    if not may_read_merchant(principal, MerchantBooks(merchant.id, merchant.bank_id,
                                              merchant.department, merchant.street)):
        raise NotFound(f"merchant {merchant.id} does not exist", field="merchant_id")
    return merchant


def merchant_balances(conn: Connection, merchant_id: str) -> dict[str, int]:
    rows = conn.execute(
        select(c.MerchantAccount.purpose, t.Account.kind, t.Account.balance_fen)
        .join(t.Account, t.Account.id == c.MerchantAccount.account_id)
        .where(c.MerchantAccount.merchant_id == merchant_id)).all()
    return {r.purpose: r.balance_fen * normal_sign(r.kind) for r in rows}


def card_liability(conn: Connection, merchant_id: str) -> tuple[int, int]:
    """(outstanding card liability in fen, number of cards)."""
    row = conn.execute(
        select(func.coalesce(func.sum(-t.Account.balance_fen), 0), func.count())
        .select_from(c.Card).join(t.Account, t.Account.id == c.Card.account_id)
        .where(c.Card.merchant_id == merchant_id)).one()
    return int(row[0]), int(row[1])


def current_rules(conn: Connection, jurisdiction: str, industry: str) -> Any:
    for wanted in (industry, ANY_INDUSTRY):
        row = conn.execute(
            select(c.RuleSetVersion.__table__)
            .where(c.RuleSetVersion.jurisdiction == jurisdiction,
                   c.RuleSetVersion.industry == wanted)
            .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
        if row is not None:
            return row
    return None


def exposure(conn: Connection, merchant: Any) -> dict[str, Any]:
    balances = merchant_balances(conn, merchant.id)
    liability, cards = card_liability(conn, merchant.id)
    custody = balances["custody_cash"] + balances["custody_in_transit"]
    rules_row = current_rules(conn, merchant.jurisdiction, merchant.industry)
    required_bp = parse_rule_set(rules_row.rules).custody_ratio_bp if rules_row else None
    # What the merchant took directly still covers card balances only where it does not
    # already owe it back for a refund (merchant_refund_due).
    custodied_liability = liability - (balances["direct_share"]
                                       - balances["merchant_refund_due"])
    coverage_bp = custody * basis_points_whole // liability if liability else None
    meets_rule = None if coverage_bp is None or required_bp is None \
        else coverage_bp >= required_bp
    verified = last_cross_verification(conn, merchant.id)
    return {"merchant_id": merchant.id, "name": merchant.name, "industry": merchant.industry,
            "department": merchant.department, "status": merchant.status,
            "tier": merchant.tier, "complaint_count": merchant.complaint_count,
            "cards": cards, "card_liability_fen": liability,
            "custodied_card_liability_fen": custodied_liability,
            "custody_balance_fen": custody, "coverage_ratio_bp": coverage_bp,
            "required_ratio_bp": required_bp, "meets_rule": meets_rule,
            "last_cross_verification": verified,
            "risk_signals": risk_signals(meets_rule, verified)}


def last_cross_verification(conn: Connection, merchant_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(b.CrossVerification.closing_date, b.CrossVerification.bank_balance_fen,
               b.CrossVerification.ledger_balance_fen, b.CrossVerification.difference_fen)
        .where(b.CrossVerification.merchant_id == merchant_id)
        .order_by(b.CrossVerification.id.desc()).limit(1)).first()
    if row is None:
        return None
    return {"closing_date": row.closing_date.isoformat(), "bank_balance_fen": row.bank_balance_fen,
            "ledger_balance_fen": row.ledger_balance_fen, "difference_fen": row.difference_fen,
            "result": "match" if row.difference_fen == 0 else "difference"}


def risk_signals(meets_rule: bool | None, verified: dict[str, Any] | None) -> list[str]:
    """The fund-flow signals (四查) the ledger itself can see; they feed the risk tier."""
    signals = []
    if meets_rule is False:
        signals.append("custody_below_required_ratio")
    if verified is not None and verified["difference_fen"] != 0:
        signals.append("custody_balance_differs_from_bank")
    return signals


def merchant_view(conn: Connection, principal: Principal, merchant_id: str, today: date
                  ) -> dict[str, Any]:
    m = readable_merchant(conn, principal, merchant_id)
    balances = merchant_balances(conn, m.id)
    view = {"id": m.id, "name": m.name, "credit_code": m.credit_code, "industry": m.industry,
            "department": m.department, "department_pending": m.department_pending,
            "jurisdiction": m.jurisdiction, "bank_id": m.bank_id,
            "custody_account": m.custody_account, "rule_set_id": m.rule_set_id,
            "status": m.status, "tier": m.tier, "hard_blocks": m.hard_blocks.get("blocks", []),
            "street": m.street, "address": m.address, "premises": m.premises,
            "people": m.people, "balances_fen": balances, "exposure": exposure(conn, m)}
    view["next_release"] = _next_release(conn, m, today)
    return view


def _next_release(conn: Connection, m: Any, today: date) -> dict[str, Any] | None:
    rules_row = current_rules(conn, m.jurisdiction, m.industry)
    if rules_row is None or m.status != MerchantStatus.active:
        return None
    rules = parse_rule_set(rules_row.rules)
    _, end = period_of(today, rules.release_cadence_days)
    next_end = end if end > today else date.fromordinal(end.toordinal()
                                                         + rules.release_cadence_days)
    confirmed = conn.execute(
        select(func.coalesce(func.sum(c.Consumption.custody_fen), 0))
        .join(c.Card, c.Card.id == c.Consumption.card_id)
        .where(c.Consumption.merchant_id == m.id,
               c.Consumption.status == ConsumptionStatus.confirmed,
               c.Consumption.release_id.is_(None), c.Card.disputed.is_(False))).scalar_one()
    amount, holdback = release_split(int(confirmed), rules.reserve_share_bp)
    return {"period_end": next_end.isoformat(), "estimated_amount_fen": amount,
            "estimated_holdback_fen": holdback}


def card_view(row: Any, balance_fen: int) -> dict[str, Any]:
    return {"id": row.id, "merchant_id": row.merchant_id, "product_id": row.product_id,
            "kind": row.kind, "named": row.named, "consumer_id": row.consumer_id,
            "paid_fen": row.paid_fen, "custody_fen": row.custody_fen,
            "total_units": row.total_units, "used_units": row.used_units,
            "remaining_units": row.total_units - row.used_units,
            "remaining_paid_fen": balance_fen, "status": row.status,
            "disputed": row.disputed, "sold_on": row.sold_on.isoformat(),
            "expires_on": row.expires_on.isoformat(), "sold_seq": row.sold_seq,
            "rule_set_id": row.rule_set_id}


def merchant_cards(conn: Connection, principal: Principal, merchant_id: str, after: str,
                   limit: int) -> dict[str, Any]:
    readable_merchant(conn, principal, merchant_id)
    rows = conn.execute(
        select(c.Card.__table__, t.Account.balance_fen.label("account_balance"))
        .join(t.Account, t.Account.id == c.Card.account_id)
        .where(c.Card.merchant_id == merchant_id, c.Card.id > after)
        .order_by(c.Card.id).limit(limit)).all()
    items = [card_view(r, -r.account_balance) for r in rows]
    return {"items": items, "next_after": rows[-1].id if len(rows) == limit else None}


# What a card's reader is decided on, of its merchant: selected beside the card.
CARD_MERCHANT_COLUMNS = (c.Merchant.bank_id.label("merchant_bank_id"),
                         c.Merchant.department.label("merchant_department"),
                         c.Merchant.street.label("merchant_street"))


def readable_card(reader: Principal | str, card: Any) -> bool:
    """Whether this reader may read the card: `card` a row with the card's columns and its
    merchant's (CARD_MERCHANT_COLUMNS)."""
    if isinstance(reader, str):  # the sale's receipt code
        return hmac.compare_digest(token_hash(reader), bytes(card.token_hash))
    return may_read_card(reader, card.consumer_id, MerchantBooks(
        card.merchant_id, card.merchant_bank_id, card.merchant_department, card.merchant_street))


def consumer_card_status(conn: Connection, card_id: str, reader: Principal | str
                         ) -> dict[str, Any]:
    """What a cardholder may see of their card (to anyone else: as if it did not exist)."""
    row = conn.execute(
        select(c.Card.__table__, t.Account.balance_fen.label("account_balance"),
               *CARD_MERCHANT_COLUMNS)
        .join(t.Account, t.Account.id == c.Card.account_id)
        .join(c.Merchant, c.Merchant.id == c.Card.merchant_id)
        .where(c.Card.id == card_id)).first()
    if row is None or not readable_card(reader, row):
        raise NotFound(f"card {card_id} does not exist", field="card_id")
    m = _merchant_row(conn, row.merchant_id)
    remaining = -row.account_balance
    active = row.status == CardStatus.active
    in_custody = row.custody_fen - row.consumed_custody_fen if active else 0
    refunds = conn.execute(select(c.RefundInstruction.__table__)
                           .where(c.RefundInstruction.card_id == card_id)
                           .order_by(c.RefundInstruction.id)).all()
    return {**card_view(row, remaining), "merchant_name": m.name,
            "merchant_status": m.status, "custodian_bank": m.bank_id,
            "custody_status": {"in_custody_fen": in_custody,
                               "held_by_merchant_fen": remaining - in_custody
                               if row.status == CardStatus.active else 0},
            "refunds": [{"id": r.id, "reason": r.reason, "claim_fen": r.claim_fen,
                         "amount_fen": r.amount_fen, "status": r.status} for r in refunds]}


def all_exposure(conn: Connection, page: Page, bank_id: str | None = None,
                 scope: ColumnElement[bool] | None = None) -> dict[str, Any]:
    """A page of merchants' exposure, by merchant id; of one bank's merchants if named, of a
    regulator's scope if given (ledger/db/scope.py)."""
    query = select(c.Merchant.__table__).where(c.Merchant.id > page.after)
    if bank_id is not None:
        query = query.where(c.Merchant.bank_id == bank_id)
    if scope is not None:
        query = query.where(scope)
    merchants = conn.execute(query.order_by(c.Merchant.id).limit(page.limit)).all()
    items = [exposure(conn, m) for m in merchants]
    return {"items": items, "next_after": next_after([m.id for m in merchants], page.limit)}


INSTRUCTION_TABLES: dict[str, Any] = {"releases": c.ReleaseInstruction,
                                      "refunds": c.RefundInstruction}


class InstructionFilter(NamedTuple):
    """Which instructions a list asks for: each field given must match; None or empty, any."""

    status: str | None = None
    merchant_id: str | None = None


def instructions(conn: Connection, principal: Principal, kind: str, wanted: InstructionFilter,
                 page: Page) -> dict[str, Any]:
    """A page of release or refund instructions (`kind`), by id: those of the merchants whose
    books this key may read (ledger/access.py), filtered in the query."""
    require_book_reader(principal)
    status, merchant_id = wanted
    table = INSTRUCTION_TABLES[kind]
    query = select(table.__table__, c.Merchant.bank_id).join(
        c.Merchant, c.Merchant.id == table.merchant_id).where(table.id > page.after)
    if status:
        query = query.where(table.status == status)
    if merchant_id:
        query = query.where(table.merchant_id == merchant_id)
    if principal.role == Role.bank:
        query = query.where(c.Merchant.bank_id == principal.bank_id)
    if principal.role == Role.merchant:
        query = query.where(table.merchant_id == principal.merchant_id)
    query = within_scope(query, principal, table.merchant_id)
    rows = conn.execute(query.order_by(table.id).limit(page.limit)).all()
    return {"items": [_jsonable(dict(r._mapping)) for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in row.items()}


def payout_rows(conn: Connection, principal: Principal, merchant_id: str) -> list[list[Any]]:
    m = readable_merchant(conn, principal, merchant_id)
    rows = conn.execute(
        select(c.RefundInstruction.__table__, c.Card.consumer_id)
        .join(c.Card, c.Card.id == c.RefundInstruction.card_id)
        .where(c.RefundInstruction.merchant_id == merchant_id,
               c.RefundInstruction.reason == "closure")
        .order_by(c.RefundInstruction.id)).all()
    header = ["end_to_end_id", "card_id", "consumer_id", "claim_fen", "payout_fen",
              "shortfall_fen", "custody_account", "bank_id", "status"]
    return [header] + [[r.end_to_end_id, r.card_id, r.consumer_id, r.claim_fen, r.amount_fen,
                        r.claim_fen - r.amount_fen, m.custody_account, m.bank_id, r.status]
                       for r in rows]


def rule_sets(conn: Connection, page: Page) -> dict[str, Any]:
    """Rule set versions by id: a version always has a larger id than the one it follows."""
    rows = conn.execute(select(c.RuleSetVersion.__table__)
                        .where(c.RuleSetVersion.id > page.after)
                        .order_by(c.RuleSetVersion.id).limit(page.limit)).all()
    return {"items": [{"id": r.id, "jurisdiction": r.jurisdiction, "industry": r.industry,
                       "version": r.version, "rules": r.rules, "created_seq": r.created_seq}
                      for r in rows],
            "next_after": next_after([r.id for r in rows], page.limit)}


def amendments(conn: Connection, principal: Principal, merchant_id: str, after: int,
               limit: int) -> dict[str, Any]:
    """A merchant's amendments (变更登记), oldest first, paged by journal entry."""
    readable_merchant(conn, principal, merchant_id)
    rows = conn.execute(
        select(c.MerchantAmendment.__table__)
        .where(c.MerchantAmendment.merchant_id == merchant_id,
               c.MerchantAmendment.amended_seq > after)
        .order_by(c.MerchantAmendment.amended_seq).limit(limit)).all()
    items = [{"journal_seq": r.amended_seq, "merchant_id": r.merchant_id, "changes": r.changes,
              "reason": r.reason, "amended_on": r.amended_on.isoformat()} for r in rows]
    return {"items": items,
            "next_after": rows[-1].amended_seq if len(rows) == limit else None}
