"""Closure (关门跑路): every cardholder's remaining paid money is claimed; custody pays the
claims, pro rata by largest remainder when it falls short.

A merchant may have a million cards, and one group commit holds the writer for every till:
so a closure is planned at once and carried out in slices. `CloseMerchant` decides every
card's payout over all the claims together (the plan, kept in `closure_payouts`) and marks
the merchant `closing`; each `ContinueClosure` then instructs the refunds of at most
`closure_slice_cards_max` cards of the plan, closes the cards with nothing left, and the
last one journals `merchant.closed`. Each slice is its own group commit, so tills' writes get
the writer between two. A closure interrupted by a crash goes on where it stopped: the plan
is in the database, and a refund once instructed is not instructed again. The closure is a
job (ledger/jobs.py), keyed by its merchant: its progress is the cards refunded of the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.access import require_operator
from ledger.auth import Principal
from ledger.commands import Books, Command
from ledger.custody.lifecycle import ENDING, CardStatus, Merchant, RefundReason
from ledger.custody.merchants import MerchantStatus
from ledger.custody.settlement import prorate_payouts
from ledger.custody.store import ClosureTotals
from ledger.errors import Refused
from ledger.flows.bans import list_run_away
from ledger.flows.refunds import instruct_refund
from ledger.jobs import Job, JobKind, JobStatus, Step, run_steps

closure_slice_cards_max = 1_000  # cards a slice refunds or closes: one group commit's work


@dataclass(frozen=True)
class CloseMerchant(Command):
    """Plan the closure of a frozen merchant; nothing if its closure is planned already."""

    principal: Principal
    merchant_id: str
    today: date = field(default_factory=date.today)  # the day its people's bans start

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        claims = books.custody.open_claims(self.merchant_id)  # a query: first
        m = books.custody.merchant(self.merchant_id)
        job = books.jobs.by_key(JobKind.closure, m.id)
        if m.status in ENDING:  # planned already (a crash, a retry): the slices go on
            return {"merchant_id": m.id, "status": m.status.value, "planned": False,
                    **_progress(job)}
        if m.status != MerchantStatus.frozen:
            raise Refused("freeze the merchant before closing it", field="merchant_id")
        available = _available(books, m)
        payouts = prorate_payouts(claims, available)
        plan = {"merchant_id": m.id, "cards": len(payouts), "available_fen": available,
                "claims_fen": sum(p.claim_fen for p in payouts),
                "payout_fen": sum(p.payout_fen for p in payouts),
                "shortfall_fen": sum(p.shortfall_fen for p in payouts)}
        entry = books.append("merchant.closing", plan)
        books.custody.set_merchant_status(m.id, MerchantStatus.closing)
        job = books.jobs.start(JobKind.closure, m.id, len(payouts), self.principal.key_id, {})
        # Its people are blacklisted as the closure is decided (planned once, never undone):
        # before the plan, which is written at once and leaves nothing to undo after it.
        banned = list_run_away(books, self.principal, m.id, self.today)
        books.custody.plan_closure(m.id, available, payouts, entry.seq)  # last: written now
        return {**plan, "status": MerchantStatus.closing.value, "planned": True,
                "journal_seq": entry.seq, "bans": banned,
                **_progress(books.jobs.job(job.id))}


@dataclass(frozen=True)
class ContinueClosure(Command):
    """One slice of a planned closure: refunds to instruct, else cards to close. `done`: the
    plan is carried out, and `FinishClosure` may end it."""

    principal: Principal
    merchant_id: str
    slice_cards_max: int = closure_slice_cards_max

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        if books.custody.merchant(self.merchant_id).status == MerchantStatus.closed:
            return {"merchant_id": self.merchant_id, "done": True}  # a retry: nothing left
        m = _closing(books, self.merchant_id)
        unpaid = books.custody.unpaid_plan(m.id, self.slice_cards_max)  # queries: first
        emptied = [] if unpaid else books.custody.open_cards(m.id, self.slice_cards_max)
        job = books.jobs.by_key(JobKind.closure, m.id)
        if job is not None and (unpaid or emptied):  # its progress: the cards refunded
            books.jobs.advance(job.id, job.done + len(unpaid), job.state)
            job = books.jobs.job(job.id)
        if unpaid:
            refunds = [instruct_refund(books, books.custody.card(card_id), RefundReason.closure,
                                       payout)["refund_id"] for card_id, payout in unpaid]
            return {"merchant_id": m.id, "done": False, "refunds": refunds, **_progress(job)}
        if emptied:  # every claim is refunded: what is still active holds nothing
            for card_id in emptied:
                books.custody.set_card_status(card_id, CardStatus.closed)
            return {"merchant_id": m.id, "done": False, "closed_cards": len(emptied),
                    **_progress(job)}
        return {"merchant_id": m.id, "done": True}


@dataclass(frozen=True)
class FinishClosure(Command):
    """The end of a carried-out closure: `merchant.closed`, with the plan's totals."""

    principal: Principal
    merchant_id: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        m = _closing(books, self.merchant_id)
        job = books.jobs.by_key(JobKind.closure, m.id)
        left = books.custody.unpaid_plan(m.id, 1) or books.custody.open_cards(m.id, 1)
        if left:
            raise Refused("the closure still has cards to refund or close (ContinueClosure)",
                          field="merchant_id")
        summary = _summary(m, books.custody.closure_totals(m.id))
        entry = books.append("merchant.closed", summary)
        books.custody.set_merchant_status(m.id, MerchantStatus.closed)
        if job is not None:
            books.jobs.finish(job.id, JobStatus.done, {**summary, "journal_seq": entry.seq})
        return {**summary, "journal_seq": entry.seq}


