"""A stateful property test of the custody flows, through the service layer on PostgreSQL.

Hypothesis drives random sequences of filings, products, sales, consumptions, confirmations,
deposits, releases, refunds, disputes, freezes and closures. A model written from the rules
(not from the code) predicts every answer to the fen, and every refusal. After every step
the books are checked: the custody identity and the balance sheet per merchant, nothing
negative, every card's money accounted for, nothing released for a frozen or closed
merchant, the journal's hash chain and the cached balances.
"""

from __future__ import annotations

import calendar
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, text

from api.runtime import run_command
from ledger.auth import Principal, Role
from ledger.commands import Command
from ledger.custody.cards import consumer_pseudonym, parse_product
from ledger.custody.merchants import Tier, parse_filing
from ledger.errors import Conflict, InsufficientFunds, LedgerError, Refused
from ledger.flows.closure import CloseMerchant, FinishClosure, close_merchant
from ledger.flows.consumption import AutoConfirm, ConfirmConsumption, Consume, RejectConsumption
from ledger.flows.filing import (
    FileMerchant,
    FreezeMerchant,
    SetTier,
    UnfreezeMerchant,
)
from ledger.flows.refunds import (
    FailRefund,
    OpenDispute,
    RefundCard,
    ResolveDispute,
    SettleRefund,
)
from ledger.flows.releases import ConfirmDeposit, FailRelease, RunReleases, SettleRelease
from ledger.flows.sales import CreateProduct, SellCard
from tests.support.custody import (
    card_balances,
    check_custody_identity,
    check_journal,
    credit_code,
    custodied,
    largest_remainder,
)
from tests.support.db import register_bank

FIRST_DAY = date(2026, 3, 2)
BANK = "ICBC-BJ"
OPERATOR = Principal(0, Role.operator)
BANK_KEY = Principal(0, Role.bank, bank_id=BANK)
PSEUDONYM_KEY = b"stateful-test"
# The shipped supervision rules' controls of a yellow merchant (ledger/supervision/shipped).
YELLOW_DAILY_SALES_FEN_MAX = 2_000_000
YELLOW_RESERVE_SHARE_BP = 3_000
EPOCH_MONDAY = date(2024, 1, 1)


@dataclass(frozen=True)
class Rules:
    """The shipped Beijing rules (DOMAIN.md), written down again for the model."""

    ratio_bp: int
    named_max: int
    anonymous_max: int
    sessions_max: int
    months_max: int
    confirmation: bool
    cooling_off_days: int = 7
    silence_working_days: int = 15
    cadence_days: int = 7
    reserve_bp: int = 1_000


COMMERCE = Rules(4_000, 500_000, 100_000, 100_000, 1_200, False)
TRAINING = Rules(10_000, 500_000, 100_000, 60, 3, True)
INDUSTRIES = {"餐饮": COMMERCE, "美容美发": COMMERCE, "体育健身": TRAINING,
              "学科类培训": TRAINING}
PURPOSES = ("custody_cash", "custody_in_transit", "direct_share", "earned_pending", "earned",
            "reserve", "release_pending", "refunds_payable", "merchant_refund_due")


# -- the model -----------------------------------------------------------------------------


@dataclass
class MMerchant:
    id: str
    rules: Rules
    status: str = "active"
    tier: str = "blue"
    hard_blocks: tuple[str, ...] = ()
    books: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PURPOSES, 0))
    deposits: int = 0
    releases_when_stopped: int | None = None  # release rows when frozen or closed


@dataclass
class MProduct:
    id: str
    merchant_id: str
    kind: str
    price: int
    sessions: int
    bonus: int
    months: int


@dataclass
class MCard:
    id: str
    merchant_id: str
    kind: str
    paid: int
    custody: int
    total_units: int
    holder: Principal  # the cardholder's own consumer key
    sold_on: date
    expires_on: date
    rules: Rules
    used: int = 0
    consumed_paid: int = 0
    consumed_custody: int = 0
    balance: int = 0
    status: str = "active"
    disputed: bool = False


@dataclass
class MConsumption:
    id: int
    card_id: str
    merchant_id: str
    units: int
    paid: int
    custody: int
    status: str
    confirm_by: date
    confirmed_on: date | None
    release_id: int | None = None


@dataclass
class MRelease:
    id: int
    merchant_id: str
    period_end: date
    amount: int
    holdback: int
    consumptions: list[int]
    status: str = "pending"


@dataclass
class MRefund:
    id: int
    merchant_id: str
    card_id: str
    claim: int
    amount: int
    due: int
    status: str = "pending"


