"""The custody store (ledger/custody/store.py) on a batch: rows read once into the batch,
changed there, and written in bulk at its flush; queries through `Batch.query`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from ledger.bank.reconciliation import DepositStatus
from ledger.custody.cards import CardKind, CardMoney, Product, Use
from ledger.custody.chart import batch_reference, deposit_expected_days, deposit_reference
from ledger.custody.departments import DepartmentMap
from ledger.custody.lifecycle import (
    BankAnswer,
    Card,
    CardStatus,
    Consumption,
    ConsumptionStatus,
    Instruction,
    InstructionStatus,
    Merchant,
    Refund,
    RefundReason,
    Release,
)
from ledger.custody.merchants import MerchantStatus, Tier
from ledger.custody.rules import RuleSet
from ledger.custody.settlement import Payout
from ledger.custody.store import ClosureTotals
from ledger.db import bank_tables as b
from ledger.db import custody_tables as c
from ledger.db import department_store as departments
from ledger.db.batch import Batch
from ledger.db.bulk import copy_text
from ledger.db.rowcache import LATEST_RULES
from ledger.db.rule_store import latest_rule_set, rule_set
from ledger.errors import NotFound, require
from ledger.supervision.register import Register, register_of

CLOSURE_COLUMNS = ("merchant_id", "available_fen", "planned_seq")
PAYOUT_COLUMNS = ("card_id", "merchant_id", "claim_fen", "payout_fen", "planned_seq")


class CustodyRows:
    """`CustodyStore` for one batch."""

    __slots__ = ("batch",)

    def __init__(self, batch: Batch) -> None:
        self.batch = batch

    # -- by id ---------------------------------------------------------------------------
    def merchant(self, merchant_id: str) -> Merchant:
        return merchant(self.batch, merchant_id)

    def product(self, product_id: str) -> tuple[str, Product]:
        row = _cached(self.batch, c.Product, product_id, "product", lock=False)
        return row["merchant_id"], Product(CardKind(row["kind"]), row["name"], row["price_fen"],
                                           row["sessions"], row["bonus_units"],
                                           row["validity_months"])

    def card(self, card_id: str) -> Card:
        return card(self.batch, card_id)

    def consumption(self, consumption_id: int) -> Consumption:
        row = _cached(self.batch, c.Consumption, consumption_id, "consumption")
        return _consumption(row)

    def release(self, release_id: int) -> Release:
        row = _cached(self.batch, c.ReleaseInstruction, release_id, "release")
        return release_of(row)

    def refund(self, refund_id: int) -> Refund:
        row = _cached(self.batch, c.RefundInstruction, refund_id, "refund")
        return refund_of(row)

    def rule_set(self, rule_set_id: int) -> RuleSet:
        return rule_set(self.batch, rule_set_id)

    def latest_rule_set(self, jurisdiction: str, industry: str) -> tuple[int, RuleSet]:
        return latest_rule_set(self.batch, jurisdiction, industry)

    def consumptions_of_release(self, release_id: int) -> list[int]:
        """Those the database links to the release (as of the batch's last write), read
        again as the batch holds them: a consumption this batch unlinked drops out, and one
        it linked and has not written yet is among the batch's own rows."""
        batch = self.batch
        stored = list(batch.lookup(select(c.Consumption.id)
                                   .where(c.Consumption.release_id == release_id)).scalars())
        load_rows(batch, c.Consumption, stored)
        ids = {i for i in stored if _row(batch, c.Consumption, i)["release_id"] == release_id}
        ids.update(row_id for row_id, row in batch.rows.held(c.Consumption)
                   if row["release_id"] == release_id)
        return sorted(ids)

    # -- queries -------------------------------------------------------------------------
    def next_rule_version(self, jurisdiction: str, industry: str
                          ) -> tuple[int, Mapping[str, Any] | None]:
        row = self.batch.query(
            select(c.RuleSetVersion.version, c.RuleSetVersion.rules)
            .where(c.RuleSetVersion.jurisdiction == jurisdiction,
                   c.RuleSetVersion.industry == industry)
            .order_by(c.RuleSetVersion.version.desc()).limit(1)).first()
        return (1, None) if row is None else (row.version + 1, row.rules)

    def latest_department_map(self, jurisdiction: str) -> tuple[int, DepartmentMap] | None:
        return departments.latest_department_map(self.batch, jurisdiction)

    def pending_merchants(self, jurisdiction: str, industry: str, limit: int) -> list[str]:
        return departments.pending_merchants(self.batch, jurisdiction, industry, limit)

    def credit_code_taken(self, credit_code: str) -> str | None:
        return self._merchant_where(c.Merchant.credit_code == credit_code)

    def custody_account_holder(self, bank_id: str, account: str) -> str | None:
        return self._merchant_where(c.Merchant.bank_id == bank_id,
                                    c.Merchant.custody_account == account)

    def _merchant_where(self, *conditions: Any) -> str | None:
        found = self.batch.query(select(c.Merchant.id).where(*conditions)).scalar()
        return None if found is None else str(found)

    def active_merchant_ids(self, after: str = "", limit: int | None = None) -> list[str]:
        return list(self.batch.query(
            select(c.Merchant.id).where(c.Merchant.status == MerchantStatus.active,
                                        c.Merchant.id > after)
            .order_by(c.Merchant.id).limit(limit)).scalars())

    def due_consumptions(self, as_of: date, limit: int) -> list[int]:
        return list(self.batch.query(
            select(c.Consumption.id)
            .where(c.Consumption.status == ConsumptionStatus.pending,
                   c.Consumption.confirm_by <= as_of)
            .order_by(c.Consumption.id).limit(limit)).scalars())

    def active_merchant_count(self) -> int:
        return int(self.batch.query(select(func.count()).select_from(c.Merchant).where(
            c.Merchant.status == MerchantStatus.active)).scalar_one())

    def due_consumption_count(self, as_of: date) -> int:
        return int(self.batch.query(select(func.count()).select_from(c.Consumption).where(
            c.Consumption.status == ConsumptionStatus.pending,
            c.Consumption.confirm_by <= as_of)).scalar_one())

    def release_exists(self, merchant_id: str, period_end: date) -> bool:
        return bool(self.batch.query(
            select(func.count()).select_from(c.ReleaseInstruction)
            .where(c.ReleaseInstruction.merchant_id == merchant_id,
                   c.ReleaseInstruction.period_end == period_end,
                   c.ReleaseInstruction.status != InstructionStatus.failed)).scalar_one() > 0)

    def releasable(self, merchant_id: str, period_end: date) -> tuple[int, list[int]]:
        """Confirmed, unreleased consumptions before the period's end, disputed cards left
        out: their custody money and their ids."""
        rows = self.batch.query(
            select(c.Consumption.id, c.Consumption.custody_fen)
            .join(c.Card, c.Card.id == c.Consumption.card_id)
            .where(c.Consumption.merchant_id == merchant_id,
                   c.Consumption.status == ConsumptionStatus.confirmed,
                   c.Consumption.release_id.is_(None), c.Consumption.confirmed_on < period_end,
                   c.Card.disputed.is_(False))).all()
        return sum(r.custody_fen for r in rows), [r.id for r in rows]

    def pending_releases(self, merchant_id: str) -> list[int]:
        return list(self.batch.query(
            select(c.ReleaseInstruction.id)
            .where(c.ReleaseInstruction.merchant_id == merchant_id,
                   c.ReleaseInstruction.status == InstructionStatus.pending)
            .order_by(c.ReleaseInstruction.id)).scalars())

    def open_cards(self, merchant_id: str, limit: int) -> list[str]:
        return list(self.batch.query(
            select(c.Card.id).where(c.Card.merchant_id == merchant_id,
                                    c.Card.status == CardStatus.active)
            .order_by(c.Card.id).limit(limit)).scalars())

    def pending_deposits(self, merchant_id: str) -> list[int]:
        """The merchant's deposits not yet seen, oldest first."""
        return list(self.batch.query(
            select(b.ExpectedDeposit.id).where(b.ExpectedDeposit.merchant_id == merchant_id,
                                               b.ExpectedDeposit.status == DepositStatus.pending)
            .order_by(b.ExpectedDeposit.id)).scalars())

    def open_claims(self, merchant_id: str) -> list[tuple[str, int]]:
        remaining = c.Card.paid_fen - c.Card.consumed_paid_fen
        rows = self.batch.query(
            select(c.Card.id, remaining)
            .where(c.Card.merchant_id == merchant_id, c.Card.status == CardStatus.active,
                   remaining > 0)
            .order_by(c.Card.id)).all()
        return [(str(card_id), int(claim)) for card_id, claim in rows]

    def unpaid_plan(self, merchant_id: str, limit: int) -> list[tuple[str, int]]:
        refunded = select(c.RefundInstruction.card_id).where(
            c.RefundInstruction.merchant_id == merchant_id,
            c.RefundInstruction.reason == RefundReason.closure)
        rows = self.batch.query(
            select(c.ClosurePayout.card_id, c.ClosurePayout.payout_fen)
            .where(c.ClosurePayout.merchant_id == merchant_id,
                   c.ClosurePayout.card_id.not_in(refunded))
            .order_by(c.ClosurePayout.card_id).limit(limit)).all()
        load_rows(self.batch, c.Card, [card_id for card_id, _ in rows])
        return [(str(card_id), int(payout)) for card_id, payout in rows]

    def closure_totals(self, merchant_id: str) -> ClosureTotals:
        batch = self.batch
        cards, claims, payouts = batch.query(
            select(func.count(), func.coalesce(func.sum(c.ClosurePayout.claim_fen), 0),
                   func.coalesce(func.sum(c.ClosurePayout.payout_fen), 0))
            .where(c.ClosurePayout.merchant_id == merchant_id)).one()
        available = batch.query(select(c.Closure.available_fen)
                                .where(c.Closure.merchant_id == merchant_id)).scalar_one()
        refund_ids = batch.query(
            select(c.RefundInstruction.id)
            .where(c.RefundInstruction.merchant_id == merchant_id,
                   c.RefundInstruction.reason == RefundReason.closure)
            .order_by(c.RefundInstruction.id)).scalars().all()
        return ClosureTotals(int(cards), int(claims), int(payouts), int(available),
                             [int(i) for i in refund_ids])

    # -- writes --------------------------------------------------------------------------
    def add_rule_set(self, view: Mapping[str, Any], rules: RuleSet) -> None:
        batch = self.batch
        batch.rows.insert(c.RuleSetVersion, view["id"], dict(view))
        key = (view["jurisdiction"], view["industry"])
        if batch.rows.get(LATEST_RULES, key) is None:
            batch.rows.remember(LATEST_RULES, key, {"id": view["id"], "rules": rules})
        else:
            batch.rows.update(LATEST_RULES, key, id=view["id"], rules=rules)

    def add_department_map(self, version: int, department_map: DepartmentMap, reason: str,
                           created_seq: int, created_key_id: int | None) -> None:
        departments.add_department_map(self.batch, version, department_map, reason=reason,
                                       created_seq=created_seq, created_key_id=created_key_id)

    def set_department(self, merchant_id: str, department: str) -> None:
        _update(self.batch, c.Merchant, merchant_id, department=department,
                department_pending=False)

    def add_merchant(self, view: Mapping[str, Any], accounts: Mapping[str, int]) -> None:
        batch, merchant_id = self.batch, view["id"]
        batch.rows.insert(c.Merchant, merchant_id, dict(view))
        for purpose, account_id in accounts.items():
            batch.rows.insert(c.MerchantAccount, (merchant_id, purpose), {
                "merchant_id": merchant_id, "purpose": purpose, "account_id": account_id})
        batch.rows.remember(c.MerchantAccount, merchant_id, dict(accounts))

    def register(self, merchant_id: str) -> Register:
        return register_of(_cached(self.batch, c.Merchant, merchant_id, "merchant"))

    def custody_account_of(self, merchant_id: str) -> str:
        return str(_cached(self.batch, c.Merchant, merchant_id, "merchant")["custody_account"])

    def amend(self, merchant_id: str, register: Register, custody_account: str,
              row: Mapping[str, Any]) -> None:
        _update(self.batch, c.Merchant, merchant_id, street=register.street,
                address=register.address, premises=register.premises,
                people=[p.view() for p in register.people], custody_account=custody_account)
        self.batch.rows.insert(c.MerchantAmendment, row["amended_seq"], dict(row))

    def set_merchant_status(self, merchant_id: str, status: MerchantStatus) -> None:
        _update(self.batch, c.Merchant, merchant_id, status=status.value)

    def set_tier(self, merchant_id: str, tier: Tier, hard_blocks: Sequence[str]) -> None:
        _update(self.batch, c.Merchant, merchant_id, tier=tier.value,
                hard_blocks={"blocks": sorted(hard_blocks)})

    def add_product(self, view: Mapping[str, Any]) -> None:
        self.batch.rows.insert(c.Product, view["id"], dict(view))

    def add_card(self, card: Card) -> None:
        money = card.money
        self.batch.rows.insert(c.Card, card.id, {
            "id": card.id, "merchant_id": card.merchant_id, "product_id": card.product_id,
            "rule_set_id": card.rule_set_id, "account_id": card.account_id,
            "consumer_id": card.consumer_id, "token_hash": card.token_hash,
            "named": card.named, "kind": money.kind.value, "paid_fen": money.paid_fen,
            "custody_fen": money.custody_fen, "total_units": money.total_units,
            "used_units": money.used_units, "consumed_paid_fen": money.consumed_paid_fen,
            "consumed_custody_fen": money.consumed_custody_fen, "status": card.status.value,
            "disputed": card.disputed, "sold_on": card.sold_on, "expires_on": card.expires_on,
            "sold_seq": card.sold_seq})

    def set_card_money(self, card_id: str, money: CardMoney) -> None:
        _update(self.batch, c.Card, card_id, used_units=money.used_units,
                consumed_paid_fen=money.consumed_paid_fen,
                consumed_custody_fen=money.consumed_custody_fen)

    def set_card_status(self, card_id: str, status: CardStatus) -> None:
        _update(self.batch, c.Card, card_id, status=status.value)

    def set_disputed(self, card_id: str, disputed: bool) -> None:
        _update(self.batch, c.Card, card_id, disputed=disputed)

    def add_consumption(self, consumption: Consumption) -> None:
        use = consumption.use
        self.batch.rows.insert(c.Consumption, consumption.id, {
            "id": consumption.id, "card_id": consumption.card_id,
            "merchant_id": consumption.merchant_id, "units": use.units,
            "paid_fen": use.paid_fen, "custody_fen": use.custody_fen,
            "status": consumption.status.value, "confirm_by": consumption.confirm_by,
            "confirmed_on": consumption.confirmed_on, "release_id": consumption.release_id,
            "created_seq": consumption.created_seq})

    def settle_consumption(self, consumption_id: int, status: ConsumptionStatus,
                           on: date | None) -> None:
        values: dict[str, Any] = {"status": status.value}
        if on is not None:
            values["confirmed_on"] = on
        _update(self.batch, c.Consumption, consumption_id, **values)

    def add_release(self, release: Release) -> None:
        self.batch.rows.insert(c.ReleaseInstruction, release.id, {
            "id": release.id, "merchant_id": release.merchant_id,
            "period_start": release.period_start, "period_end": release.period_end,
            "amount_fen": release.amount_fen, "holdback_fen": release.holdback_fen,
            "status": release.status.value, "end_to_end_id": release.end_to_end_id,
            "created_seq": release.created_seq, "resolved_seq": release.resolved_seq})

    def mark_released(self, consumption_ids: Sequence[int], release_id: int | None) -> None:
        load_rows(self.batch, c.Consumption, list(consumption_ids))
        for consumption_id in consumption_ids:
            self.batch.rows.update(c.Consumption, consumption_id, release_id=release_id)

    def add_refund(self, refund: Refund) -> None:
        self.batch.rows.insert(c.RefundInstruction, refund.id, {
            "id": refund.id, "merchant_id": refund.merchant_id, "card_id": refund.card_id,
            "reason": refund.reason.value, "claim_fen": refund.claim_fen,
            "amount_fen": refund.amount_fen, "merchant_due_fen": refund.merchant_due_fen,
            "status": refund.status.value, "end_to_end_id": refund.end_to_end_id,
            "created_seq": refund.created_seq, "resolved_seq": refund.resolved_seq})

    def resolve_instruction(self, instruction: Instruction, status: InstructionStatus,
                            resolved_seq: int) -> None:
        _update(self.batch, instruction_table(instruction), instruction.id,
                status=status.value, resolved_seq=resolved_seq)

    def answer_instruction(self, instruction: Instruction, answer: BankAnswer) -> None:
        _update(self.batch, instruction_table(instruction), instruction.id,
                bank_status=answer.value)

    def expect_deposit(self, sale_seq: int, merchant_id: str, card_id: str,
                       amount_fen: int, sold_on: date) -> None:
        self.batch.rows.insert(b.ExpectedDeposit, sale_seq, {
            "id": sale_seq, "merchant_id": merchant_id, "card_id": card_id,
            "reference": deposit_reference(sale_seq),
            "batch_reference": batch_reference(merchant_id, sold_on),
            "amount_fen": amount_fen, "open_fen": amount_fen,
            "expected_by": sold_on + timedelta(days=deposit_expected_days),
            "status": DepositStatus.pending.value, "cleared_line_id": None})

    def plan_closure(self, merchant_id: str, available_fen: int, payouts: Sequence[Payout],
                     planned_seq: int) -> None:
        """Straight to the database (COPY): a plan may hold a million cards, and it is written
        last, after every check of its command."""
        conn = self.batch.writing_directly()
        copy_text(conn, c.Closure.__tablename__, CLOSURE_COLUMNS,
                  f"{merchant_id}\t{available_fen}\t{planned_seq}\n")
        copy_text(conn, c.ClosurePayout.__tablename__, PAYOUT_COLUMNS, "".join([
            f"{p.card_id}\t{merchant_id}\t{p.claim_fen}\t{p.payout_fen}\t{planned_seq}\n"
            for p in payouts]))

    def confirm_deposits(self, deposit_ids: Sequence[int], amount_fen: int) -> None:
        batch = self.batch
        load_rows(batch, b.ExpectedDeposit, list(deposit_ids))
        left = amount_fen
        for deposit_id in deposit_ids:
            if left == 0:
                return
            row = _row(batch, b.ExpectedDeposit, deposit_id)
            taken = min(left, row["open_fen"])
            left -= taken
            open_fen = row["open_fen"] - taken
            batch.rows.update(b.ExpectedDeposit, deposit_id, open_fen=open_fen,
                              status=(DepositStatus.cleared if open_fen == 0
                                      else DepositStatus.pending).value)


# -- rows to records, and the caches -------------------------------------------------------


def instruction_table(instruction: Instruction) -> Any:
    return c.ReleaseInstruction if isinstance(instruction, Release) else c.RefundInstruction


def release_of(row: Mapping[str, Any]) -> Release:
    return Release(row["id"], row["merchant_id"], row["period_start"], row["period_end"],
                   row["amount_fen"], row["holdback_fen"], InstructionStatus(row["status"]),
                   BankAnswer(row.get("bank_status", BankAnswer.pending)), row["end_to_end_id"],
                   row["created_seq"], row["resolved_seq"])


def refund_of(row: Mapping[str, Any]) -> Refund:
    return Refund(row["id"], row["merchant_id"], row["card_id"], RefundReason(row["reason"]),
                  row["claim_fen"], row["amount_fen"], row["merchant_due_fen"],
                  InstructionStatus(row["status"]),
                  BankAnswer(row.get("bank_status", BankAnswer.pending)), row["end_to_end_id"],
                  row["created_seq"], row["resolved_seq"])


def _consumption(row: Mapping[str, Any]) -> Consumption:
    paid, custody = row["paid_fen"], row["custody_fen"]
    return Consumption(row["id"], row["card_id"], row["merchant_id"],
                       Use(row["units"], paid, custody, paid - custody),
                       ConsumptionStatus(row["status"]), row["confirm_by"],
                       row["confirmed_on"], row["release_id"], row["created_seq"])


def _cached(batch: Batch, table: Any, row_id: Any, what: str, lock: bool = True
            ) -> dict[str, Any]:
    row = batch.rows.get(table, row_id)
    if row is not None:
        return row
    query = select(table.__table__).where(table.id == row_id)
    found = batch.lookup(query.with_for_update() if lock else query).first()
    if found is None:
        raise NotFound(f"{what} {row_id} does not exist", field=f"{what}_id")
    return batch.rows.remember(table, row_id, dict(found._mapping))


def _row(batch: Batch, table: Any, row_id: Any) -> dict[str, Any]:
    row = batch.rows.get(table, row_id)
    require(row is not None, "the row was brought into the batch")
    assert row is not None
    return row


def _update(batch: Batch, table: Any, row_id: Any, **values: Any) -> None:
    _cached(batch, table, row_id, table.__tablename__)
    batch.rows.update(table, row_id, **values)


def merchant_accounts(batch: Batch, merchant_id: str) -> dict[str, int]:
    # A merchant's chart never changes once written: the writer keeps it (batch.state).
    known = batch.state.accounts_by_merchant
    accounts = known.get(merchant_id) or batch.rows.get(c.MerchantAccount, merchant_id)
    if accounts is None:
        accounts = dict(batch.lookup(
            select(c.MerchantAccount.purpose, c.MerchantAccount.account_id)
            .where(c.MerchantAccount.merchant_id == merchant_id)).all())
        known[merchant_id] = accounts
    return accounts


def merchant(batch: Batch, merchant_id: str) -> Merchant:
    row = _cached(batch, c.Merchant, merchant_id, "merchant")
    return Merchant(row["id"], row["name"], row["industry"], row["department"],
                    row["jurisdiction"], row["bank_id"], MerchantStatus(row["status"]),
                    Tier(row["tier"]), frozenset(row["hard_blocks"].get("blocks", [])),
                    merchant_accounts(batch, merchant_id), row["street"])


def card(batch: Batch, card_id: str) -> Card:
    row = _cached(batch, c.Card, card_id, "card")
    money = CardMoney(CardKind(row["kind"]), row["paid_fen"], row["custody_fen"],
                      row["total_units"], row["used_units"], row["consumed_paid_fen"],
                      row["consumed_custody_fen"])
    return Card(row["id"], row["merchant_id"], row["product_id"], row["rule_set_id"],
                row["account_id"], row["consumer_id"], bytes(row["token_hash"]), row["named"],
                CardStatus(row["status"]), row["disputed"], row["sold_on"], row["expires_on"],
                row["sold_seq"], money)


def load_rows(batch: Batch, table: Any, row_ids: list[Any], lock: bool = True) -> None:
    """Bring rows into the batch in one query (locked, unless they never change), those it
    does not hold yet."""
    missing = [i for i in row_ids if batch.rows.get(table, i) is None]
    if not missing:
        return
    query = select(table.__table__).where(table.id.in_(missing)).order_by(table.id)
    for row in batch.lookup(query.with_for_update() if lock else query):
        batch.rows.remember(table, row.id, dict(row._mapping))
