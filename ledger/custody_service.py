"""Custody use cases: each a command run inside one group commit (see ledger.db.writer).

Every command reads and checks first, then posts and journals, then writes custody state
last, so an expected refusal never leaves anything behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.auth import Principal, Role
from ledger.books import AccountKind, Posting, TransactionDraft
from ledger.custody import cards as card_rules
from ledger.custody.merchants import Filing, MerchantStatus, Tier
from ledger.custody.rules import parse_rule_set
from ledger.custody.settlement import period_of, prorate_payouts, release_split
from ledger.db import custody_store as store
from ledger.db import custody_tables as c
from ledger.db.batch import Batch, EntryRef
from ledger.db.trust_store import bank_registered
from ledger.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    Refused,
)

auto_confirm_consumptions_max = 10_000
closure_cards_max = 100_000
months_days_approx = 31


def post_entry(batch: Batch, kind: str, legs: Sequence[tuple[int, int]],
          details: Mapping[str, Any]) -> EntryRef:
    """Journal `kind`: as a balanced transaction of the non-zero legs, or as a bare event."""
    postings = tuple(Posting(account, amount, "CNY") for account, amount in legs if amount)
    if not postings:
        return batch.append(kind, details)
    return batch.post(TransactionDraft(postings, memo=kind), kind, details)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _end_to_end_id(prefix: str, entry: EntryRef) -> str:
    # Unique, at most 35 characters (ISO 20022 EndToEndId), traceable to its journal entry.
    return f"YF{prefix}{entry.seq:012d}"


def _require_merchant_access(principal: Principal, merchant_id: str, missing: NotFound
                             ) -> None:
    """The operator, or the merchant's own key. Another merchant is told what it would be
    told of a missing merchant or product (`missing`): it learns nothing of others' ids.
    Any other role (bank, regulator, consumer) may never do this."""
    if principal.role == Role.operator:
        return
    if principal.role != Role.merchant:
        raise Forbidden(f"a {principal.role.value} key cannot do this (needs: merchant, "
                        "operator)")
    if principal.merchant_id != merchant_id:
        raise missing


def _require_bank_or_operator(principal: Principal, merchant: store.MerchantRow,
                              missing: NotFound) -> None:
    """The operator, or the merchant's custodian bank. Another bank is told what it would be
    told of a missing instruction or merchant (`missing`): it learns nothing of others'."""
    if principal.role == Role.operator:
        return
    if principal.role == Role.bank and principal.bank_id == merchant.bank_id:
        return
    if principal.role == Role.bank:
        raise missing
    raise Forbidden("only the operator or the merchant's custodian bank can do this")


def _instruction(batch: Batch, table: Any, instruction_id: int, missing: NotFound
                 ) -> dict[str, Any]:
    try:
        return store.instruction(batch, table, instruction_id)
    except NotFound:
        raise missing from None


def _require_cash(batch: Batch, m: store.MerchantRow, amount_fen: int, what: str) -> None:
    """The bank pays only from what it has received: a clear refusal, not a bare overdraft."""
    cash = store.balance(batch, m.accounts["custody_cash"])
    if amount_fen > cash:
        raise InsufficientFunds(
            f"custody holds {cash} fen at the bank, not the {amount_fen} fen this {what} "
            f"pays out: the money in transit must be confirmed first", field="outcome")


# -- rules and filing --------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRuleSet:
    jurisdiction: str
    industry: str
    rules: Mapping[str, Any]

    def run(self, batch: Batch) -> dict[str, Any]:
        version, previous = store.next_rule_version(batch, self.jurisdiction, self.industry)
        base = parse_rule_set(previous) if previous is not None else None
        rules = parse_rule_set(self.rules, base).as_dict()
        rule_set_id = batch.next_id(c.RuleSetVersion)
        view = {"id": rule_set_id, "jurisdiction": self.jurisdiction, "industry": self.industry,
                "version": version, "rules": rules}
        entry = batch.append("rule_set.created", view)
        store.note_new_rule_set(batch, {**view, "created_seq": entry.seq},
                                parse_rule_set(rules))
        return {**view, "journal_seq": entry.seq}


