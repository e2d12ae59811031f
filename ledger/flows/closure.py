"""Closure (关门跑路): every cardholder's remaining paid money is claimed; custody pays the
claims, pro rata by largest remainder when it falls short."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.access import require_operator
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.custody.lifecycle import CardStatus, Merchant, RefundReason
from ledger.custody.merchants import MerchantStatus
from ledger.custody.settlement import prorate_payouts
from ledger.errors import Refused
from ledger.flows.refunds import instruct_refund

closure_cards_max = 100_000


@dataclass(frozen=True)
class CloseMerchant(Command):
    principal: Principal
    merchant_id: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        open_ids = books.custody.open_cards(self.merchant_id, closure_cards_max)  # a query
        m = books.custody.merchant(self.merchant_id)
        if m.status != MerchantStatus.frozen:
            raise Refused("freeze the merchant before closing it", field="merchant_id")
        cards = [books.custody.card(card_id) for card_id in open_ids]
        claims = [(card.id, card.money.remaining_paid_fen) for card in cards]
        available = _available(books, m)
        payouts = prorate_payouts([cl for cl in claims if cl[1] > 0], available)
        by_card = {card.id: card for card in cards}
        refunds = [instruct_refund(books, by_card[p.card_id], RefundReason.closure,
                                   p.payout_fen)["refund_id"] for p in payouts]
        summary = {"merchant_id": m.id, "cards": len(payouts), "available_fen": available,
                   "claims_fen": sum(p.claim_fen for p in payouts),
                   "payout_fen": sum(p.payout_fen for p in payouts),
                   "shortfall_fen": sum(p.shortfall_fen for p in payouts), "refunds": refunds}
        entry = books.append("merchant.closed", summary)
        books.custody.set_merchant_status(m.id, MerchantStatus.closed)
        for card in cards:
            if card.money.remaining_paid_fen == 0:
                books.custody.set_card_status(card.id, CardStatus.closed)
        return {**summary, "journal_seq": entry.seq}


def _available(books: Books, m: Merchant) -> int:
    """What custody can pay: its cash and money in transit, less what it already owes."""
    held = sum(books.balance(m.accounts[p]) for p in ("custody_cash", "custody_in_transit"))
    owed = books.balance(m.accounts["refunds_payable"]) + \
        books.balance(m.accounts["release_pending"])
    return max(0, held - owed)