def _closing(books: Books, merchant_id: str) -> Merchant:
    m = books.custody.merchant(merchant_id)
    if m.status != MerchantStatus.closing:
        raise Refused(f"the merchant is {m.status.value}: only a closure planned and not "
                      "finished goes on (freeze it, then close it)", field="merchant_id")
    return m


def _summary(m: Merchant, totals: ClosureTotals) -> dict[str, Any]:
    return {"merchant_id": m.id, "cards": totals.cards, "available_fen": totals.available_fen,
            "claims_fen": totals.claims_fen, "payout_fen": totals.payout_fen,
            "shortfall_fen": totals.shortfall_fen, "refunds": totals.refund_ids}


def closure_steps(principal: Principal, merchant_id: str,
                  slice_cards_max: int = closure_slice_cards_max,
                  today: date | None = None) -> Step:
    """A whole closure, slice after slice (`ledger.jobs.run_steps` runs them, each its own
    group commit); resumes a closure a crash interrupted. Returns `FinishClosure`'s answer."""
    yield CloseMerchant(principal, merchant_id, today or date.today())
    while not (yield ContinueClosure(principal, merchant_id, slice_cards_max))["done"]:
        pass
    return (yield FinishClosure(principal, merchant_id))


def close_merchant(run: Callable[[Command], dict[str, Any]], principal: Principal,
                   merchant_id: str, slice_cards_max: int = closure_slice_cards_max
                   ) -> dict[str, Any]:
    """A whole closure through `run`."""
    return run_steps(closure_steps(principal, merchant_id, slice_cards_max), run)


def _progress(job: Job | None) -> dict[str, Any]:
    """The closure's job and progress, for an answer of a step (none for a closure planned
    before jobs were kept)."""
    return {} if job is None else {"job": job.view(), "progress": job.progress()}


def _available(books: Books, m: Merchant) -> int:
    """What custody can pay: its cash and money in transit, less what it already owes."""
    held = sum(books.balance(m.accounts[p]) for p in ("custody_cash", "custody_in_transit"))
    owed = books.balance(m.accounts["refunds_payable"]) + \
        books.balance(m.accounts["release_pending"])
    return max(0, held - owed)