@dataclass(frozen=True)
class FileMerchant:
    filing: Filing

    def run(self, batch: Batch) -> dict[str, Any]:
        f = self.filing
        if not bank_registered(batch, f.bank_id):
            raise InvalidInput(f"bank {f.bank_id} is not registered (POST /v1/banks)",
                               field="bank_id")
        taken = store.credit_code_taken(batch, f.credit_code)
        if taken is not None:
            raise Conflict(f"credit code already filed as merchant {taken}", field="credit_code")
        rule_set_id, _ = store.latest_rule_set(batch, f.jurisdiction, f.industry)
        merchant_id = _new_id("m")
        seq = batch.seq + 1  # the filing entry's number, which the accounts name
        accounts = {purpose: store.open_account(
            batch, seq, kind, f"{f.name} {purpose}", merchant_id,
            f.bank_id if purpose in store.BANK_HELD else None)
            for purpose, kind in store.CHART.items()}
        view = {"id": merchant_id, "name": f.name, "credit_code": f.credit_code,
                "industry": f.industry, "department": f.department,
                "department_pending": f.department_pending, "jurisdiction": f.jurisdiction,
                "bank_id": f.bank_id, "custody_account": f.custody_account,
                "rule_set_id": rule_set_id, "status": MerchantStatus.active.value,
                "tier": Tier.blue.value, "accounts": accounts}
        entry = batch.append("merchant.filed", view)
        row = {k: v for k, v in view.items() if k != "accounts"}
        store.file_merchant(batch, {**row, "hard_blocks": {"blocks": []}, "complaint_count": 0,
                                    "filed_seq": entry.seq}, accounts)
        return {**view, "journal_seq": entry.seq}


@dataclass(frozen=True)
class SetMerchantStatus:
    """Freeze (sales, consumption and releases stop at once) or unfreeze a merchant."""

    merchant_id: str
    frozen: bool
    reason: str

    def run(self, batch: Batch) -> dict[str, Any]:
        m = store.merchant(batch, self.merchant_id)
        if m.status == MerchantStatus.closed:
            raise Refused("the merchant is closed")
        if (m.status == MerchantStatus.frozen) == self.frozen:
            raise Conflict(f"the merchant is already {m.status.value}", field="merchant_id")
        voided = _void_pending_releases(batch, m) if self.frozen else []
        status = MerchantStatus.frozen if self.frozen else MerchantStatus.active
        kind = "merchant.frozen" if self.frozen else "merchant.unfrozen"
        entry = batch.append(kind, {"merchant_id": m.id, "reason": self.reason,
                                    "voided_releases": voided})
        store.update_row(batch, c.Merchant, m.id, status=status.value)
        return {"merchant_id": m.id, "status": status.value, "journal_seq": entry.seq,
                "voided_releases": voided}


@dataclass(frozen=True)
class SetTier:
    merchant_id: str
    tier: Tier
    reasons: Sequence[str]
    hard_blocks: Sequence[str]

    def run(self, batch: Batch) -> dict[str, Any]:
        m = store.merchant(batch, self.merchant_id)
        view = {"merchant_id": m.id, "tier": self.tier.value, "previous_tier": m.tier.value,
                "reasons": list(self.reasons), "hard_blocks": sorted(self.hard_blocks)}
        entry = batch.append("merchant.tier_changed", view)
        store.update_row(batch, c.Merchant, m.id, tier=self.tier.value,
                         hard_blocks={"blocks": sorted(self.hard_blocks)})
        return {**view, "journal_seq": entry.seq}


# -- products and sales ------------------------------------------------------------------


@dataclass(frozen=True)
class CreateProduct:
    principal: Principal
    merchant_id: str
    product: card_rules.Product

    def run(self, batch: Batch) -> dict[str, Any]:
        _require_merchant_access(self.principal, self.merchant_id, NotFound(
            f"merchant {self.merchant_id} does not exist", field="merchant_id"))
        store.merchant(batch, self.merchant_id)
        p = self.product
        view = {"id": _new_id("p"), "merchant_id": self.merchant_id, "kind": p.kind.value,
                "name": p.name, "price_fen": p.price_fen, "sessions": p.sessions,
                "bonus_units": p.bonus_units, "validity_months": p.validity_months}
        entry = batch.append("product.created", view)
        store.insert_row(batch, c.Product, {**view, "created_seq": entry.seq})
        return {**view, "journal_seq": entry.seq}


