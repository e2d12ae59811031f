"""Which ledger item a statement line is: pure decisions, the service applies them.

Order of keys for a credit (DOMAIN.md flow 8): creditor reference, then end-to-end id, then
the bank's reference, then amount + date (+ counterparty where the ledger knows one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from ledger.bank.model import Direction, StatementEntry, TxDetail


class Match(StrEnum):
    deposit = "deposit"  # one card sale's custodied share
    deposit_batch = "deposit_batch"  # a merchant's day of sales in one credit
    payment = "payment"  # a release or refund instruction paid out of custody
    payment_returned = "payment_returned"  # an instruction's money came back: it failed
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
        for index, detail in enumerate(details):
            position = (entry.position if len(details) == 1
                        else f"{entry.position}/TxDtls[{index + 1}]")
            bank_ref = detail.bank_reference or entry.bank_reference
            lines.append(Line(position, entry.direction, entry.status == "BOOK", entry.reversal,
                              detail.amount_fen, entry.booking_date or entry.value_date,
                              TxDetail(detail.amount_fen, detail.end_to_end_id,
                                       detail.creditor_reference, detail.remittance_unstructured,
                                       detail.counterparty_name, detail.counterparty_account,
                                       bank_ref)))
    return lines


@dataclass(frozen=True, slots=True)
class Decision:
    match: Match
    refs: tuple[str, ...] = ()  # the deposit references or the instruction's end-to-end id
    reason: str = ""


def decide_credit(line: Line, deposits: Mapping[str, int],
                  batches: Mapping[str, Sequence[tuple[str, int]]],
                  instructions: Mapping[str, int],
                  by_amount_date: Mapping[tuple[int, date], Sequence[str]]) -> Decision:
    """`deposits`: reference -> open fen; `batches`: batch reference -> [(reference, open)];
    `instructions`: end-to-end id -> amount; `by_amount_date`: (fen, sale day) -> refs."""
    for key in line.references():
        if key in deposits:
            return _exact(line, (key,), deposits[key])
        if key in batches:
            refs = tuple(ref for ref, _ in batches[key])
            total = sum(amount for _, amount in batches[key])
            return _exact(line, refs, total, Match.deposit_batch)
        if key in instructions:
            return _exact(line, (key,), instructions[key], Match.payment_returned)
    if line.booking_date is not None:
        candidates = by_amount_date.get((line.amount_fen, line.booking_date), ())
        if len(candidates) == 1:
            return Decision(Match.deposit, (candidates[0],))
        if len(candidates) > 1:
            return Decision(Match.unmatched, reason=f"{len(candidates)} sales of that amount "
                                                    "that day: no reference to tell them apart")
    return Decision(Match.unmatched, reason="no sale, batch or instruction has this reference, "
                                            "amount and date")


def decide_debit(line: Line, instructions: Mapping[str, int]) -> Decision:
    for key in line.references():
        if key in instructions:
            return _exact(line, (key,), instructions[key], Match.payment)
    return Decision(Match.unmatched, reason="no pending release or refund has this end-to-end id")


def _exact(line: Line, refs: tuple[str, ...], expected_fen: int,
           match: Match = Match.deposit) -> Decision:
    if expected_fen != line.amount_fen:
        return Decision(Match.unmatched, refs, f"{refs[0]} expects {expected_fen} fen, the bank "
                                               f"booked {line.amount_fen}")
    return Decision(match, refs)


def decide(line: Line, deposits: Mapping[str, int],
           batches: Mapping[str, Sequence[tuple[str, int]]], instructions: Mapping[str, int],
           by_amount_date: Mapping[tuple[int, date], Sequence[str]]) -> Decision:
    if not line.booked:
        return Decision(Match.not_booked)
    if line.direction is Direction.credit:
        return decide_credit(line, deposits, batches, instructions, by_amount_date)
    return decide_debit(line, instructions)


def spent(decision: Decision) -> Iterable[str]:
    """What a decision uses up, so one ledger item is never matched by two lines."""
    return decision.refs if decision.match in (Match.deposit, Match.deposit_batch,
                                               Match.payment, Match.payment_returned) else ()
