"""SQL for the custody commands: loading state under the batch, writing it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, update

from ledger.books import Account, AccountKind
from ledger.custody.cards import CardKind, CardMoney, MerchantState, Product
from ledger.custody.merchants import MerchantStatus, Tier
from ledger.custody.rules import ANY_INDUSTRY, RuleSet, parse_rule_set
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.batch import Batch
from ledger.errors import NotFound

# The merchant's chart: purpose -> account kind. Every account must never go negative.
CHART: dict[str, AccountKind] = {
    "custody_cash": AccountKind.asset,
    "custody_in_transit": AccountKind.asset,
    "direct_share": AccountKind.asset,
    "earned_pending": AccountKind.liability,
    "earned": AccountKind.liability,
    "reserve": AccountKind.liability,
    "release_pending": AccountKind.liability,
    "refunds_payable": AccountKind.liability,
    "merchant_refund_due": AccountKind.liability,
}
BANK_HELD = frozenset({"custody_cash", "custody_in_transit"})


@dataclass(frozen=True, slots=True)
class MerchantRow:
    id: str
    name: str
    industry: str
    jurisdiction: str
    bank_id: str
    status: MerchantStatus
    tier: Tier
    hard_blocks: frozenset[str]
    accounts: dict[str, int]

    @property
    def state(self) -> MerchantState:
        return MerchantState(self.status, self.tier, self.hard_blocks)


@dataclass(frozen=True, slots=True)
class CardRow:
    id: str
    merchant_id: str
    rule_set_id: int
    account_id: int
    consumer_id: str
    token_hash: bytes
    status: str
    disputed: bool
    sold_on: date
    expires_on: date
    money: CardMoney


def open_account(batch: Batch, seq: int, kind: AccountKind, name: str, merchant_id: str,
                 bank_id: str | None) -> int:
    account_id = batch.next_id(t.Account)
    batch.add_row(t.Account, {"id": account_id, "kind": kind.value, "currency": "CNY",
                              "name": name, "merchant_id": merchant_id, "bank_id": bank_id,
                              "non_negative": True, "balance_fen": 0, "opened_seq": seq})
    batch.open_account(Account(account_id, kind, "CNY", True, 0))
    return account_id


def latest_rule_set(batch: Batch, jurisdiction: str, industry: str) -> tuple[int, RuleSet]:
    for wanted in (industry, ANY_INDUSTRY):
        row = batch.conn.execute(
            select(c.RuleSetVersion.id, c.RuleSetVersion.rules)
            .where(c.RuleSetVersion.jurisdiction == jurisdiction,
                   c.RuleSetVersion.industry == wanted)
            .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
        if row is not None:
            return row.id, parse_rule_set(row.rules)
    raise NotFound(f"no rule set for {jurisdiction}/{industry} (nor a fallback '*')",
                   field="jurisdiction")


def rule_set(batch: Batch, rule_set_id: int) -> RuleSet:
    rules = batch.conn.execute(select(c.RuleSetVersion.rules)
                               .where(c.RuleSetVersion.id == rule_set_id)).scalar_one()
    return parse_rule_set(rules)


def next_rule_version(batch: Batch, jurisdiction: str, industry: str
                      ) -> tuple[int, dict[str, Any] | None]:
    row = batch.conn.execute(
        select(c.RuleSetVersion.version, c.RuleSetVersion.rules)
        .where(c.RuleSetVersion.jurisdiction == jurisdiction,
               c.RuleSetVersion.industry == industry)
        .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
    return (1, None) if row is None else (row.version + 1, row.rules)


def merchant(batch: Batch, merchant_id: str) -> MerchantRow:
    row = batch.conn.execute(select(c.Merchant.__table__).where(c.Merchant.id == merchant_id)
                             .with_for_update()).first()
    if row is None:
        raise NotFound(f"merchant {merchant_id} does not exist", field="merchant_id")
    accounts = dict(batch.conn.execute(
        select(c.MerchantAccount.purpose, c.MerchantAccount.account_id)
        .where(c.MerchantAccount.merchant_id == merchant_id)).all())
    return MerchantRow(row.id, row.name, row.industry, row.jurisdiction, row.bank_id,
                       MerchantStatus(row.status), Tier(row.tier),
                       frozenset(row.hard_blocks.get("blocks", [])), accounts)


def credit_code_taken(batch: Batch, credit_code: str) -> str | None:
    return batch.conn.execute(select(c.Merchant.id)
                              .where(c.Merchant.credit_code == credit_code)).scalar()


def card(batch: Batch, card_id: str) -> CardRow:
    row = batch.conn.execute(select(c.Card.__table__).where(c.Card.id == card_id)
                             .with_for_update()).first()
    if row is None:
        raise NotFound(f"card {card_id} does not exist", field="card_id")
    money = CardMoney(CardKind(row.kind), row.paid_fen, row.custody_fen, row.total_units,
                      row.used_units, row.consumed_paid_fen, row.consumed_custody_fen)
    return CardRow(row.id, row.merchant_id, row.rule_set_id, row.account_id, row.consumer_id,
                   bytes(row.token_hash), row.status, row.disputed, row.sold_on,
                   row.expires_on, money)


def balance(batch: Batch, account_id: int) -> int:
    """The account's normal balance as the batch sees it."""
    account = batch.load_accounts([account_id])[account_id]
    return account.normal_balance_fen


