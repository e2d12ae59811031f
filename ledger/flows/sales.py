"""Products and card sales: the sale's money is split between custody (in transit until the
bank shows it) and the merchant's direct share, by the rule set's ratio."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.access import require_merchant_or_operator
from ledger.auth import Principal
from ledger.books import AccountKind
from ledger.commands import Books, Command, NewAccount, Reads
from ledger.custody import cards as card_rules
from ledger.custody.lifecycle import Card, CardStatus, Merchant
from ledger.custody.merchants import Tier
from ledger.errors import NotFound, Refused
from ledger.flows.bans import screen
from ledger.flows.filing import new_id
from ledger.supervision.bans import screened


@dataclass(frozen=True)
class CreateProduct(Command):
    principal: Principal
    merchant_id: str
    product: card_rules.Product

    def run(self, books: Books) -> dict[str, Any]:
        require_merchant_or_operator(self.principal, self.merchant_id, NotFound(
            f"merchant {self.merchant_id} does not exist", field="merchant_id"))
        books.custody.merchant(self.merchant_id)
        p = self.product
        view = {"id": new_id("p"), "merchant_id": self.merchant_id, "kind": p.kind.value,
                "name": p.name, "price_fen": p.price_fen, "sessions": p.sessions,
                "bonus_units": p.bonus_units, "validity_months": p.validity_months}
        entry = books.append("product.created", view)
        books.custody.add_product({**view, "created_seq": entry.seq})
        return {**view, "journal_seq": entry.seq}


@dataclass(frozen=True)
class SellCard(Command):
    principal: Principal
    product_id: str
    consumer_id: str
    named: bool
    today: date
    # Reads the card's status and receipt, nothing else: the consumer acts with their own key.
    receipt_code: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def reads(self) -> Reads:
        return Reads(products=(self.product_id,))

    def run(self, books: Books) -> dict[str, Any]:
        merchant_id, product = books.custody.product(self.product_id)
        require_merchant_or_operator(self.principal, merchant_id, NotFound(
            f"product {self.product_id} does not exist", field="product_id"))
        m = books.custody.merchant(merchant_id)
        rule_set_id, rules = books.custody.latest_rule_set(m.jurisdiction, m.industry)
        card_rules.check_sale(m.state, product, rules, self.named)
        # From the batch's memo (ledger/db/ban_store.py): no read once its subjects are known.
        register = books.custody.register(m.id)
        screen(books, screened(register.people, register.premises, (), "product_id",
                               "product_id"), self.today, "sale refused")
        if m.tier == Tier.yellow:
            check_daily_cap(books, m, product.price_fen, self.today)
        custody, direct = card_rules.custody_split(product.price_fen, rules.custody_ratio_bp)
        card_id = new_id("card")
        account = books.open_account(NewAccount(AccountKind.liability, f"card {card_id}", m.id))
        expires_on = add_months(self.today, product.validity_months)
        details = {"card_id": card_id, "merchant_id": m.id, "product_id": self.product_id,
                   "consumer_id": self.consumer_id, "named": self.named,
                   "kind": product.kind.value, "paid_fen": product.price_fen,
                   "custody_fen": custody, "direct_fen": direct,
                   "total_units": product.total_units, "rule_set_id": rule_set_id,
                   "card_account_id": account, "sold_on": self.today.isoformat(),
                   "expires_on": expires_on.isoformat()}
        entry = books.record("card.sold", [(m.accounts["custody_in_transit"], custody),
                                           (m.accounts["direct_share"], direct),
                                           (account, -product.price_fen)], details)
        money = card_rules.CardMoney(product.kind, product.price_fen, custody,
                                     product.total_units, 0, 0, 0)
        books.custody.add_card(Card(
            card_id, m.id, self.product_id, rule_set_id, account, self.consumer_id,
            card_rules.token_hash(self.receipt_code), self.named, CardStatus.active, False,
            self.today, expires_on, entry.seq, money))
        if custody:
            books.custody.expect_deposit(entry.seq, m.id, card_id, custody, self.today)
        return {**details, "receipt_code": self.receipt_code, "journal_seq": entry.seq,
                "entry_hash": entry.entry_hash.hex()}


def check_daily_cap(books: Books, m: Merchant, price_fen: int, today: date) -> None:
    """A yellow merchant's new sales are capped per day (控增量, seed 001), by the supervision
    rules of its jurisdiction and industry: the sale past the cap is refused."""
    rules = books.supervision.rules_of(m.jurisdiction, m.industry)
    if rules is None:  # a jurisdiction without supervision rules caps nothing
        return
    cap = rules.yellow_daily_sales_fen_max
    sold = books.supervision.sales_on(m.id, today)
    if sold + price_fen > cap:
        raise Refused(f"the merchant is yellow-tier: its new sales are capped at {cap} fen a "
                      f"day (控增量); {sold} fen sold today, and this card is {price_fen} fen",
                      field="product_id")


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("a month has at least 28 days")
