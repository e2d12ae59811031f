"""SQL for the custody commands: loading state under the batch, writing it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from ledger.books import Account, AccountKind
from ledger.custody.cards import CardKind, CardMoney, MerchantState, Product
from ledger.custody.merchants import MerchantStatus, Tier
from ledger.custody.rules import ANY_INDUSTRY, RuleSet, parse_rule_set
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db import tables as t
from ledger.db.batch import Batch
from ledger.db.rowcache import LATEST_RULES
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
        fresh = batch.rows.get(LATEST_RULES, (jurisdiction, wanted))
        if fresh is not None:
            if fresh["id"] is None:  # known to have no version of its own: fall back
                continue
            return fresh["id"], fresh["rules"]
        row = batch.conn.execute(
            select(c.RuleSetVersion.id, c.RuleSetVersion.rules)
            .where(c.RuleSetVersion.jurisdiction == jurisdiction,
                   c.RuleSetVersion.industry == wanted)
            .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
        if row is not None:
            rules = parse_rule_set(row.rules)
            batch.rows.remember(LATEST_RULES, (jurisdiction, wanted),
                                {"id": row.id, "rules": rules})
            return row.id, rules
        batch.rows.remember(LATEST_RULES, (jurisdiction, wanted), {"id": None, "rules": None})
    raise NotFound(f"no rule set for {jurisdiction}/{industry} (nor a fallback '*')",
                   field="jurisdiction")


def note_new_rule_set(batch: Batch, view: dict[str, Any], rules: RuleSet) -> None:
    batch.rows.insert(c.RuleSetVersion, view["id"], view)
    key = (view["jurisdiction"], view["industry"])
    if batch.rows.get(LATEST_RULES, key) is None:
        batch.rows.remember(LATEST_RULES, key, {"id": view["id"], "rules": rules})
    else:
        batch.rows.update(LATEST_RULES, key, id=view["id"], rules=rules)


def rule_set(batch: Batch, rule_set_id: int) -> RuleSet:
    # Rule set versions never change once written: the writer keeps them (batch.state).
    known = batch.state.rules_by_id
    cached = known.get(rule_set_id)
    if cached is not None:
        return cached
    fresh = batch.rows.get(c.RuleSetVersion, rule_set_id)
    if fresh is not None:
        # Made in this batch, or carried from an earlier one: parsed once either way (an id
        # whose batch rolls back is never drawn again, so its entry is never asked for).
        rules = known[rule_set_id] = parse_rule_set(fresh["rules"])
        return rules
    rules = parse_rule_set(batch.conn.execute(
        select(c.RuleSetVersion.rules).where(c.RuleSetVersion.id == rule_set_id)).scalar_one())
    known[rule_set_id] = rules
    return rules


def next_rule_version(batch: Batch, jurisdiction: str, industry: str
                      ) -> tuple[int, dict[str, Any] | None]:
    batch.sync()
    row = batch.conn.execute(
        select(c.RuleSetVersion.version, c.RuleSetVersion.rules)
        .where(c.RuleSetVersion.jurisdiction == jurisdiction,
               c.RuleSetVersion.industry == industry)
        .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
    return (1, None) if row is None else (row.version + 1, row.rules)


def _cached(batch: Batch, table: Any, row_id: Any, what: str, lock: bool = True
            ) -> dict[str, Any]:
    row = batch.rows.get(table, row_id)
    if row is not None:
        return row
    query = select(table.__table__).where(table.id == row_id)
    found = batch.conn.execute(query.with_for_update() if lock else query).first()
    if found is None:
        raise NotFound(f"{what} {row_id} does not exist", field=f"{what}_id")
    return batch.rows.remember(table, row_id, dict(found._mapping))


def merchant_accounts(batch: Batch, merchant_id: str) -> dict[str, int]:
    # A merchant's chart never changes once written: the writer keeps it (batch.state).
    known = batch.state.accounts_by_merchant
    accounts = known.get(merchant_id) or batch.rows.get(c.MerchantAccount, merchant_id)
    if accounts is None:
        accounts = dict(batch.conn.execute(
            select(c.MerchantAccount.purpose, c.MerchantAccount.account_id)
            .where(c.MerchantAccount.merchant_id == merchant_id)).all())
        known[merchant_id] = accounts
    return accounts


def merchant(batch: Batch, merchant_id: str) -> MerchantRow:
    row = _cached(batch, c.Merchant, merchant_id, "merchant")
    return MerchantRow(row["id"], row["name"], row["industry"], row["jurisdiction"],
                       row["bank_id"], MerchantStatus(row["status"]), Tier(row["tier"]),
                       frozenset(row["hard_blocks"].get("blocks", [])),
                       merchant_accounts(batch, merchant_id))


def file_merchant(batch: Batch, row: dict[str, Any], accounts: dict[str, int]) -> None:
    batch.rows.insert(c.Merchant, row["id"], row)
    for purpose, account_id in accounts.items():
        batch.rows.insert(c.MerchantAccount, (row["id"], purpose), {
            "merchant_id": row["id"], "purpose": purpose, "account_id": account_id})
    batch.rows.remember(c.MerchantAccount, row["id"], dict(accounts))


def credit_code_taken(batch: Batch, credit_code: str) -> str | None:
    batch.sync()
    return batch.conn.execute(select(c.Merchant.id)
                              .where(c.Merchant.credit_code == credit_code)).scalar()


def card(batch: Batch, card_id: str) -> CardRow:
    row = _cached(batch, c.Card, card_id, "card")
    money = CardMoney(CardKind(row["kind"]), row["paid_fen"], row["custody_fen"],
                      row["total_units"], row["used_units"], row["consumed_paid_fen"],
                      row["consumed_custody_fen"])
    return CardRow(row["id"], row["merchant_id"], row["rule_set_id"], row["account_id"],
                   row["consumer_id"], bytes(row["token_hash"]), row["status"],
                   row["disputed"], row["sold_on"], row["expires_on"], money)


def balance(batch: Batch, account_id: int) -> int:
    """The account's normal balance as the batch sees it."""
    account = batch.load_accounts([account_id])[account_id]
    return account.normal_balance_fen