def insert_row(batch: Batch, table: Any, row: dict[str, Any]) -> Any:
    return batch.write(insert(table).values(**row).returning(table.__table__.c.id)).scalar_one()


def insert_plain(batch: Batch, table: Any, **row: Any) -> None:
    batch.write(insert(table).values(**row))


def update_row(batch: Batch, table: Any, row_id: Any, **values: Any) -> None:
    batch.write(update(table).where(table.id == row_id).values(**values))


def releasable(batch: Batch, merchant_id: str, period_end: date) -> tuple[int, list[int]]:
    """Confirmed, unreleased consumptions before the period's end, disputed cards left out."""
    rows = batch.conn.execute(
        select(c.Consumption.id, c.Consumption.custody_fen)
        .join(c.Card, c.Card.id == c.Consumption.card_id)
        .where(c.Consumption.merchant_id == merchant_id, c.Consumption.status == "confirmed",
               c.Consumption.release_id.is_(None), c.Consumption.confirmed_on < period_end,
               c.Card.disputed.is_(False))).all()
    return sum(r.custody_fen for r in rows), [r.id for r in rows]


def release_exists(batch: Batch, merchant_id: str, period_end: date) -> bool:
    return batch.conn.execute(
        select(func.count()).select_from(c.ReleaseInstruction)
        .where(c.ReleaseInstruction.merchant_id == merchant_id,
               c.ReleaseInstruction.period_end == period_end,
               c.ReleaseInstruction.status != "failed")).scalar_one() > 0


def product(batch: Batch, product_id: str) -> tuple[str, Product]:
    row = batch.conn.execute(select(c.Product.__table__)
                             .where(c.Product.id == product_id)).first()
    if row is None:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    return row.merchant_id, Product(CardKind(row.kind), row.name, row.price_fen, row.sessions,
                                    row.bonus_units, row.validity_months)


def consumption(batch: Batch, consumption_id: int) -> Any:
    row = batch.conn.execute(select(c.Consumption.__table__)
                             .where(c.Consumption.id == consumption_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"consumption {consumption_id} does not exist", field="consumption_id")
    return row


def due_consumptions(batch: Batch, as_of: date, limit: int) -> list[int]:
    return list(batch.conn.execute(
        select(c.Consumption.id).where(c.Consumption.status == "pending",
                                       c.Consumption.confirm_by <= as_of)
        .order_by(c.Consumption.id).limit(limit)).scalars())


def instruction(batch: Batch, table: Any, instruction_id: int) -> Any:
    row = batch.conn.execute(select(table.__table__).where(table.id == instruction_id)
                             .with_for_update()).first()
    if row is None:
        raise NotFound(f"instruction {instruction_id} does not exist", field="id")
    return row


def pending_releases(batch: Batch, merchant_id: str) -> list[Any]:
    return list(batch.conn.execute(
        select(c.ReleaseInstruction.__table__)
        .where(c.ReleaseInstruction.merchant_id == merchant_id,
               c.ReleaseInstruction.status == "pending")
        .order_by(c.ReleaseInstruction.id).with_for_update()).all())


def active_merchant_ids(batch: Batch) -> list[str]:
    return list(batch.conn.execute(select(c.Merchant.id).where(c.Merchant.status == "active")
                                   .order_by(c.Merchant.id)).scalars())


def open_cards(batch: Batch, merchant_id: str, limit: int) -> list[str]:
    return list(batch.conn.execute(
        select(c.Card.id).where(c.Card.merchant_id == merchant_id, c.Card.status == "active")
        .order_by(c.Card.id).limit(limit)).scalars())


def clear_release(batch: Batch, release_id: int) -> None:
    batch.write(update(c.Consumption).where(c.Consumption.release_id == release_id)
                .values(release_id=None))


def mark_released(batch: Batch, consumption_ids: list[int], release_id: int) -> None:
    batch.write(update(c.Consumption).where(c.Consumption.id.in_(consumption_ids))
                .values(release_id=release_id))