@dataclass(frozen=True)
class SellCard:
    principal: Principal
    product_id: str
    consumer_id: str
    named: bool
    today: date
    # Reads the card's status and receipt, nothing else: the consumer acts with their own key.
    receipt_code: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def prefetch(self) -> tuple[Any, list[str]]:
        return store.prefetch_products, [self.product_id]

    def run(self, batch: Batch) -> dict[str, Any]:
        merchant_id, product = store.product(batch, self.product_id)
        _require_merchant_access(self.principal, merchant_id, NotFound(
            f"product {self.product_id} does not exist", field="product_id"))
        m = store.merchant(batch, merchant_id)
        rule_set_id, rules = store.latest_rule_set(batch, m.jurisdiction, m.industry)
        card_rules.check_sale(m.state, product, rules, self.named)
        custody, direct = card_rules.custody_split(product.price_fen, rules.custody_ratio_bp)
        card_id = _new_id("card")
        account = store.open_account(batch, batch.seq + 1, AccountKind.liability,
                                     f"card {card_id}", m.id, None)
        expires_on = _add_months(self.today, product.validity_months)
        details = {"card_id": card_id, "merchant_id": m.id, "product_id": self.product_id,
                   "consumer_id": self.consumer_id, "named": self.named, "kind": product.kind.value,
                   "paid_fen": product.price_fen, "custody_fen": custody, "direct_fen": direct,
                   "total_units": product.total_units, "rule_set_id": rule_set_id,
                   "card_account_id": account, "sold_on": self.today.isoformat(),
                   "expires_on": expires_on.isoformat()}
        entry = post_entry(batch, "card.sold", [(m.accounts["custody_in_transit"], custody),
                                           (m.accounts["direct_share"], direct),
                                           (account, -product.price_fen)], details)
        store.insert_row(batch, c.Card, {
            "id": card_id, "merchant_id": m.id, "product_id": self.product_id,
            "rule_set_id": rule_set_id, "account_id": account, "consumer_id": self.consumer_id,
            "token_hash": card_rules.token_hash(self.receipt_code), "named": self.named,
            "kind": product.kind.value, "paid_fen": product.price_fen, "custody_fen": custody,
            "total_units": product.total_units, "used_units": 0, "consumed_paid_fen": 0,
            "consumed_custody_fen": 0, "status": "active", "disputed": False,
            "sold_on": self.today, "expires_on": expires_on, "sold_seq": entry.seq})
        if custody:
            store.expect_deposit(batch, entry.seq, m.id, card_id, custody, self.today)
        return {**details, "receipt_code": self.receipt_code, "journal_seq": entry.seq,
                "entry_hash": entry.entry_hash.hex()}


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("a month has at least 28 days")


def _card_for(batch: Batch, principal: Principal, card_id: str) -> store.CardRow:
    """The card, if this principal may act on it: the operator on any, a merchant on its own
    cards, a consumer on the cards sold to them. To anyone else an existing card and a
    missing one answer alike."""
    try:
        card = store.card(batch, card_id)
    except NotFound:
        card = None
    if card is None or not _may_act_on(principal, card):
        raise NotFound(f"card {card_id} does not exist", field="card_id")
    return card


def _may_act_on(principal: Principal, card: store.CardRow) -> bool:
    if principal.role == Role.operator:
        return True
    if principal.role == Role.merchant:
        return principal.merchant_id == card.merchant_id
    if principal.role == Role.consumer:
        return principal.consumer_id == card.consumer_id
    return False


