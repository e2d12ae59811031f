"""Refunds and disputes: a card's remaining paid money becomes a refund instruction (the
custody part) and a claim on the merchant (what it took directly, or what custody lacks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_card
from ledger.auth import Principal, Role
from ledger.commands import Books, Command, EntryRef, IdKind, Reads
from ledger.custody import cards as card_rules
from ledger.custody.chart import end_to_end_id
from ledger.custody.lifecycle import (
    BankAnswer,
    Card,
    CardStatus,
    DisputeOutcome,
    InstructionStatus,
    Merchant,
    Refund,
    RefundReason,
    SettledBy,
    card_status_after_failed_refund,
    check_dispute_change,
    check_refund_allowed,
    check_refundable,
    parse_dispute_outcome,
    parse_refund_reason,
)
from ledger.errors import NotFound, Refused
from ledger.flows.releases import pending_instruction, require_cash


def card_for(books: Books, principal: Principal, card_id: str) -> Card:
    try:
        card: Card | None = books.custody.card(card_id)
    except NotFound:
        card = None
    return require_card(principal, card, card_id)


@dataclass(frozen=True)
class RefundCard(Command):
    """Cooling-off (everything paid back, bonus void) or a balance refund (bonus prorated)."""

    principal: Principal
    card_id: str
    reason: str
    today: date

    def reads(self) -> Reads:
        return Reads(cards=(self.card_id,))

    def run(self, books: Books) -> dict[str, Any]:
        reason = parse_refund_reason(self.reason)
        self.principal.require_role(Role.merchant, Role.operator, Role.consumer)
        card = card_for(books, self.principal, self.card_id)
        check_refundable(card)
        if reason == RefundReason.cooling_off:
            rules = books.custody.rule_set(card.rule_set_id)
            card_rules.check_cooling_off(card.money, card.sold_on, self.today,
                                         rules.cooling_off_days)
        return instruct_refund(books, card, reason)


def instruct_refund(books: Books, card: Card, reason: RefundReason,
                    payout_fen: int | None = None) -> dict[str, Any]:
    """`payout_fen`: what custody pays of the claim, if not its whole custody part (a
    closure's pro-rata share)."""
    m = books.custody.merchant(card.merchant_id)
    check_refund_allowed(m, reason)
    due = card_rules.refund_remaining(card.money)
    claim = due.paid_fen
    if claim == 0:
        raise Refused("nothing is left on the card to refund", field="card_id")
    custody = due.custody_fen if payout_fen is None else payout_fen
    owed = claim - custody
    refund_id = books.draw_id(IdKind.refund)
    details = {"refund_id": refund_id, "card_id": card.id, "merchant_id": m.id,
               "reason": reason.value, "claim_fen": claim, "amount_fen": custody,
               "merchant_due_fen": owed, "consumer_id": card.consumer_id}
    entry = books.record("refund.instructed", [(card.account_id, claim),
                                               (m.accounts["refunds_payable"], -custody),
                                               (m.accounts["merchant_refund_due"], -owed)],
                         details)
    e2e = end_to_end_id("F", entry.seq)
    books.custody.add_refund(Refund(refund_id, m.id, card.id, reason, claim, custody, owed,
                                    InstructionStatus.pending, BankAnswer.pending, e2e,
                                    entry.seq, None))
    books.custody.set_card_status(card.id, CardStatus.refund_pending)
    return {**details, "end_to_end_id": e2e, "journal_seq": entry.seq}


def settle_refund(books: Books, m: Merchant, refund: Refund, by: SettledBy
                  ) -> dict[str, Any]:
    """Paid out of custody: the card is refunded."""
    require_cash(books, m, refund.amount_fen, "refund")
    details = {"refund_id": refund.id, "card_id": refund.card_id, "merchant_id": m.id,
               "by": by.value}
    entry = books.record("refund.settled", [(m.accounts["refunds_payable"], refund.amount_fen),
                                            (m.accounts["custody_cash"], -refund.amount_fen)],
                         details)
    books.custody.resolve_instruction(refund, InstructionStatus.settled, entry.seq)
    books.custody.set_card_status(refund.card_id, CardStatus.refunded)
    return {**details, "status": InstructionStatus.settled.value, "journal_seq": entry.seq}


def fail_refund(books: Books, m: Merchant, refund: Refund, reason: str, by: SettledBy
                ) -> dict[str, Any]:
    """Not paid: the claim goes back onto the card."""
    card = books.custody.card(refund.card_id)
    details = {"refund_id": refund.id, "card_id": card.id, "merchant_id": m.id,
               "by": by.value}
    legs = [(m.accounts["refunds_payable"], refund.amount_fen),
            (m.accounts["merchant_refund_due"], refund.merchant_due_fen),
            (card.account_id, -refund.claim_fen)]
    entry = books.record("refund.failed", legs, {**details, "reason": reason})
    books.custody.resolve_instruction(refund, InstructionStatus.failed, entry.seq)
    books.custody.set_card_status(card.id, card_status_after_failed_refund(m))
    return {**details, "status": InstructionStatus.failed.value, "journal_seq": entry.seq}


def _pending_refund(books: Books, principal: Principal, refund_id: int
                    ) -> tuple[Merchant, Refund]:
    return pending_instruction(books, principal, "refund", refund_id, books.custody.refund)


@dataclass(frozen=True)
class SettleRefund(Command):
    principal: Principal
    refund_id: int

    def run(self, books: Books) -> dict[str, Any]:
        m, refund = _pending_refund(books, self.principal, self.refund_id)
        return settle_refund(books, m, refund, SettledBy.call)


@dataclass(frozen=True)
class FailRefund(Command):
    principal: Principal
    refund_id: int
    reason: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        m, refund = _pending_refund(books, self.principal, self.refund_id)
        return fail_refund(books, m, refund, self.reason, SettledBy.call)


@dataclass(frozen=True)
class OpenDispute(Command):
    """The cardholder (their consumer key) or the operator disputes the card: while open,
    its earned money is held back from release."""

    principal: Principal
    card_id: str

    def run(self, books: Books) -> dict[str, Any]:
        self.principal.require_role(Role.operator, Role.consumer)
        card = card_for(books, self.principal, self.card_id)
        entry = hold_releases(books, card)
        return {"card_id": card.id, "disputed": True, "journal_seq": entry.seq}


def hold_releases(books: Books, card: Card, **about: Any) -> EntryRef:
    """Open a dispute on the card: its earned money is held back from release until it ends.
    `about`: what else the entry names (the complaint that holds it)."""
    check_dispute_change(card, opening=True)
    entry = books.append("card.disputed", {"card_id": card.id, "merchant_id": card.merchant_id,
                                           "outcome": None, **about})
    books.custody.set_disputed(card.id, True)
    return entry


def end_hold(books: Books, card: Card, outcome: DisputeOutcome, **about: Any) -> EntryRef:
    """End the card's dispute: its releases go on (what the outcome asks besides is the
    caller's)."""
    check_dispute_change(card, opening=False)
    entry = books.append("card.dispute_resolved", {"card_id": card.id,
                                                   "merchant_id": card.merchant_id,
                                                   "outcome": outcome.value, **about})
    books.custody.set_disputed(card.id, False)
    return entry


@dataclass(frozen=True)
class ResolveDispute(Command):
    """The operator decides: for the consumer, what is left on the card comes back."""

    principal: Principal
    card_id: str
    outcome: str

    def run(self, books: Books) -> dict[str, Any]:
        self.principal.require_role(Role.operator)
        card = card_for(books, self.principal, self.card_id)
        check_dispute_change(card, opening=False)
        outcome = parse_dispute_outcome(self.outcome)
        entry = end_hold(books, card, outcome)
        result = {"card_id": card.id, "disputed": False, "journal_seq": entry.seq}
        if outcome == DisputeOutcome.consumer and card.status == CardStatus.active and \
                card.money.remaining_paid_fen > 0:
            result["refund"] = instruct_refund(books, card, RefundReason.dispute)
        return result
