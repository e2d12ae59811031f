"""Releases (周期拨付) and deposits: earned money leaves custody period by period, and the
bank's receipt of card money turns money in transit into custody cash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from ledger.access import require_custodian, require_operator
from ledger.auth import Principal, Role
from ledger.commands import Books, Command, EntryRef, IdKind
from ledger.custody.chart import end_to_end_id
from ledger.custody.lifecycle import (
    BankAnswer,
    InstructionStatus,
    Merchant,
    Refund,
    Release,
    SettledBy,
    check_pending,
)
from ledger.custody.merchants import MerchantStatus, Tier
from ledger.custody.settlement import period_of, release_split
from ledger.errors import InsufficientFunds, NotFound, Refused


@dataclass(frozen=True)
class RunReleases(Command):
    """Per active merchant: confirmed earned money of the period, less the reserve, becomes a
    pending release instruction to the bank. A period already released gives nothing more."""

    principal: Principal
    as_of: date
    merchant_id: str | None = None
    # A slice of the run (ledger/flows/sweeps.py): the active merchants after this id, at
    # most this many; `next_after` in the answer is where the next slice starts (None: done).
    after: str = ""
    merchants_max: int | None = None

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        ids = [self.merchant_id] if self.merchant_id else \
            books.custody.active_merchant_ids(self.after, self.merchants_max)
        # A merchant whose releases a run-away pattern holds is skipped, and named, until a
        # regulator clears the hold (ledger/flows/supervision.py ClearHold).
        held = [i for i in ids if books.supervision.risk(i).releases_held]
        # Every query first, then every write: a query after a write could not see it.
        due = [d for d in (_due(books, books.custody.merchant(i), self.as_of) for i in ids
                           if i not in held) if d is not None]
        full = self.merchants_max is not None and len(ids) == self.merchants_max
        return {"as_of": self.as_of.isoformat(),
                "releases": [instruct_release(books, d) for d in due], "held": held,
                "merchants": len(ids), "next_after": ids[-1] if full else None}


@dataclass(frozen=True, slots=True)
class Due:
    """A merchant's period whose confirmed earned money is due for release."""

    merchant: Merchant
    start: date
    end: date
    earned_fen: int
    consumption_ids: list[int]
    reserve_share_bp: int


def _due(books: Books, m: Merchant, as_of: date) -> Due | None:
    if m.status != MerchantStatus.active:
        return None
    _, rules = books.custody.latest_rule_set(m.jurisdiction, m.industry)
    start, end = period_of(as_of, rules.release_cadence_days)
    if books.custody.release_exists(m.id, end):
        return None
    earned, consumption_ids = books.custody.releasable(m.id, end)
    if earned == 0:
        return None
    reserve = rules.reserve_share_bp
    if m.tier == Tier.yellow:
        # A yellow merchant's releases keep a higher share back (the supervision rules).
        supervision = books.supervision.rules_of(m.jurisdiction, m.industry)
        if supervision is not None:
            reserve = max(reserve, supervision.yellow_reserve_share_bp)
    return Due(m, start, end, earned, consumption_ids, reserve)


def instruct_release(books: Books, due: Due) -> dict[str, Any]:
    m, start, end, earned = due.merchant, due.start, due.end, due.earned_fen
    consumption_ids = due.consumption_ids
    amount, holdback = release_split(earned, due.reserve_share_bp)
    release_id = books.draw_id(IdKind.release)
    details = {"release_id": release_id, "merchant_id": m.id, "period_start": start.isoformat(),
               "period_end": end.isoformat(), "amount_fen": amount, "holdback_fen": holdback,
               "consumptions": len(consumption_ids), "bank_id": m.bank_id}
    entry = books.record("release.instructed", [(m.accounts["earned"], earned),
                                                (m.accounts["release_pending"], -amount),
                                                (m.accounts["reserve"], -holdback)], details)
    e2e = end_to_end_id("R", entry.seq)
    books.custody.add_release(Release(release_id, m.id, start, end, amount, holdback,
                                      InstructionStatus.pending, BankAnswer.pending, e2e,
                                      entry.seq, None))
    books.custody.mark_released(consumption_ids, release_id)
    return {**details, "end_to_end_id": e2e, "journal_seq": entry.seq}