# -- consumption ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Consume:
    principal: Principal
    card_id: str
    units: int
    today: date
    unit: str | None = None  # the request's field: "sessions" or "amount_fen"

    def prefetch(self) -> tuple[Any, list[str]]:
        return store.prefetch_cards, [self.card_id]

    def run(self, batch: Batch) -> dict[str, Any]:
        self.principal.require_role(Role.merchant, Role.operator)
        card = _card_for(batch, self.principal, self.card_id)
        if self.unit is not None:
            wanted = "sessions" if card.money.kind == card_rules.CardKind.sessions \
                else "amount_fen"
            if self.unit != wanted:
                raise InvalidInput(f"a {card.money.kind.value} card is used in {wanted}",
                                   field=self.unit)
        m = store.merchant(batch, card.merchant_id)
        if m.status != MerchantStatus.active:
            raise Refused(f"the merchant is {m.status.value}: no consumption")
        if card.status != "active":
            raise Refused(f"the card is {card.status}", field="card_id")
        if self.today > card.expires_on:
            raise Refused(f"the card expired on {card.expires_on.isoformat()}", field="card_id")
        used = card_rules.consume(card.money, self.units, self.unit or "units")
        rules = store.rule_set(batch, card.rule_set_id)
        pending = rules.confirmation_required
        confirm_by = card_rules.working_days_after(
            self.today, rules.confirmation_silence_working_days) if pending else self.today
        earned = m.accounts["earned_pending" if pending else "earned"]
        consumption_id = batch.next_id(c.Consumption)
        details = {"consumption_id": consumption_id, "card_id": card.id, "merchant_id": m.id,
                   "units": used.units, "paid_fen": used.paid_fen,
                   "custody_fen": used.custody_fen, "direct_fen": used.direct_fen,
                   "status": "pending" if pending else "confirmed",
                   "confirm_by": confirm_by.isoformat()}
        entry = post_entry(batch, "card.consumed", [(card.account_id, used.paid_fen),
                                               (earned, -used.custody_fen),
                                               (m.accounts["direct_share"], -used.direct_fen)],
                      details)
        store.insert_row(batch, c.Consumption, {
            "id": consumption_id, "card_id": card.id, "merchant_id": m.id, "units": used.units,
            "paid_fen": used.paid_fen, "custody_fen": used.custody_fen,
            "status": details["status"], "confirm_by": confirm_by,
            "confirmed_on": None if pending else self.today, "release_id": None,
            "created_seq": entry.seq})
        money = card.money
        store.update_row(batch, c.Card, card.id, used_units=money.used_units + used.units,
                         consumed_paid_fen=money.consumed_paid_fen + used.paid_fen,
                         consumed_custody_fen=money.consumed_custody_fen + used.custody_fen)
        remaining = money.remaining_units - used.units
        return {**details, "remaining_units": remaining, "journal_seq": entry.seq}


@dataclass(frozen=True)
class SettleConsumption:
    """The cardholder, with their own consumer key, confirms or rejects a consumption (the
    merchant, who recorded it, never can); silence confirms it (AutoConfirm)."""

    principal: Principal
    consumption_id: int
    confirm: bool
    today: date

    def run(self, batch: Batch) -> dict[str, Any]:
        consumer_id = self.principal.require_consumer()
        row, card = _consumption_for(batch, consumer_id, self.consumption_id)
        if row["status"] != "pending":
            raise Conflict(f"the consumption is already {row['status']}", field="consumption_id")
        if not self.confirm and card.status != "active":
            # The value would go back onto a card that can no longer be used or refunded.
            raise Refused(f"the card is {card.status}: the consumption can only be confirmed",
                          field="consumption_id")
        return _settle_consumption(batch, row, card, self.confirm, self.today, "consumer")


def _consumption_for(batch: Batch, consumer_id: str, consumption_id: int
                     ) -> tuple[dict[str, Any], store.CardRow]:
    """The consumption and its card, if the card is this consumer's; to anyone else an
    existing consumption and a missing one answer alike (ids are sequential)."""
    try:
        row = store.consumption(batch, consumption_id)
        card = store.card(batch, row["card_id"])
    except NotFound:
        card = None
    if card is None or card.consumer_id != consumer_id:
        raise NotFound(f"consumption {consumption_id} does not exist", field="consumption_id")
    return row, card


