"""Which ledger item a statement line is: pure decisions, the service applies them.

Order of keys for a credit (DOMAIN.md flow 8): creditor reference, then end-to-end id, then
the bank's reference, then amount + date. The counterparty is the custody account itself: the
items a statement can match are those of the merchant whose account it is (the ledger keeps no
payer names or accounts, so amount + date is matched only within that merchant's sales).

A line carrying a reference Yufu issued (YFS, YFD, YFR, YFF) that names no open item is not
guessed at by amount: our own reference is authoritative, so it is a break.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import Final, NamedTuple

from ledger.bank.model import Direction, EntryStatus, StatementEntry, TxDetail

# The references Yufu issues: YFS + sale seq (one sale), YFD + day + merchant (a day's
# sales), YFR + seq (a release), YFF + seq (a refund).
OWN_REFERENCE_RE: Final = re.compile(r"YF[SDRF][0-9]")


class Match(StrEnum):
    deposit = "deposit"  # one card sale's custodied share
    deposit_batch = "deposit_batch"  # a merchant's day of sales in one credit
    payment = "payment"  # a release or refund instruction paid out of custody
    payment_returned = "payment_returned"  # an instruction's money came back: it failed
    reversal = "reversal"  # undoes an earlier line: the service finds what it reverses
    unmatched = "unmatched"
    not_booked = "not_booked"  # pending or information only: moves nothing


@dataclass(frozen=True, slots=True)
class Line:
    """One unit to match: an entry, or one detail of a batched entry."""

    position: str
    direction: Direction
    booked: bool
    reversal: bool
    amount_fen: int
    booking_date: date | None
    detail: TxDetail

    def references(self) -> list[str]:
        d = self.detail
        found = [d.creditor_reference, d.end_to_end_id, d.bank_reference]
        return [k.strip() for k in found if k and k.strip()]


def lines_of(entries: Sequence[StatementEntry]) -> list[Line]:
    """Split batched entries into their details; an entry without details is one line."""
    lines: list[Line] = []
    for entry in entries:
        details = entry.details or (
            TxDetail(entry.amount_fen, bank_reference=entry.bank_reference),)
        booked = entry.status is EntryStatus.booked
        day = entry.booking_date or entry.value_date
        for index, detail in enumerate(details):
            position = (entry.position if len(details) == 1
                        else f"{entry.position}/TxDtls[{index + 1}]")
            if detail.bank_reference is None and entry.bank_reference is not None:
                detail = replace(detail, bank_reference=entry.bank_reference)
            lines.append(Line(position, entry.direction, booked, entry.reversal,
                              detail.amount_fen, day, detail))
    return lines


@dataclass
class OpenItems:
    """One merchant's open items, used up as lines match them (so one item never matches
    two lines). Every lookup and every `forget` costs O(1) per reference."""

    lookback_days: int  # a sale's credit may be booked up to this many days after it
    # reference -> what the bank credits for the sale (its whole custodied share)
    deposits: dict[str, int] = field(default_factory=dict)
    # reference -> what is still in transit: less, where a person confirmed part by hand
    open_fen: dict[str, int] = field(default_factory=dict)
    batches: dict[str, dict[str, int]] = field(default_factory=dict)  # day ref -> {ref: fen}
    by_amount_day: dict[tuple[int, date], dict[str, None]] = field(default_factory=dict)
    instructions: dict[str, int] = field(default_factory=dict)  # end-to-end id -> fen
    _keys: dict[str, tuple[str, tuple[int, date]]] = field(default_factory=dict)

    def add_deposit(self, reference: str, batch_reference: str, amount_fen: int,
                    open_fen: int, sold_on: date) -> None:
        key = (amount_fen, sold_on)
        self.deposits[reference] = amount_fen
        self.open_fen[reference] = open_fen
        self.batches.setdefault(batch_reference, {})[reference] = amount_fen
        self.by_amount_day.setdefault(key, {})[reference] = None
        self._keys[reference] = (batch_reference, key)

    def add_instruction(self, end_to_end_id: str, amount_fen: int) -> None:
        self.instructions[end_to_end_id] = amount_fen

    def forget(self, refs: Iterable[str]) -> None:
        for ref in refs:
            if self.deposits.pop(ref, None) is not None:
                del self.open_fen[ref]
                batch_reference, key = self._keys.pop(ref)
                del self.batches[batch_reference][ref]
                del self.by_amount_day[key][ref]
            self.instructions.pop(ref, None)

    def same_amount_near(self, amount_fen: int, booked_on: date) -> list[str]:
        """Open sales of this amount made on the booking day or up to `lookback_days` before."""
        found: list[str] = []
        for back in range(self.lookback_days + 1):
            found.extend(self.by_amount_day.get((amount_fen, booked_on - timedelta(back)), ()))
        return found

    def credited_by(self, key: str) -> Found | None:
        """What a credit naming `key` pays in: a sale, a day's sales, or an instruction's money
        coming back."""
        if key in self.deposits:
            return Found(Match.deposit, (key,), self.deposits[key], (self.open_fen[key],))
        batch = self.batches.get(key)
        if batch:
            return Found(Match.deposit_batch, tuple(batch), sum(batch.values()),
                         tuple(self.open_fen[ref] for ref in batch))
        if key in self.instructions:
            return Found(Match.payment_returned, (key,), self.instructions[key])
        return None


class Found(NamedTuple):
    """The open item a reference names, and what the bank must book to match it."""

    match: Match
    refs: tuple[str, ...]  # the deposit references or the instruction's end-to-end id
    expected_fen: int
    amounts: tuple[int, ...] = ()  # for deposits: what each reference still has in transit


@dataclass(frozen=True, slots=True)
class Decision:
    match: Match
    refs: tuple[str, ...] = ()  # the deposit references or the instruction's end-to-end id
    reason: str = ""
    amounts: tuple[int, ...] = ()  # for deposits: what each reference still has in transit


def decide(line: Line, items: OpenItems) -> Decision:
    if not line.booked:
        return Decision(Match.not_booked)
    if line.reversal:
        return Decision(Match.reversal, tuple(line.references()))
    if line.direction is Direction.credit:
        return decide_credit(line, items)
    return decide_debit(line, items)


def decide_credit(line: Line, items: OpenItems) -> Decision:
    refs = line.references()
    for key in refs:
        found = items.credited_by(key)
        if found is not None:
            return _exact(line, key, found)
    own = [key for key in refs if OWN_REFERENCE_RE.match(key)]
    if own:
        return Decision(Match.unmatched, reason=f"{own[0]} names no open sale, day batch or "
                                                "instruction of this custody account")
    return _decide_by_amount(line, items)


def _decide_by_amount(line: Line, items: OpenItems) -> Decision:
    """A credit with no reference to go by: the one open sale of its amount near its day."""
    candidates = ([] if line.booking_date is None
                  else items.same_amount_near(line.amount_fen, line.booking_date))
    if len(candidates) == 1:
        return Decision(Match.deposit, (candidates[0],),
                        amounts=(items.open_fen[candidates[0]],))
    if len(candidates) > 1:
        return Decision(Match.unmatched, reason=f"{len(candidates)} sales of that amount "
                                                "in the days before: no reference to tell "
                                                "them apart")
    return Decision(Match.unmatched, reason="no sale, batch or instruction has this reference, "
                                            "amount and date")


def decide_debit(line: Line, items: OpenItems) -> Decision:
    for key in line.references():
        if key in items.instructions:
            return _exact(line, key, Found(Match.payment, (key,), items.instructions[key]))
    return Decision(Match.unmatched, reason="no pending release or refund has this end-to-end id")


def _exact(line: Line, key: str, found: Found) -> Decision:
    """`key` found the item; it matches only if the bank booked exactly what it expects."""
    if found.expected_fen != line.amount_fen:
        return Decision(Match.unmatched, (key,), f"{key} expects {found.expected_fen} fen, the "
                                                 f"bank booked {line.amount_fen}")
    return Decision(found.match, found.refs, amounts=found.amounts)


def spent(decision: Decision) -> tuple[str, ...]:
    """What a decision uses up, so one ledger item is never matched by two lines."""
    return decision.refs if decision.match in (Match.deposit, Match.deposit_batch,
                                               Match.payment, Match.payment_returned) else ()