def holdback_of(earned: int, reserve_bp: int) -> int:
    """The reserve held back: largest remainder of two parts, ties to the released part."""
    exact_times = earned * reserve_bp
    floor, remainder = divmod(exact_times, 10_000)
    return floor + (1 if remainder > 5_000 else 0)


def paid_after(card: MCard, used: int) -> int:
    if used == card.total_units:
        return card.paid
    if card.kind == "sessions":
        return used * (card.paid // card.total_units)
    return used * card.paid // card.total_units


def custody_after(card: MCard, paid: int) -> int:
    return card.custody if paid == card.paid else paid * card.custody // card.paid


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def working_days_after(day: date, count: int) -> date:
    while count:
        day += timedelta(days=1)
        count -= day.weekday() < 5
    return day


def period_end(as_of: date, cadence_days: int) -> date:
    return EPOCH_MONDAY + timedelta(days=(as_of - EPOCH_MONDAY).days // cadence_days
                                    * cadence_days)


_codes = itertools.count(1)


# -- the machine ---------------------------------------------------------------------------


class CustodyMachine(RuleBasedStateMachine):
    engine: ClassVar[Engine]
    verified: ClassVar[dict[str, Any]] = {"seq": 0, "hash": None}

    def __init__(self) -> None:
        super().__init__()
        self.today = FIRST_DAY
        self.merchants: dict[str, MMerchant] = {}
        self.products: list[MProduct] = []
        self.cards: dict[str, MCard] = {}
        self.consumptions: dict[int, MConsumption] = {}
        self.releases: dict[int, MRelease] = {}
        self.refunds: dict[int, MRefund] = {}
        self.phones = 0
        self.steps = 0

    # -- running commands ------------------------------------------------------------------
    def run(self, command: object) -> dict[str, Any]:
        body = run_command(self.engine, command, 200)
        event(f"{type(command).__name__}: done")
        return body

    def head(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT seq FROM chain_head")).scalar_one())

    def refused(self, command: object, error: type[LedgerError]) -> None:
        """The command is refused with this error and writes nothing."""
        before = self.head()
        with pytest.raises(LedgerError) as caught:
            self.run(command)
        assert type(caught.value) is error, caught.value
        event(f"{type(command).__name__}: refused")
        assert caught.value.detail
        assert self.head() == before

    def pick(self, data: st.DataObject, items: list[Any],
             likely: Callable[[Any], bool] | None = None) -> Any:
        """One of `items`, in the order they were made (not by their random ids: a replayed
        example must draw the same way); mostly one for which `likely` holds, if any does."""
        preferred = [item for item in items if likely(item)] if likely else []
        if preferred and data.draw(st.integers(0, 4)):
            return data.draw(st.sampled_from(preferred))
        return data.draw(st.sampled_from(items))

    def merchant_principal(self, merchant_id: str) -> Principal:
        return Principal(0, Role.merchant, merchant_id=merchant_id)

    # -- filing and products ---------------------------------------------------------------
    def file(self, industry: str) -> None:
        filing = parse_filing({"name": f"商户{len(self.merchants)}", "industry": industry,
                               "credit_code": credit_code(random.Random(next(_codes))),
                               "bank_id": BANK,
                               "custody_account": f"0200{len(self.merchants):03d}{next(_codes)}"},
                              "beijing")
        body = self.run(FileMerchant(OPERATOR, filing))
        assert body["status"] == "active" and body["tier"] == "blue"
        assert set(body["accounts"]) == set(PURPOSES)
        self.merchants[body["id"]] = MMerchant(body["id"], INDUSTRIES[industry])

    @initialize(price=st.integers(1, 120_000), sessions=st.integers(1, 60),
                pack_price=st.integers(1, 200_000), cards=st.integers(1, 3))
    def open_two_merchants(self, price: int, sessions: int, pack_price: int,
                           cards: int) -> None:
        """A commerce merchant (40% custody) and a training one (100%), each with a
        stored-value card with bonus and a session card, and a few cards sold."""
        for industry in ("美容美发", "体育健身"):
            self.file(industry)
            merchant_id = list(self.merchants)[-1]
            self._create_product(merchant_id, "stored_value", price, 0, price // 5, 3)
            self._create_product(merchant_id, "sessions", pack_price, sessions, 1, 2)
        for i in range(cards * len(self.products)):
            self._sell(self.products[i % len(self.products)], named=i % 3 != 2)
        for i, card in enumerate(list(self.cards.values())):
            self._use(card, max(1, card.total_units * (i % 4) // 7))

    @precondition(lambda self: len(self.merchants) < 4)
    @rule(industry=st.sampled_from(sorted(INDUSTRIES)))
    def file_another(self, industry: str) -> None:
        self.file(industry)

    @rule(data=st.data(), kind=st.sampled_from(["stored_value", "sessions"]),
          price=st.one_of(st.integers(1, 3_000), st.integers(3_000, 120_000),
                          st.sampled_from([100_000, 100_001, 500_000, 500_001])),
          sessions=st.integers(1, 62), bonus=st.integers(0, 3), months=st.integers(1, 4))
    def create_product(self, data: st.DataObject, kind: str, price: int, sessions: int,
                       bonus: int, months: int) -> None:
        m = self.pick(data, list(self.merchants))
        bonus_units = bonus * price // 10 if kind == "stored_value" else bonus
        self._create_product(m, kind, price, sessions, bonus_units, months)

    def _create_product(self, m: str, kind: str, price: int, sessions: int, bonus_units: int,
                        months: int) -> None:
        raw = {"kind": kind, "name": "卡", "price_fen": price, "bonus_units": bonus_units,
               "validity_months": months}
        if kind == "sessions":
            raw["sessions"] = sessions
        body = self.run(CreateProduct(self.merchant_principal(m), m, parse_product(raw)))
        self.products.append(MProduct(body["id"], m, kind, price,
                                      sessions if kind == "sessions" else 0, bonus_units,
                                      months))

    # -- sales -------------------------------------------------------------------------------
    @precondition(lambda self: self.products)
    @rule(data=st.data(), named=st.booleans())
    def sell(self, data: st.DataObject, named: bool) -> None:
        self._sell(self.pick(data, self.products), named)

    @precondition(lambda self: self.products)
    @rule(data=st.data(), named=st.booleans())
    def sell_again(self, data: st.DataObject, named: bool) -> None:
        self._sell(self.pick(data, self.products), named)

    def _sell(self, p: MProduct, named: bool) -> None:
        m = self.merchants[p.merchant_id]
        r = m.rules
        self.phones += 1
        consumer = consumer_pseudonym(PSEUDONYM_KEY, f"phone:1380000{self.phones:04d}")
        command = SellCard(self.merchant_principal(m.id), p.id, consumer, named, self.today)
        sold_today = sum(c.paid for c in self.cards.values()
                         if c.merchant_id == m.id and c.sold_on == self.today)
        if (m.status != "active" or m.tier == "red" or m.hard_blocks
                or p.price > (r.named_max if named else r.anonymous_max)
                or p.sessions > r.sessions_max or p.months > r.months_max
                # 控增量: a yellow merchant's sales per day (the shipped supervision rules)
                or (m.tier == "yellow" and sold_today + p.price > YELLOW_DAILY_SALES_FEN_MAX)):
            self.refused(command, Refused)
            return
        body = self.run(command)
        custody = custodied(p.price, r.ratio_bp)
        total = (p.price if p.kind == "stored_value" else p.sessions) + p.bonus
        expires = add_months(self.today, p.months)
        assert (body["paid_fen"], body["custody_fen"], body["direct_fen"], body["total_units"],
                body["expires_on"], body["named"]) == (
            p.price, custody, p.price - custody, total, expires.isoformat(), named)
        self.cards[body["card_id"]] = MCard(
            body["card_id"], m.id, p.kind, p.price, custody, total,
            Principal(0, Role.consumer, consumer_id=consumer),
            self.today, expires, r, balance=p.price)
        m.books["custody_in_transit"] += custody
        m.books["direct_share"] += p.price - custody

    # -- consumption -------------------------------------------------------------------------
    @precondition(lambda self: self.cards)
    @rule(data=st.data(), beyond=st.integers(0, 9))
    def consume(self, data: st.DataObject, beyond: int) -> None:
        self._consume(data, beyond)

    @precondition(lambda self: self.cards)
    @rule(data=st.data(), beyond=st.integers(0, 9))
    def consume_again(self, data: st.DataObject, beyond: int) -> None:
        self._consume(data, beyond)

    def _consume(self, data: st.DataObject, beyond: int) -> None:
        card = self.pick(data, list(self.cards.values()), lambda c: (
            c.status == "active" and c.used < c.total_units and self.today <= c.expires_on
            and self.merchants[c.merchant_id].status == "active"))
        left = card.total_units - card.used
        units = left + 1 if beyond == 0 or left == 0 else data.draw(
            st.integers(1, min(left, max(1, left // 3) if beyond < 6 else left)))
        self._use(card, units)

    def _use(self, card: MCard, units: int) -> None:
        m = self.merchants[card.merchant_id]
        left = card.total_units - card.used
        unit = "sessions" if card.kind == "sessions" else "amount_fen"
        command = Consume(self.merchant_principal(m.id), card.id, units, self.today, unit)
        if m.status != "active" or card.status != "active" or self.today > card.expires_on \
                or units > left:
            self.refused(command, Refused)
            return
        body = self.run(command)
        paid = paid_after(card, card.used + units) - card.consumed_paid
        custody = custody_after(card, card.consumed_paid + paid) - card.consumed_custody
        pending = card.rules.confirmation
        confirm_by = working_days_after(self.today, card.rules.silence_working_days) \
            if pending else self.today
        assert (body["units"], body["paid_fen"], body["custody_fen"], body["direct_fen"],
                body["status"], body["confirm_by"], body["remaining_units"]) == (
            units, paid, custody, paid - custody, "pending" if pending else "confirmed",
            confirm_by.isoformat(), left - units)
        card.used += units
        card.consumed_paid += paid
        card.consumed_custody += custody
        card.balance -= paid
        m.books["earned_pending" if pending else "earned"] += custody
        m.books["direct_share"] -= paid - custody
        self.consumptions[body["consumption_id"]] = MConsumption(
            body["consumption_id"], card.id, m.id, units, paid, custody,
            "pending" if pending else "confirmed", confirm_by, None if pending else self.today)

    @precondition(lambda self: self.consumptions)
    @rule(data=st.data(), confirm=st.booleans())
    def consumer_answers(self, data: st.DataObject, confirm: bool) -> None:
        use = self.pick(data, list(self.consumptions.values()),
                        lambda u: u.status == "pending")
        card = self.cards[use.card_id]
        command: Command = ConfirmConsumption(card.holder, use.id, self.today) if confirm \
            else RejectConsumption(card.holder, use.id, self.today)
        if use.status != "pending":
            self.refused(command, Conflict)
            return
        if not confirm and card.status != "active":
            self.refused(command, Refused)  # the value could not go back onto the card
            return
        body = self.run(command)
        assert body["status"] == ("confirmed" if confirm else "rejected")
        self._settle(use, confirm)

    def _settle(self, use: MConsumption, confirm: bool) -> None:
        m, card = self.merchants[use.merchant_id], self.cards[use.card_id]
        m.books["earned_pending"] -= use.custody
        if confirm:
            use.status, use.confirmed_on = "confirmed", self.today
            m.books["earned"] += use.custody
            return
        use.status = "rejected"
        m.books["direct_share"] += use.paid - use.custody
        card.balance += use.paid
        card.used -= use.units
        card.consumed_paid -= use.paid
        card.consumed_custody -= use.custody

    @precondition(lambda self: any(u.status == "pending" for u in self.consumptions.values()))
    @rule()
    def silence_confirms(self) -> None:
        self._auto_confirm()

    def _auto_confirm(self) -> None:
        body = self.run(AutoConfirm(OPERATOR, self.today))
        due = sorted(u.id for u in self.consumptions.values()
                     if u.status == "pending" and u.confirm_by <= self.today)
        assert sorted(i for i in body["confirmed"] if i in self.consumptions) == due
        for consumption_id in due:
            self._settle(self.consumptions[consumption_id], True)

    # -- the bank and the release cycle ------------------------------------------------------
    @rule(data=st.data(), everything=st.booleans(), too_much=st.integers(0, 9))
    def bank_sees_deposit(self, data: st.DataObject, everything: bool, too_much: int) -> None:
        m = self.pick(data, list(self.merchants.values()),
                      lambda m: m.books["custody_in_transit"] > 0)
        transit = m.books["custody_in_transit"]
        if too_much == 0 or transit == 0:
            self.refused(ConfirmDeposit(BANK_KEY, m.id, transit + 1), Refused)
            return
        amount = transit if everything else data.draw(st.integers(1, transit))
        body = self.run(ConfirmDeposit(BANK_KEY, m.id, amount))
        assert body["amount_fen"] == amount
        self._deposited(m, amount)

    def _deposited(self, m: MMerchant, amount: int) -> None:
        m.books["custody_in_transit"] -= amount
        m.books["custody_cash"] += amount
        m.deposits += amount

    @rule(data=st.data())
    def bank_statement_day(self, data: st.DataObject) -> None:
        """The bank's statement for one merchant: every deposit in transit arrives, and the
        pending instructions are paid in order while the custody cash lasts."""
        m = self.pick(data, list(self.merchants.values()),
                      lambda m: m.books["custody_in_transit"] > 0 or any(
                          i.merchant_id == m.id and i.status == "pending"
                          for i in [*self.releases.values(), *self.refunds.values()]))
        transit = m.books["custody_in_transit"]
        if transit:
            assert self.run(ConfirmDeposit(BANK_KEY, m.id, transit))["amount_fen"] == transit
            self._deposited(m, transit)
        for release in [r for r in self.releases.values()
                        if r.merchant_id == m.id and r.status == "pending"]:
            self._resolve_release(release, True)
        for refund in [r for r in self.refunds.values()
                       if r.merchant_id == m.id and r.status == "pending"]:
            self._resolve_refund(refund, True)

    @rule(days=st.integers(1, 12), jobs=st.booleans())
    def time_passes(self, days: int, jobs: bool) -> None:
        """Days go by; the operator's daily jobs may run: silence confirms, releases run."""
        self.today += timedelta(days=days)
        if jobs:
            self._auto_confirm()
            for m in self.merchants.values():
                self._run_release(m)

    @rule(data=st.data(), days=st.integers(0, 10))
    def run_releases(self, data: st.DataObject, days: int) -> None:
        """The release cycle runs, some days on (as_of moves forward with the calendar)."""
        self.today += timedelta(days=days)
        m = self.pick(data, list(self.merchants.values()), lambda m: m.status == "active" and any(
            u.merchant_id == m.id and u.status == "confirmed" and u.release_id is None
            for u in self.consumptions.values()))
        self._run_release(m)

    def _run_release(self, m: MMerchant) -> None:
        body = self.run(RunReleases(OPERATOR, self.today, m.id))
        expected = self._release(m)
        assert [(r["release_id"], r["amount_fen"], r["holdback_fen"], r["period_end"],
                 r["consumptions"]) for r in body["releases"]] == expected

    def _release(self, m: MMerchant) -> list[tuple[int, int, int, str, int]]:
        if m.status != "active":
            return []
        end = period_end(self.today, m.rules.cadence_days)
        if any(r.merchant_id == m.id and r.period_end == end and r.status != "failed"
               for r in self.releases.values()):
            return []
        uses = [u for u in self.consumptions.values()
                if u.merchant_id == m.id and u.status == "confirmed" and u.release_id is None
                and u.confirmed_on is not None and u.confirmed_on < end
                and not self.cards[u.card_id].disputed]
        earned = sum(u.custody for u in uses)
        if earned == 0:
            return []
        # A yellow merchant's releases keep the supervision rules' higher share back.
        reserve_bp = max(m.rules.reserve_bp, YELLOW_RESERVE_SHARE_BP) if m.tier == "yellow" \
            else m.rules.reserve_bp
        holdback = holdback_of(earned, reserve_bp)
        with self.engine.connect() as conn:
            release_id = int(conn.execute(text(
                "SELECT max(id) FROM release_instructions WHERE merchant_id = :m"),
                {"m": m.id}).scalar_one())
        assert release_id not in self.releases
        self.releases[release_id] = MRelease(release_id, m.id, end, earned - holdback, holdback,
                                             [u.id for u in uses])
        for u in uses:
            u.release_id = release_id
        m.books["earned"] -= earned
        m.books["release_pending"] += earned - holdback
        m.books["reserve"] += holdback
        return [(release_id, earned - holdback, holdback, end.isoformat(), len(uses))]

    @precondition(lambda self: self.releases)
    @rule(data=st.data(), settled=st.booleans())
    def bank_resolves_release(self, data: st.DataObject, settled: bool) -> None:
        release = self.pick(data, list(self.releases.values()),
                            lambda r: r.status == "pending")
        self._resolve_release(release, settled)

    def _resolve_release(self, release: MRelease, settled: bool) -> None:
        m = self.merchants[release.merchant_id]
        command: Command = SettleRelease(BANK_KEY, release.id) if settled \
            else FailRelease(BANK_KEY, release.id, "账户冻结")
        if release.status != "pending":
            self.refused(command, Conflict)
            return
        if settled and release.amount > m.books["custody_cash"]:
            self.refused(command, InsufficientFunds)
            return
        body = self.run(command)
        assert body["status"] == ("settled" if settled else "failed")
        if settled:
            release.status = "settled"
            m.books["release_pending"] -= release.amount
            m.books["custody_cash"] -= release.amount
        else:
            self._fail_release(release)

    def _fail_release(self, release: MRelease) -> None:
        m = self.merchants[release.merchant_id]
        release.status = "failed"
        m.books["release_pending"] -= release.amount
        m.books["reserve"] -= release.holdback
        m.books["earned"] += release.amount + release.holdback
        for consumption_id in release.consumptions:
            self.consumptions[consumption_id].release_id = None

    # -- refunds -------------------------------------------------------------------------------
    @precondition(lambda self: self.cards)
    @rule(data=st.data(), reason=st.sampled_from(["cooling_off", "balance"]),
          by_consumer=st.booleans())
    def refund(self, data: st.DataObject, reason: str, by_consumer: bool) -> None:
        card = self.pick(data, list(self.cards.values()),
                         lambda c: c.status == "active" and c.balance > 0)
        principal = card.holder if by_consumer else self.merchant_principal(card.merchant_id)
        command = RefundCard(principal, card.id, reason, self.today)
        if card.status != "active" or card.balance == 0 or (reason == "cooling_off" and (
                card.used > 0 or self.today > card.sold_on + timedelta(
                    days=card.rules.cooling_off_days))):
            self.refused(command, Refused)
            return
        body = self.run(command)
        self._refunded(card, body, reason, card.custody - card.consumed_custody)

    def _refunded(self, card: MCard, body: dict[str, Any], reason: str, amount: int) -> None:
        m = self.merchants[card.merchant_id]
        claim = card.balance
        assert (body["reason"], body["claim_fen"], body["amount_fen"],
                body["merchant_due_fen"], body["card_id"]) == (
            reason, claim, amount, claim - amount, card.id)
        self.refunds[body["refund_id"]] = MRefund(body["refund_id"], m.id, card.id, claim,
                                                  amount, claim - amount)
        card.balance, card.status = 0, "refund_pending"
        m.books["refunds_payable"] += amount
        m.books["merchant_refund_due"] += claim - amount

    @precondition(lambda self: self.refunds)
    @rule(data=st.data(), settled=st.booleans())
    def bank_resolves_refund(self, data: st.DataObject, settled: bool) -> None:
        refund = self.pick(data, list(self.refunds.values()),
                           lambda r: r.status == "pending")
        self._resolve_refund(refund, settled)

    def _resolve_refund(self, refund: MRefund, settled: bool) -> None:
        m, card = self.merchants[refund.merchant_id], self.cards[refund.card_id]
        command: Command = SettleRefund(BANK_KEY, refund.id) if settled \
            else FailRefund(BANK_KEY, refund.id, "账户已销户")
        if refund.status != "pending":
            self.refused(command, Conflict)
            return
        if settled and refund.amount > m.books["custody_cash"]:
            self.refused(command, InsufficientFunds)
            return
        body = self.run(command)
        assert body["status"] == ("settled" if settled else "failed")
        m.books["refunds_payable"] -= refund.amount
        if settled:
            refund.status, card.status = "settled", "refunded"
            m.books["custody_cash"] -= refund.amount
            return
        refund.status = "failed"
        card.status = "closed" if m.status == "closed" else "active"
        card.balance += refund.claim
        m.books["merchant_refund_due"] -= refund.due

    # -- disputes --------------------------------------------------------------------------------
    @precondition(lambda self: self.cards)
    @rule(data=st.data(), by_consumer=st.booleans())
    def open_dispute(self, data: st.DataObject, by_consumer: bool) -> None:
        card = self.pick(data, list(self.cards.values()), lambda c: not c.disputed)
        command = OpenDispute(card.holder if by_consumer else OPERATOR, card.id)
        if card.disputed:
            self.refused(command, Conflict)
            return
        assert self.run(command)["disputed"] is True
        card.disputed = True

    @precondition(lambda self: self.cards)
    @rule(data=st.data(), outcome=st.sampled_from(["merchant", "consumer"]))
    def resolve_dispute(self, data: st.DataObject, outcome: str) -> None:
        card = self.pick(data, list(self.cards.values()), lambda c: c.disputed)
        command = ResolveDispute(OPERATOR, card.id, outcome)
        if not card.disputed:
            self.refused(command, Conflict)
            return
        body = self.run(command)
        card.disputed = False
        refunds = outcome == "consumer" and card.status == "active" and card.balance > 0
        assert ("refund" in body) == refunds
        if refunds:
            self._refunded(card, body["refund"], "dispute", card.custody - card.consumed_custody)

    # -- the merchant's standing -------------------------------------------------------------------
    def release_rows(self, merchant_id: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM release_instructions WHERE merchant_id = :m"),
                {"m": merchant_id}).scalar_one())

    @rule(data=st.data(), frozen=st.booleans())
    def freeze_or_unfreeze(self, data: st.DataObject, frozen: bool) -> None:
        self._freeze(self.merchants[self.pick(data, list(self.merchants))], frozen)

    def _freeze(self, m: MMerchant, frozen: bool) -> None:
        command: Command = FreezeMerchant(OPERATOR, m.id, "风险排查") if frozen \
            else UnfreezeMerchant(OPERATOR, m.id, "整改完成")
        if m.status == "closed":
            self.refused(command, Refused)
            return
        if (m.status == "frozen") == frozen:
            self.refused(command, Conflict)  # freezing twice, or unfreezing an active one
            return
        body = self.run(command)
        voided = sorted(r.id for r in self.releases.values()
                        if r.merchant_id == m.id and r.status == "pending") if frozen else []
        assert (body["status"], sorted(body["voided_releases"])) == (
            "frozen" if frozen else "active", voided)
        for release_id in voided:
            self._fail_release(self.releases[release_id])
        m.status = "frozen" if frozen else "active"
        m.releases_when_stopped = self.release_rows(m.id) if frozen else None

    @rule(data=st.data(), tier=st.sampled_from(["blue", "blue", "yellow", "red"]),
          blocked=st.integers(0, 7))
    def set_tier(self, data: st.DataObject, tier: str, blocked: int) -> None:
        m = self.merchants[self.pick(data, list(self.merchants))]
        blocks = ("court_listed_defaulter",) if blocked == 0 else ()
        body = self.run(SetTier(OPERATOR, m.id, Tier(tier), ["四查"], list(blocks)))
        assert (body["tier"], body["previous_tier"]) == (tier, m.tier)
        m.tier, m.hard_blocks = tier, blocks

    @precondition(lambda self: self.steps >= 12)
    @rule(data=st.data())
    def run_away(self, data: st.DataObject) -> None:
        """关门跑路: the operator freezes the merchant at once, then closes it."""
        m = self.pick(data, list(self.merchants.values()), lambda m: m.status != "closed")
        if m.status == "active":
            self._freeze(m, True)
        self._close(m)

    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        self._close(self.pick(data, list(self.merchants.values()),
                              lambda m: m.status == "frozen"))

    def _close(self, m: MMerchant) -> None:
        if m.status != "frozen":
            # Planning is a no-op on a closed merchant (a retry resumes); its end is refused.
            self.refused(FinishClosure(OPERATOR, m.id) if m.status == "closed"
                         else CloseMerchant(OPERATOR, m.id), Refused)
            return
        # Two cards a slice: most closures here take several (ledger/flows/closure.py).
        body = close_merchant(self.run, OPERATOR, m.id, slice_cards_max=2)
        b = m.books
        available = max(0, b["custody_cash"] + b["custody_in_transit"] - b["refunds_payable"]
                        - b["release_pending"])
        open_cards = sorted((c for c in self.cards.values()
                             if c.merchant_id == m.id and c.status == "active"),
                            key=lambda c: c.id)
        claims = [c for c in open_cards if c.balance > 0]
        total = sum(c.balance for c in claims)
        payouts = [c.balance for c in claims] if available >= total else \
            largest_remainder(available, [c.balance for c in claims])
        assert (body["cards"], body["available_fen"], body["claims_fen"], body["payout_fen"],
                body["shortfall_fen"]) == (len(claims), available, total, sum(payouts),
                                           total - sum(payouts))
        assert sum(payouts) == min(available, total)
        refunds = {r["card_id"]: r for r in self._refund_rows(body["refunds"])}
        for card, payout in zip(claims, payouts, strict=True):
            self._refunded(card, refunds[card.id], "closure", payout)
        for card in open_cards:
            if card.status == "active":
                card.status = "closed"
        m.status = "closed"
        if m.releases_when_stopped is None:
            m.releases_when_stopped = self.release_rows(m.id)

    def _refund_rows(self, ids: list[int]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT id AS refund_id, card_id, reason, claim_fen, amount_fen, "
                "merchant_due_fen FROM refund_instructions WHERE id = ANY(:ids)"),
                {"ids": ids}).mappings().all()
        assert len(rows) == len(ids)
        return [dict(r) for r in rows]

    # -- after every step --------------------------------------------------------------------------
    @invariant()
    def books_hold(self) -> None:
        self.steps += 1
        with self.engine.connect() as conn:
            for m in self.merchants.values():
                self._check_merchant(conn, m)
            # (b) nothing that must not go negative is below zero, cards included.
            negative = conn.execute(text(
                "SELECT id FROM accounts WHERE non_negative AND CASE WHEN kind IN "
                "('asset', 'expense') THEN balance_fen < 0 ELSE balance_fen > 0 END")).all()
            assert negative == []
            # (e) the journal verifies (from where it was last verified) and the cached
            # balances equal the postings.
            seen = CustodyMachine.verified
            seen["seq"], seen["hash"] = check_journal(conn, seen["seq"], seen["hash"])

    def _check_merchant(self, conn: Any, m: MMerchant) -> None:
        # (a) the custody identity and the balance sheet, and the model's books to the fen.
        books = check_custody_identity(conn, m.id)
        assert books == m.books, (books, m.books)
        # (c) every card: paid = consumed + refunded + what remains.
        balances = card_balances(conn, m.id)
        rows = conn.execute(text(
            "SELECT c.id, c.paid_fen, c.custody_fen, c.used_units, c.consumed_paid_fen, "
            "c.consumed_custody_fen, c.status, c.disputed, coalesce(("
            "  SELECT sum(r.claim_fen) FROM refund_instructions r"
            "  WHERE r.card_id = c.id AND r.status <> 'failed'), 0) AS refunded "
            "FROM cards c WHERE c.merchant_id = :m"), {"m": m.id}).all()
        assert len(rows) == sum(1 for c in self.cards.values() if c.merchant_id == m.id)
        for row in rows:
            card = self.cards[row.id]
            assert row.paid_fen == row.consumed_paid_fen + row.refunded + balances[row.id]
            assert (row.paid_fen, row.custody_fen, row.used_units, row.consumed_paid_fen,
                    row.consumed_custody_fen, row.status, row.disputed,
                    balances[row.id]) == (
                card.paid, card.custody, card.used, card.consumed_paid, card.consumed_custody,
                card.status, card.disputed, card.balance)
        # (d) a frozen or closed merchant's release instructions do not grow.
        if m.status != "active":
            assert self.release_rows(m.id) == m.releases_when_stopped
            assert m.books["release_pending"] == 0

    def teardown(self) -> None:
        """Over each card's whole life: what was paid is what was consumed (released,
        pending release, held back, or awaiting release) plus what was refunded plus what
        is left; and custody's cash is what arrived less what left on instructions."""
        with self.engine.connect() as conn:
            check_journal(conn)
            for m in self.merchants.values():
                self._check_life(conn, m)

    def _check_life(self, conn: Any, m: MMerchant) -> None:
        sums: Callable[[str], int] = lambda sql: int(conn.execute(  # noqa: E731
            text(sql), {"m": m.id}).scalar_one())
        balances = card_balances(conn, m.id)
        by_state = conn.execute(text(
            "SELECT u.card_id, coalesce(r.status, CASE WHEN u.status = 'pending' THEN "
            "'unconfirmed' ELSE 'unreleased' END) AS state, sum(u.paid_fen) AS paid, "
            "sum(u.custody_fen) AS custody FROM consumptions u LEFT JOIN release_instructions "
            "r ON r.id = u.release_id WHERE u.merchant_id = :m AND u.status <> 'rejected' "
            "GROUP BY 1, 2"), {"m": m.id}).all()
        consumed: dict[str, int] = {}
        custody_by_state: dict[str, int] = {}
        for row in by_state:
            consumed[row.card_id] = consumed.get(row.card_id, 0) + int(row.paid)
            custody_by_state[row.state] = custody_by_state.get(row.state, 0) + int(row.custody)
        refunded = dict(conn.execute(text(
            "SELECT card_id, sum(claim_fen) FROM refund_instructions WHERE merchant_id = :m "
            "AND status <> 'failed' GROUP BY 1"), {"m": m.id}).all())
        for card in (c for c in self.cards.values() if c.merchant_id == m.id):
            assert card.paid == consumed.get(card.id, 0) + int(refunded.get(card.id, 0)) + \
                balances[card.id]
        # Custody's side of the consumed money: released to the merchant, being released,
        # held back as reserve, or still earned (confirmed or awaiting confirmation).
        settled_releases = sums("SELECT coalesce(sum(amount_fen), 0) FROM release_instructions "
                                "WHERE merchant_id = :m AND status = 'settled'")
        b = m.books
        assert sum(custody_by_state.values()) == settled_releases + b["release_pending"] + \
            b["reserve"] + b["earned"] + b["earned_pending"]
        assert custody_by_state.get("unconfirmed", 0) == b["earned_pending"]
        # Cash: what the bank saw arrive, less what left custody on settled instructions.
        settled_refunds = sums("SELECT coalesce(sum(amount_fen), 0) FROM refund_instructions "
                               "WHERE merchant_id = :m AND status = 'settled'")
        assert b["custody_cash"] == m.deposits - settled_releases - settled_refunds
        sold_custody = sum(c.custody for c in self.cards.values() if c.merchant_id == m.id)
        assert b["custody_in_transit"] == sold_custody - m.deposits


def test_custody_flows_keep_the_books(engine: Engine) -> None:
    CustodyMachine.engine = engine
    register_bank(engine, BANK)
    with engine.connect() as conn:
        CustodyMachine.verified.update(zip(("seq", "hash"), check_journal(conn), strict=True))
    run_state_machine_as_test(CustodyMachine, settings=settings(
        max_examples=20, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