def _settle_consumption(batch: Batch, row: Any, card: store.CardRow, confirm: bool,
                        today: date, by: str) -> dict[str, Any]:
    m = store.merchant(batch, row["merchant_id"])
    direct = row["paid_fen"] - row["custody_fen"]
    details = {"consumption_id": row["id"], "card_id": card.id, "merchant_id": m.id, "by": by}
    if confirm:
        legs = [(m.accounts["earned_pending"], row["custody_fen"]),
                (m.accounts["earned"], -row["custody_fen"])]
        entry = post_entry(batch, "consumption.confirmed", legs, details)
        store.update_row(batch, c.Consumption, row["id"], status="confirmed", confirmed_on=today)
        return {**details, "status": "confirmed", "journal_seq": entry.seq}
    legs = [(m.accounts["earned_pending"], row["custody_fen"]),
            (m.accounts["direct_share"], direct), (card.account_id, -row["paid_fen"])]
    entry = post_entry(batch, "consumption.rejected", legs, details)
    store.update_row(batch, c.Consumption, row["id"], status="rejected")
    money = card.money
    store.update_row(batch, c.Card, card.id, used_units=money.used_units - row["units"],
                     consumed_paid_fen=money.consumed_paid_fen - row["paid_fen"],
                     consumed_custody_fen=money.consumed_custody_fen - row["custody_fen"])
    return {**details, "status": "rejected", "journal_seq": entry.seq}


@dataclass(frozen=True)
class AutoConfirm:
    """Silence past the rule set's working days counts as confirmation."""

    as_of: date

    def run(self, batch: Batch) -> dict[str, Any]:
        confirmed = []
        for consumption_id in store.due_consumptions(batch, self.as_of,
                                                     auto_confirm_consumptions_max):
            row = store.consumption(batch, consumption_id)
            card = store.card(batch, row["card_id"])
            _settle_consumption(batch, row, card, True, self.as_of, "silence")
            confirmed.append(consumption_id)
        return {"as_of": self.as_of.isoformat(), "confirmed": confirmed}


# -- releases (周期拨付) and deposits -------------------------------------------------------


@dataclass(frozen=True)
class RunReleases:
    """Per active merchant: confirmed earned money of the period, less the reserve, becomes a
    pending release instruction to the bank. A period already released gives nothing more."""

    as_of: date
    merchant_id: str | None = None

    def run(self, batch: Batch) -> dict[str, Any]:
        batch.sync()  # what each period releases is found by query
        ids = [self.merchant_id] if self.merchant_id else store.active_merchant_ids(batch)
        created = []
        for merchant_id in ids:
            release = _release_for(batch, store.merchant(batch, merchant_id), self.as_of)
            if release is not None:
                created.append(release)
        return {"as_of": self.as_of.isoformat(), "releases": created}


def _release_for(batch: Batch, m: store.MerchantRow, as_of: date) -> dict[str, Any] | None:
    if m.status != MerchantStatus.active:
        return None
    _, rules = store.latest_rule_set(batch, m.jurisdiction, m.industry)
    start, end = period_of(as_of, rules.release_cadence_days)
    if store.release_exists(batch, m.id, end):
        return None
    earned, consumption_ids = store.releasable(batch, m.id, end)
    if earned == 0:
        return None
    amount, holdback = release_split(earned, rules.reserve_share_bp)
    release_id = batch.next_id(c.ReleaseInstruction)
    details = {"release_id": release_id, "merchant_id": m.id, "period_start": start.isoformat(),
               "period_end": end.isoformat(), "amount_fen": amount, "holdback_fen": holdback,
               "consumptions": len(consumption_ids), "bank_id": m.bank_id}
    entry = post_entry(batch, "release.instructed", [(m.accounts["earned"], earned),
                                                (m.accounts["release_pending"], -amount),
                                                (m.accounts["reserve"], -holdback)], details)
    e2e = _end_to_end_id("R", entry)
    store.insert_row(batch, c.ReleaseInstruction, {
        "id": release_id, "merchant_id": m.id, "period_start": start, "period_end": end,
        "amount_fen": amount, "holdback_fen": holdback, "status": "pending",
        "end_to_end_id": e2e, "created_seq": entry.seq, "resolved_seq": None})
    store.mark_released(batch, consumption_ids, release_id)
    return {**details, "end_to_end_id": e2e, "journal_seq": entry.seq}


