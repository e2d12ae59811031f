"""The custody lifecycle: the states of cards, consumptions and instructions, the records that
hold them, and the pure decisions on what may happen next.

A card is `active` from its sale; a refund makes it `refund_pending` until the bank pays
(`refunded`) or cannot (back to `active`, or `closed` if its merchant closed meanwhile); a
closure closes the cards with nothing left. A consumption is `pending` until its cardholder
confirms it (or their silence does) or rejects it. A release or refund instruction is
`pending` until it is `settled` (paid) or `failed`; the bank answers it separately
(`accepted`/`rejected`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ledger.custody.cards import CardKind, CardMoney, MerchantState, Use
from ledger.custody.merchants import MerchantStatus, Tier
from ledger.errors import Conflict, InvalidInput, Refused


class CardStatus(StrEnum):
    active = "active"
    refund_pending = "refund_pending"
    refunded = "refunded"
    closed = "closed"


class ConsumptionStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    rejected = "rejected"


class InstructionStatus(StrEnum):
    pending = "pending"
    settled = "settled"
    failed = "failed"


class BankAnswer(StrEnum):
    """What the bank said of an instruction in its payment file."""

    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class RefundReason(StrEnum):
    cooling_off = "cooling_off"  # everything paid back, bonus void
    balance = "balance"  # what is left, bonus prorated
    dispute = "dispute"  # a dispute resolved for the consumer
    closure = "closure"  # the merchant closed: pro rata from custody


class DisputeOutcome(StrEnum):
    merchant = "merchant"
    consumer = "consumer"


class SettledBy(StrEnum):
    """Who or what settled a consumption or an instruction, as the journal names it."""

    consumer = "consumer"
    silence = "silence"
    call = "call"
    bank = "bank"
    statement = "statement"


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    industry: str
    # The department that supervises its industry (行业主管部门): a department-scoped
    # regulator key sees its merchants (ledger/access.py supervises).
    department: str
    jurisdiction: str
    bank_id: str
    status: MerchantStatus
    tier: Tier
    hard_blocks: frozenset[str]
    accounts: Mapping[str, int]  # purpose (the chart: ledger/custody/chart.py) -> account
    street: str | None = None  # 属地: its street or town (镇街/街乡); a street key sees it

    @property
    def state(self) -> MerchantState:
        return MerchantState(self.status, self.tier, self.hard_blocks)


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    merchant_id: str
    product_id: str
    rule_set_id: int
    account_id: int
    consumer_id: str
    token_hash: bytes
    named: bool
    status: CardStatus
    disputed: bool
    sold_on: date
    expires_on: date
    sold_seq: int
    money: CardMoney


@dataclass(frozen=True, slots=True)
class Consumption:
    id: int
    card_id: str
    merchant_id: str
    use: Use
    status: ConsumptionStatus
    confirm_by: date
    confirmed_on: date | None
    release_id: int | None
    created_seq: int


@dataclass(frozen=True, slots=True)
class Release:
    """A release instruction (周期拨付): earned money of a period, to the merchant."""

    id: int
    merchant_id: str
    period_start: date
    period_end: date
    amount_fen: int
    holdback_fen: int
    status: InstructionStatus
    bank_answer: BankAnswer
    end_to_end_id: str
    created_seq: int
    resolved_seq: int | None


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund instruction: the custody part of a card's claim, to the consumer."""

    id: int
    merchant_id: str
    card_id: str
    reason: RefundReason
    claim_fen: int
    amount_fen: int  # paid out of custody
    merchant_due_fen: int  # the rest of the claim, owed by the merchant
    status: InstructionStatus
    bank_answer: BankAnswer
    end_to_end_id: str
    created_seq: int
    resolved_seq: int | None


Instruction = Release | Refund


def check_consumable(card: Card, merchant: Merchant, today: date, unit: str | None) -> None:
    """May this card be used today? `unit`: the request's own name for the units, if any."""
    if unit is not None:
        wanted = "sessions" if card.money.kind == CardKind.sessions else "amount_fen"
        if unit != wanted:
            raise InvalidInput(f"a {card.money.kind.value} card is used in {wanted}",
                               field=unit)
    if merchant.status != MerchantStatus.active:
        raise Refused(f"the merchant is {merchant.status.value}: no consumption")
    if card.status != CardStatus.active:
        raise Refused(f"the card is {card.status.value}", field="card_id")
    if today > card.expires_on:
        raise Refused(f"the card expired on {card.expires_on.isoformat()}", field="card_id")


def check_refundable(card: Card) -> None:
    if card.status != CardStatus.active:
        raise Refused(f"the card is {card.status.value}", field="card_id")


def check_settleable(consumption: Consumption, card: Card, confirm: bool) -> None:
    """May the cardholder confirm (or reject) this consumption now?"""
    if consumption.status != ConsumptionStatus.pending:
        raise Conflict(f"the consumption is already {consumption.status.value}",
                       field="consumption_id")
    if not confirm and card.status != CardStatus.active:
        # The value would go back onto a card that can no longer be used or refunded.
        raise Refused(f"the card is {card.status.value}: the consumption can only be "
                      "confirmed", field="consumption_id")


def check_pending(instruction: Instruction, field: str) -> None:
    if instruction.status != InstructionStatus.pending:
        what = "release" if isinstance(instruction, Release) else "refund"
        raise Conflict(f"the {what} is already {instruction.status.value}", field=field)


def check_unanswered(instruction: Instruction) -> None:
    if instruction.status != InstructionStatus.pending or \
            instruction.bank_answer != BankAnswer.pending:
        raise Conflict(f"the instruction is already {instruction.status.value} "
                       f"({instruction.bank_answer.value} by the bank)", field="end_to_end_id")


def card_status_after_failed_refund(merchant: Merchant) -> CardStatus:
    """The claim goes back onto the card: usable again, unless its merchant closes."""
    return CardStatus.closed if merchant.status in ENDING else CardStatus.active


# A merchant that is closing or closed: no freeze, no refund but its closure's.
ENDING = frozenset({MerchantStatus.closing, MerchantStatus.closed})


def check_not_ending(merchant: Merchant) -> None:
    if merchant.status in ENDING:
        raise Refused(f"the merchant is {merchant.status.value}")


def check_refund_allowed(merchant: Merchant, reason: RefundReason) -> None:
    """A closing merchant's cards are refunded by its closure's plan alone: a refund of
    another kind would claim the same money twice."""
    if merchant.status in ENDING and reason != RefundReason.closure:
        raise Refused(f"the merchant is {merchant.status.value}: its cards are refunded by "
                      "its closure", field="card_id")


def check_dispute_change(card: Card, opening: bool) -> None:
    if card.disputed == opening:
        state = "already disputed" if opening else "not disputed"
        raise Conflict(f"the card is {state}", field="card_id")


def parse_refund_reason(text: str) -> RefundReason:
    """What a caller may ask for: cooling-off or a balance refund (the others are the
    service's own)."""
    if text not in (RefundReason.cooling_off, RefundReason.balance):
        raise InvalidInput("must be cooling_off or balance", field="reason")
    return RefundReason(text)


def parse_dispute_outcome(text: str) -> DisputeOutcome:
    if text not in DisputeOutcome.__members__:
        raise InvalidInput("must be merchant or consumer", field="outcome")
    return DisputeOutcome(text)