def insert_row(batch: Batch, table: Any, row: dict[str, Any]) -> None:
    batch.rows.insert(table, row["id"], row)


def update_row(batch: Batch, table: Any, row_id: Any, **values: Any) -> None:
    _cached(batch, table, row_id, table.__tablename__)
    batch.rows.update(table, row_id, **values)


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
    row = _cached(batch, c.Product, product_id, "product", lock=False)
    return row["merchant_id"], Product(CardKind(row["kind"]), row["name"], row["price_fen"],
                                       row["sessions"], row["bonus_units"],
                                       row["validity_months"])


def consumption(batch: Batch, consumption_id: int) -> dict[str, Any]:
    return _cached(batch, c.Consumption, consumption_id, "consumption")


def due_consumptions(batch: Batch, as_of: date, limit: int) -> list[int]:
    batch.sync()
    return list(batch.conn.execute(
        select(c.Consumption.id).where(c.Consumption.status == "pending",
                                       c.Consumption.confirm_by <= as_of)
        .order_by(c.Consumption.id).limit(limit)).scalars())


def instruction(batch: Batch, table: Any, instruction_id: int) -> dict[str, Any]:
    return _cached(batch, table, instruction_id, "instruction")


def pending_releases(batch: Batch, merchant_id: str) -> list[int]:
    """Call at the start of a command: it reads the database (after `sync`)."""
    batch.sync()
    return list(batch.conn.execute(
        select(c.ReleaseInstruction.id)
        .where(c.ReleaseInstruction.merchant_id == merchant_id,
               c.ReleaseInstruction.status == "pending")
        .order_by(c.ReleaseInstruction.id)).scalars())


def active_merchant_ids(batch: Batch) -> list[str]:
    batch.sync()
    return list(batch.conn.execute(select(c.Merchant.id).where(c.Merchant.status == "active")
                                   .order_by(c.Merchant.id)).scalars())


def open_cards(batch: Batch, merchant_id: str, limit: int) -> list[str]:
    batch.sync()
    return list(batch.conn.execute(
        select(c.Card.id).where(c.Card.merchant_id == merchant_id, c.Card.status == "active")
        .order_by(c.Card.id).limit(limit)).scalars())