def _void_pending_releases(batch: Batch, m: store.MerchantRow) -> list[int]:
    voided = store.pending_releases(batch, m.id)
    for release_id in voided:
        row = store.instruction(batch, c.ReleaseInstruction, release_id)
        _fail_release(batch, m, row, "merchant frozen")
    return voided


def _fail_release(batch: Batch, m: store.MerchantRow, row: Any, reason: str) -> EntryRef:
    legs = [(m.accounts["release_pending"], row["amount_fen"]),
            (m.accounts["reserve"], row["holdback_fen"]),
            (m.accounts["earned"], -(row["amount_fen"] + row["holdback_fen"]))]
    entry = post_entry(batch, "release.failed", legs, {"release_id": row["id"], "merchant_id": m.id,
                                                  "reason": reason})
    store.update_row(batch, c.ReleaseInstruction, row["id"], status="failed",
                     resolved_seq=entry.seq)
    store.mark_released(batch, store.released_consumptions(batch, row["id"]), None)
    return entry


@dataclass(frozen=True)
class ResolveRelease:
    """The bank paid the release (settle: it leaves custody) or could not (fail: void)."""

    principal: Principal
    release_id: int
    settled: bool
    reason: str = ""

    def run(self, batch: Batch) -> dict[str, Any]:
        self.principal.require_role(Role.operator, Role.bank)
        batch.sync()  # a failed release frees its consumptions: found by query
        missing = NotFound(f"release {self.release_id} does not exist", field="release_id")
        row = _instruction(batch, c.ReleaseInstruction, self.release_id, missing)
        m = store.merchant(batch, row["merchant_id"])
        _require_bank_or_operator(self.principal, m, missing)
        if row["status"] != "pending":
            raise Conflict(f"the release is already {row['status']}", field="release_id")
        return resolve_release(batch, m, row, self.settled, self.reason)


def resolve_release(batch: Batch, m: store.MerchantRow, row: dict[str, Any], settled: bool,
                    reason: str, by: str = "call") -> dict[str, Any]:
    """Settle (the money leaves custody) or fail (back to earned) a pending release."""
    if not settled:
        entry = _fail_release(batch, m, row, reason or "payment failed")
        return {"release_id": row["id"], "status": "failed", "journal_seq": entry.seq}
    _require_cash(batch, m, row["amount_fen"], "release")
    legs = [(m.accounts["release_pending"], row["amount_fen"]),
            (m.accounts["custody_cash"], -row["amount_fen"])]
    entry = post_entry(batch, "release.settled", legs,
                       {"release_id": row["id"], "merchant_id": m.id, "by": by,
                        "end_to_end_id": row["end_to_end_id"]})
    store.update_row(batch, c.ReleaseInstruction, row["id"], status="settled",
                     resolved_seq=entry.seq)
    return {"release_id": row["id"], "status": "settled", "journal_seq": entry.seq}


@dataclass(frozen=True)
class ConfirmDeposit:
    """The bank saw card money arrive: in transit becomes custody cash. (Statement matching
    will do this automatically; until then the bank or the operator says so.)"""

    principal: Principal
    merchant_id: str
    amount_fen: int

    def run(self, batch: Batch) -> dict[str, Any]:
        self.principal.require_role(Role.operator, Role.bank)
        pending = store.pending_deposits(batch, self.merchant_id)  # a query: first
        m = store.merchant(batch, self.merchant_id)
        _require_bank_or_operator(self.principal, m, NotFound(
            f"merchant {self.merchant_id} does not exist", field="merchant_id"))
        in_transit = store.balance(batch, m.accounts["custody_in_transit"])
        if self.amount_fen > in_transit:
            raise Refused(f"only {in_transit} fen are in transit", field="amount_fen")
        store.confirm_deposits_fifo(batch, pending, self.amount_fen)
        legs = [(m.accounts["custody_cash"], self.amount_fen),
                (m.accounts["custody_in_transit"], -self.amount_fen)]
        entry = post_entry(batch, "deposit.confirmed", legs,
                           {"merchant_id": m.id, "amount_fen": self.amount_fen})
        return {"merchant_id": m.id, "amount_fen": self.amount_fen, "journal_seq": entry.seq}


