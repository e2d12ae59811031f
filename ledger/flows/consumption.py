"""Consumption (一课一消): the merchant records a use of the card; its holder confirms or
rejects it with their own key, and silence confirms it after the rule set's working days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_card, require_cardholder, require_operator
from ledger.auth import Principal, Role
from ledger.commands import Books, Command, IdKind, Reads
from ledger.custody import cards as card_rules
from ledger.custody.lifecycle import (
    Card,
    Consumption,
    ConsumptionStatus,
    SettledBy,
    check_consumable,
    check_settleable,
)
from ledger.errors import NotFound

auto_confirm_consumptions_max = 10_000


@dataclass(frozen=True)
class Consume(Command):
    principal: Principal
    card_id: str
    units: int
    today: date
    unit: str | None = None  # the request's field: "sessions" or "amount_fen"

    def reads(self) -> Reads:
        return Reads(cards=(self.card_id,))

    def run(self, books: Books) -> dict[str, Any]:
        self.principal.require_role(Role.merchant, Role.operator)
        card = require_card(self.principal, _card_or_none(books, self.card_id), self.card_id)
        m = books.custody.merchant(card.merchant_id)
        check_consumable(card, m, self.today, self.unit)
        use = card_rules.consume(card.money, self.units, self.unit or "units")
        rules = books.custody.rule_set(card.rule_set_id)
        pending = rules.confirmation_required
        confirm_by = card_rules.working_days_after(
            self.today, rules.confirmation_silence_working_days) if pending else self.today
        status = ConsumptionStatus.pending if pending else ConsumptionStatus.confirmed
        consumption_id = books.draw_id(IdKind.consumption)
        details = {"consumption_id": consumption_id, "card_id": card.id, "merchant_id": m.id,
                   "units": use.units, "paid_fen": use.paid_fen,
                   "custody_fen": use.custody_fen, "direct_fen": use.direct_fen,
                   "status": status.value, "confirm_by": confirm_by.isoformat()}
        earned = m.accounts["earned_pending" if pending else "earned"]
        entry = books.record("card.consumed", [(card.account_id, use.paid_fen),
                                               (earned, -use.custody_fen),
                                               (m.accounts["direct_share"], -use.direct_fen)],
                             details)
        books.custody.add_consumption(Consumption(
            consumption_id, card.id, m.id, use, status, confirm_by,
            None if pending else self.today, None, entry.seq))
        books.custody.set_card_money(card.id, card.money.after(use))
        remaining = card.money.remaining_units - use.units
        return {**details, "remaining_units": remaining, "journal_seq": entry.seq}


def _card_or_none(books: Books, card_id: str) -> Card | None:
    try:
        return books.custody.card(card_id)
    except NotFound:
        return None


def _cardholders(books: Books, principal: Principal, consumption_id: int
                 ) -> tuple[Consumption, Card]:
    """The consumption and its card, if the card is this consumer's; to anyone else an
    existing consumption and a missing one answer alike (ids are sequential)."""
    what = f"consumption {consumption_id}"
    try:
        consumption = books.custody.consumption(consumption_id)
        card: Card | None = books.custody.card(consumption.card_id)
    except NotFound:
        principal.require_consumer()
        raise NotFound(f"{what} does not exist", field="consumption_id") from None
    return consumption, require_cardholder(principal, card, what, "consumption_id")


def confirm(books: Books, consumption: Consumption, card: Card, today: date,
            by: SettledBy) -> dict[str, Any]:
    m = books.custody.merchant(consumption.merchant_id)
    details = {"consumption_id": consumption.id, "card_id": card.id, "merchant_id": m.id,
               "by": by.value}
    custody = consumption.use.custody_fen
    entry = books.record("consumption.confirmed", [(m.accounts["earned_pending"], custody),
                                                   (m.accounts["earned"], -custody)], details)
    books.custody.settle_consumption(consumption.id, ConsumptionStatus.confirmed, today)
    return {**details, "status": ConsumptionStatus.confirmed.value, "journal_seq": entry.seq}


@dataclass(frozen=True)
class ConfirmConsumption(Command):
    """The cardholder, with their own consumer key, confirms (the merchant never can)."""

    principal: Principal
    consumption_id: int
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        consumption, card = _cardholders(books, self.principal, self.consumption_id)
        check_settleable(consumption, card, confirm=True)
        return confirm(books, consumption, card, self.today, SettledBy.consumer)


@dataclass(frozen=True)
class RejectConsumption(Command):
    """The cardholder rejects: the value goes back onto the card."""

    principal: Principal
    consumption_id: int
    today: date

    def run(self, books: Books) -> dict[str, Any]:
        consumption, card = _cardholders(books, self.principal, self.consumption_id)
        check_settleable(consumption, card, confirm=False)
        m = books.custody.merchant(consumption.merchant_id)
        use = consumption.use
        details = {"consumption_id": consumption.id, "card_id": card.id, "merchant_id": m.id,
                   "by": SettledBy.consumer.value}
        legs = [(m.accounts["earned_pending"], use.custody_fen),
                (m.accounts["direct_share"], use.direct_fen), (card.account_id, -use.paid_fen)]
        entry = books.record("consumption.rejected", legs, details)
        books.custody.settle_consumption(consumption.id, ConsumptionStatus.rejected, None)
        books.custody.set_card_money(card.id, card.money.before(use))
        return {**details, "status": ConsumptionStatus.rejected.value,
                "journal_seq": entry.seq}


@dataclass(frozen=True)
class AutoConfirm(Command):
    """Silence past the rule set's working days counts as confirmation."""

    principal: Principal
    as_of: date
    consumptions_max: int = auto_confirm_consumptions_max  # a slice (ledger/flows/sweeps.py)

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        confirmed = []
        for consumption_id in books.custody.due_consumptions(self.as_of,
                                                             self.consumptions_max):
            consumption = books.custody.consumption(consumption_id)
            card = books.custody.card(consumption.card_id)
            confirm(books, consumption, card, self.as_of, SettledBy.silence)
            confirmed.append(consumption_id)
        return {"as_of": self.as_of.isoformat(), "confirmed": confirmed}