def released_consumptions(batch: Batch, release_id: int) -> list[int]:
    """Consumptions of a release; the command has called `sync` before changing anything."""
    return list(batch.conn.execute(select(c.Consumption.id)
                                   .where(c.Consumption.release_id == release_id)).scalars())


def mark_released(batch: Batch, consumption_ids: list[int], release_id: int | None) -> None:
    load_rows(batch, c.Consumption, consumption_ids)
    for consumption_id in consumption_ids:
        batch.rows.update(c.Consumption, consumption_id, release_id=release_id)


def load_rows(batch: Batch, table: Any, row_ids: list[Any], lock: bool = True) -> None:
    """Bring rows into the batch in one query (locked, unless they never change), those it
    does not hold yet."""
    missing = [i for i in row_ids if batch.rows.get(table, i) is None]
    if not missing:
        return
    query = select(table.__table__).where(table.id.in_(missing)).order_by(table.id)
    found = batch.conn.execute(query.with_for_update() if lock else query)
    for row in found:
        batch.rows.remember(table, row.id, dict(row._mapping))


deposit_expected_days = 3  # card money reaches the custody account within T+3 at the latest


def deposit_reference(sale_seq: int) -> str:
    """What the payment of one card sale carries as its reference (ISO EndToEndId: <= 35)."""
    return f"YFS{sale_seq:012d}"


def batch_reference(merchant_id: str, day: date) -> str:
    """One bank credit for a merchant's whole day of sales carries this reference."""
    return f"YFD{day:%Y%m%d}{merchant_id}"


def expect_deposit(batch: Batch, sale_seq: int, merchant_id: str, card_id: str,
                   amount_fen: int, sold_on: date) -> None:
    batch.rows.insert(b.ExpectedDeposit, sale_seq, {
        "id": sale_seq, "merchant_id": merchant_id, "card_id": card_id,
        "reference": deposit_reference(sale_seq),
        "batch_reference": batch_reference(merchant_id, sold_on), "amount_fen": amount_fen,
        "open_fen": amount_fen, "expected_by": sold_on + timedelta(days=deposit_expected_days),
        "status": "pending", "cleared_line_id": None})


def pending_deposits(batch: Batch, merchant_id: str) -> list[int]:
    """The merchant's deposits not yet seen, oldest first (call before changing anything)."""
    batch.sync()
    return list(batch.conn.execute(
        select(b.ExpectedDeposit.id).where(b.ExpectedDeposit.merchant_id == merchant_id,
                                           b.ExpectedDeposit.status == "pending")
        .order_by(b.ExpectedDeposit.id)).scalars())


def confirm_deposits_fifo(batch: Batch, deposit_ids: list[int], amount_fen: int) -> None:
    """A manual confirmation covers the oldest open deposits first, the last one partly."""
    load_rows(batch, b.ExpectedDeposit, deposit_ids)
    left = amount_fen
    for deposit_id in deposit_ids:
        if left == 0:
            return
        row = batch.rows.get(b.ExpectedDeposit, deposit_id)
        assert row is not None
        taken = min(left, row["open_fen"])
        left -= taken
        open_fen = row["open_fen"] - taken
        batch.rows.update(b.ExpectedDeposit, deposit_id, open_fen=open_fen,
                          status="cleared" if open_fen == 0 else "pending")


def prefetch_cards(batch: Batch, card_ids: list[str]) -> None:
    """Cards, their merchants and their accounts, three queries for a whole batch."""
    load_rows(batch, c.Card, card_ids)
    cards = [row for i in card_ids if (row := batch.rows.get(c.Card, i)) is not None]
    merchant_ids = sorted({row["merchant_id"] for row in cards})
    load_rows(batch, c.Merchant, merchant_ids)
    charts = [merchant_accounts(batch, m) for m in merchant_ids]
    batch.load_accounts([row["account_id"] for row in cards]
                        + [a for chart in charts for a in chart.values()])


def prefetch_products(batch: Batch, product_ids: list[str]) -> None:
    load_rows(batch, c.Product, product_ids, lock=False)  # products never change
    products = [row for i in product_ids if (row := batch.rows.get(c.Product, i)) is not None]
    merchant_ids = sorted({row["merchant_id"] for row in products})
    load_rows(batch, c.Merchant, merchant_ids)
    batch.load_accounts([a for m in merchant_ids for a in merchant_accounts(batch, m).values()])