# -- refunds, disputes, closure ------------------------------------------------------------


@dataclass(frozen=True)
class RefundCard:
    """Cooling-off (everything paid back, bonus void) or a balance refund (bonus prorated)."""

    principal: Principal
    card_id: str
    reason: str
    today: date

    def prefetch(self) -> tuple[Any, list[str]]:
        return store.prefetch_cards, [self.card_id]

    def run(self, batch: Batch) -> dict[str, Any]:
        if self.reason not in ("cooling_off", "balance"):
            raise InvalidInput("must be cooling_off or balance", field="reason")
        self.principal.require_role(Role.merchant, Role.operator, Role.consumer)
        card = _card_for(batch, self.principal, self.card_id)
        if card.status != "active":
            raise Refused(f"the card is {card.status}", field="card_id")
        if self.reason == "cooling_off":
            rules = store.rule_set(batch, card.rule_set_id)
            card_rules.check_cooling_off(card.money, card.sold_on, self.today,
                                         rules.cooling_off_days)
        return _refund(batch, card, self.reason)


def _refund(batch: Batch, card: store.CardRow, reason: str,
            payout_fen: int | None = None) -> dict[str, Any]:
    """Turn the card's remaining paid money into a refund instruction (custody part) and a
    claim on the merchant (the part it took directly, or what custody cannot cover)."""
    m = store.merchant(batch, card.merchant_id)
    refund = card_rules.refund_remaining(card.money)
    claim = refund.paid_fen
    if claim == 0:
        raise Refused("nothing is left on the card to refund", field="card_id")
    custody = refund.custody_fen if payout_fen is None else payout_fen
    due = claim - custody
    refund_id = batch.next_id(c.RefundInstruction)
    details = {"refund_id": refund_id, "card_id": card.id, "merchant_id": m.id,
               "reason": reason, "claim_fen": claim, "amount_fen": custody,
               "merchant_due_fen": due, "consumer_id": card.consumer_id}
    entry = post_entry(batch, "refund.instructed", [(card.account_id, claim),
                                               (m.accounts["refunds_payable"], -custody),
                                               (m.accounts["merchant_refund_due"], -due)],
                  details)
    e2e = _end_to_end_id("F", entry)
    store.insert_row(batch, c.RefundInstruction, {
        "id": refund_id, "merchant_id": m.id, "card_id": card.id, "reason": reason,
        "claim_fen": claim, "amount_fen": custody, "merchant_due_fen": due,
        "status": "pending", "end_to_end_id": e2e, "created_seq": entry.seq,
        "resolved_seq": None})
    store.update_row(batch, c.Card, card.id, status="refund_pending")
    return {**details, "end_to_end_id": e2e, "journal_seq": entry.seq}


@dataclass(frozen=True)
class ResolveRefund:
    principal: Principal
    refund_id: int
    settled: bool
    reason: str = ""

    def run(self, batch: Batch) -> dict[str, Any]:
        self.principal.require_role(Role.operator, Role.bank)
        missing = NotFound(f"refund {self.refund_id} does not exist", field="refund_id")
        row = _instruction(batch, c.RefundInstruction, self.refund_id, missing)
        m = store.merchant(batch, row["merchant_id"])
        _require_bank_or_operator(self.principal, m, missing)
        if row["status"] != "pending":
            raise Conflict(f"the refund is already {row['status']}", field="refund_id")
        return resolve_refund(batch, m, row, self.settled, self.reason)