def fail_release(books: Books, m: Merchant, release: Release, reason: str,
                 consumption_ids: Sequence[int] | None = None) -> EntryRef:
    """The money goes back to earned, and its consumptions may be released again."""
    legs = [(m.accounts["release_pending"], release.amount_fen),
            (m.accounts["reserve"], release.holdback_fen),
            (m.accounts["earned"], -(release.amount_fen + release.holdback_fen))]
    entry = books.record("release.failed", legs, {"release_id": release.id,
                                                  "merchant_id": m.id, "reason": reason})
    books.custody.resolve_instruction(release, InstructionStatus.failed, entry.seq)
    linked = consumption_ids if consumption_ids is not None \
        else books.custody.consumptions_of_release(release.id)
    books.custody.mark_released(list(linked), None)
    return entry


def settle_release(books: Books, m: Merchant, release: Release, by: SettledBy
                   ) -> dict[str, Any]:
    """The bank paid: the money leaves custody."""
    require_cash(books, m, release.amount_fen, "release")
    legs = [(m.accounts["release_pending"], release.amount_fen),
            (m.accounts["custody_cash"], -release.amount_fen)]
    entry = books.record("release.settled", legs,
                         {"release_id": release.id, "merchant_id": m.id, "by": by.value,
                          "end_to_end_id": release.end_to_end_id})
    books.custody.resolve_instruction(release, InstructionStatus.settled, entry.seq)
    return {"release_id": release.id, "status": InstructionStatus.settled.value,
            "journal_seq": entry.seq}


def require_cash(books: Books, m: Merchant, amount_fen: int, what: str) -> None:
    """The bank pays only from what it has received: a clear refusal, not a bare overdraft."""
    cash = books.balance(m.accounts["custody_cash"])
    if amount_fen > cash:
        raise InsufficientFunds(
            f"custody holds {cash} fen at the bank, not the {amount_fen} fen this {what} "
            f"pays out: the money in transit must be confirmed first", field="outcome")


Pending = TypeVar("Pending", Release, Refund)


def pending_instruction(books: Books, principal: Principal, what: str, instruction_id: int,
                        read: Callable[[int], Pending]) -> tuple[Merchant, Pending]:
    """A pending release or refund (`what`) the operator or its merchant's custodian bank may
    settle or fail; to any other bank it answers as a missing one."""
    principal.require_role(Role.operator, Role.bank)
    missing = NotFound(f"{what} {instruction_id} does not exist", field=f"{what}_id")
    try:
        instruction = read(instruction_id)
    except NotFound:
        raise missing from None
    m = books.custody.merchant(instruction.merchant_id)
    require_custodian(principal, m, missing)
    check_pending(instruction, f"{what}_id")
    return m, instruction


def _pending_release(books: Books, principal: Principal, release_id: int
                     ) -> tuple[Merchant, Release]:
    return pending_instruction(books, principal, "release", release_id, books.custody.release)


@dataclass(frozen=True)
class SettleRelease(Command):
    principal: Principal
    release_id: int

    def run(self, books: Books) -> dict[str, Any]:
        m, release = _pending_release(books, self.principal, self.release_id)
        return settle_release(books, m, release, SettledBy.call)


@dataclass(frozen=True)
class FailRelease(Command):
    principal: Principal
    release_id: int
    reason: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        m, release = _pending_release(books, self.principal, self.release_id)
        entry = fail_release(books, m, release, self.reason or "payment failed")
        return {"release_id": release.id, "status": InstructionStatus.failed.value,
                "journal_seq": entry.seq}


@dataclass(frozen=True)
class ConfirmDeposit(Command):
    """The bank saw card money arrive: in transit becomes custody cash. (Statement matching
    does this on its own; the bank or the operator may say so by hand.)"""

    principal: Principal
    merchant_id: str
    amount_fen: int

    def run(self, books: Books) -> dict[str, Any]:
        self.principal.require_role(Role.operator, Role.bank)
        pending = books.custody.pending_deposits(self.merchant_id)  # a query: first
        m = books.custody.merchant(self.merchant_id)
        require_custodian(self.principal, m, NotFound(
            f"merchant {self.merchant_id} does not exist", field="merchant_id"))
        in_transit = books.balance(m.accounts["custody_in_transit"])
        if self.amount_fen > in_transit:
            raise Refused(f"only {in_transit} fen are in transit", field="amount_fen")
        books.custody.confirm_deposits(pending, self.amount_fen)
        legs = [(m.accounts["custody_cash"], self.amount_fen),
                (m.accounts["custody_in_transit"], -self.amount_fen)]
        entry = books.record("deposit.confirmed", legs,
                             {"merchant_id": m.id, "amount_fen": self.amount_fen})
        return {"merchant_id": m.id, "amount_fen": self.amount_fen, "journal_seq": entry.seq}