def resolve_refund(batch: Batch, m: store.MerchantRow, row: dict[str, Any], settled: bool,
                   reason: str, by: str = "call") -> dict[str, Any]:
    """Settle (paid out of custody) or fail (the claim goes back onto the card) a refund."""
    card = store.card(batch, row["card_id"])
    details = {"refund_id": row["id"], "card_id": card.id, "merchant_id": m.id, "by": by}
    if settled:
        _require_cash(batch, m, row["amount_fen"], "refund")
        entry = post_entry(batch, "refund.settled",
                      [(m.accounts["refunds_payable"], row["amount_fen"]),
                       (m.accounts["custody_cash"], -row["amount_fen"])], details)
        card_status = "refunded"
    else:
        legs = [(m.accounts["refunds_payable"], row["amount_fen"]),
                (m.accounts["merchant_refund_due"], row["merchant_due_fen"]),
                (card.account_id, -row["claim_fen"])]
        entry = post_entry(batch, "refund.failed", legs, {**details, "reason": reason})
        card_status = "active" if m.status != MerchantStatus.closed else "closed"
    status = "settled" if settled else "failed"
    store.update_row(batch, c.RefundInstruction, row["id"], status=status,
                     resolved_seq=entry.seq)
    store.update_row(batch, c.Card, card.id, status=card_status)
    return {**details, "status": status, "journal_seq": entry.seq}


@dataclass(frozen=True)
class DisputeCard:
    """Open (the cardholder's consumer key, or the operator) or resolve (the operator) a
    dispute. While open, the card's earned money is held back from release."""

    principal: Principal
    card_id: str
    open: bool
    outcome: str = ""

    def run(self, batch: Batch) -> dict[str, Any]:
        if self.open:
            self.principal.require_role(Role.operator, Role.consumer)
        else:
            self.principal.require_role(Role.operator)
        card = _card_for(batch, self.principal, self.card_id)
        if card.disputed == self.open:
            state = "already disputed" if self.open else "not disputed"
            raise Conflict(f"the card is {state}", field="card_id")
        if not self.open and self.outcome not in ("merchant", "consumer"):
            raise InvalidInput("must be merchant or consumer", field="outcome")
        kind = "card.disputed" if self.open else "card.dispute_resolved"
        entry = batch.append(kind, {"card_id": card.id, "merchant_id": card.merchant_id,
                                    "outcome": self.outcome or None})
        store.update_row(batch, c.Card, card.id, disputed=self.open)
        result = {"card_id": card.id, "disputed": self.open, "journal_seq": entry.seq}
        # For the consumer: what is left on the card comes back (if anything is left).
        if self.outcome == "consumer" and card.status == "active" and \
                card.money.remaining_paid_fen > 0:
            result["refund"] = _refund(batch, card, "dispute")
        return result


@dataclass(frozen=True)
class CloseMerchant:
    """Run-away (关门跑路): every cardholder's remaining paid money is claimed; custody pays
    the claims, pro rata by largest remainder when it falls short."""

    merchant_id: str

    def run(self, batch: Batch) -> dict[str, Any]:
        m = store.merchant(batch, self.merchant_id)
        if m.status != MerchantStatus.frozen:
            raise Refused("freeze the merchant before closing it", field="merchant_id")
        cards = [store.card(batch, card_id)
                 for card_id in store.open_cards(batch, m.id, closure_cards_max)]
        claims = [(card.id, card.money.remaining_paid_fen) for card in cards]
        available = max(0, sum(store.balance(batch, m.accounts[p])
                               for p in ("custody_cash", "custody_in_transit"))
                        - store.balance(batch, m.accounts["refunds_payable"])
                        - store.balance(batch, m.accounts["release_pending"]))
        payouts = prorate_payouts([cl for cl in claims if cl[1] > 0], available)
        by_card = {card.id: card for card in cards}
        refunds = [_refund(batch, by_card[p.card_id], "closure", p.payout_fen)["refund_id"]
                   for p in payouts]
        summary = {"merchant_id": m.id, "cards": len(payouts), "available_fen": available,
                   "claims_fen": sum(p.claim_fen for p in payouts),
                   "payout_fen": sum(p.payout_fen for p in payouts),
                   "shortfall_fen": sum(p.shortfall_fen for p in payouts), "refunds": refunds}
        entry = batch.append("merchant.closed", summary)
        store.update_row(batch, c.Merchant, m.id, status=MerchantStatus.closed.value)
        for card in cards:
            if card.money.remaining_paid_fen == 0:
                store.update_row(batch, c.Card, card.id, status="closed")
        return {**summary, "journal_seq": entry.seq}
