"""The bank's answers to the instructions in its payment file (accept, reject), and the
operator's resolution of a reconciliation break. A rejected instruction fails as an unpaid
one does: a release's money back to earned, a refund's claim back onto the card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.access import require_bank, require_operator
from ledger.auth import Principal
from ledger.bank.reconciliation import Break, BreakStatus
from ledger.bank.store import BreakSelection, InstructionKind, InstructionRef
from ledger.commands import Books, Command, EntryRef
from ledger.custody.lifecycle import (
    BankAnswer,
    Instruction,
    InstructionStatus,
    Merchant,
    Release,
    SettledBy,
    check_unanswered,
)
from ledger.errors import Conflict, InvalidInput, NotFound
from ledger.flows.refunds import fail_refund
from ledger.flows.releases import fail_release

breaks_resolved_per_request_max = 1_000  # breaks one ResolveBreaks names or picks


def instruction_of(books: Books, ref: InstructionRef) -> Instruction:
    """The instruction as this batch holds it."""
    if ref.kind == InstructionKind.release:
        return books.custody.release(ref.id)
    return books.custody.refund(ref.id)


def _answerable(books: Books, principal: Principal, bank_id: str, end_to_end_id: str
                ) -> tuple[Merchant, Instruction]:
    """The instruction with this end-to-end id out of one of the bank's custody accounts,
    not yet answered."""
    require_bank(principal, bank_id)
    found = books.bank.instructions_named([end_to_end_id]).get(end_to_end_id)  # a query
    answered = None if found is None else instruction_of(books, found)
    m = None if answered is None else books.custody.merchant(answered.merchant_id)
    if answered is None or m is None or m.bank_id != bank_id:
        # Another bank's instruction answers as a missing one: end-to-end ids follow the
        # journal's numbers, and a bank must not learn which of them are others'.
        raise NotFound(f"bank {bank_id} has no instruction with end-to-end id "
                       f"{end_to_end_id}", field="end_to_end_id")
    check_unanswered(answered)
    return m, answered


def _answered(books: Books, entry: EntryRef, instruction: Instruction, answer: BankAnswer
              ) -> dict[str, Any]:
    books.custody.answer_instruction(instruction, answer)
    return {"end_to_end_id": instruction.end_to_end_id, "bank_status": answer.value,
            "journal_seq": entry.seq}


@dataclass(frozen=True)
class AcceptInstruction(Command):
    """The bank will pay the instruction (its payment shows on a statement later)."""

    principal: Principal
    bank_id: str
    end_to_end_id: str
    reason: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        _, instruction = _answerable(books, self.principal, self.bank_id, self.end_to_end_id)
        entry = books.append("instruction.accepted", {
            "end_to_end_id": self.end_to_end_id, "bank_id": self.bank_id, "reason": self.reason})
        return _answered(books, entry, instruction, BankAnswer.accepted)


@dataclass(frozen=True)
class RejectInstruction(Command):
    """The bank will not pay it: the instruction fails."""

    principal: Principal
    bank_id: str
    end_to_end_id: str
    reason: str = ""

    def run(self, books: Books) -> dict[str, Any]:
        m, instruction = _answerable(books, self.principal, self.bank_id, self.end_to_end_id)
        entry = books.append("instruction.rejected", {
            "end_to_end_id": self.end_to_end_id, "bank_id": self.bank_id, "reason": self.reason})
        result = _answered(books, entry, instruction, BankAnswer.rejected)
        reason = self.reason or "rejected"
        if isinstance(instruction, Release):
            entry = fail_release(books, m, instruction, reason)
            result["instruction"] = {"release_id": instruction.id,
                                     "status": InstructionStatus.failed.value,
                                     "journal_seq": entry.seq}
        else:
            result["instruction"] = fail_refund(books, m, instruction, reason, SettledBy.bank)
        return result


@dataclass(frozen=True)
class ResolveBreak(Command):
    """The operator says how a break was resolved (outside the ledger: it moves nothing)."""

    principal: Principal
    break_id: int
    resolution: str

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        require_resolution(self.resolution)
        found = books.bank.reconciliation_break(self.break_id)
        if found.status != BreakStatus.open:
            raise Conflict("the break is already resolved", field="break_id")
        return resolve(books, found, self.resolution)


@dataclass(frozen=True)
class ResolveBreaks(Command):
    """Many breaks resolved in one command with one resolution, all or none: those named by
    id (at most `breaks_resolved_per_request_max`), or the oldest open ones a selection
    picks (as many; `more` says whether it picks others still). Each is journaled as one
    `ResolveBreak` is: its audit trail stays its own."""

    principal: Principal
    resolution: str
    break_ids: tuple[int, ...] = ()
    selection: BreakSelection | None = None

    def run(self, books: Books) -> dict[str, Any]:
        require_operator(self.principal)
        require_resolution(self.resolution)
        if bool(self.break_ids) == (self.selection is not None):
            raise InvalidInput("name the breaks by id or pick them by a filter, one of the two",
                               field="break_ids")
        if len(self.break_ids) > breaks_resolved_per_request_max:
            raise InvalidInput(f"at most {breaks_resolved_per_request_max} breaks a request",
                               field="break_ids")
        ids, more = list(self.break_ids), False
        if self.selection is not None:  # the query: before any change
            ids = books.bank.open_break_ids(self.selection, breaks_resolved_per_request_max + 1)
            more = len(ids) > breaks_resolved_per_request_max
            ids = ids[:breaks_resolved_per_request_max]
        found = books.bank.reconciliation_breaks(ids)
        check_resolvable(ids, found)
        resolved = [resolve(books, found[i], self.resolution) for i in ids]
        return {"resolved": [{"break_id": r["break_id"], "journal_seq": r["journal_seq"]}
                             for r in resolved],
                "count": len(resolved), "more": more}


def check_resolvable(ids: list[int], found: dict[int, Break]) -> None:
    """Each id named once, of a break that exists and is open; else refused by its index."""
    first: dict[int, int] = {}
    for index, break_id in enumerate(ids):
        where = f"break_ids[{index}]"
        if first.setdefault(break_id, index) != index:
            raise InvalidInput(f"break {break_id} is named twice", field=where)
        if break_id not in found:
            raise NotFound(f"break {break_id} does not exist", field=where)
        if found[break_id].status != BreakStatus.open:
            raise Conflict(f"break {break_id} is already resolved", field=where)


def require_resolution(resolution: str) -> None:
    if not resolution.strip():
        raise InvalidInput("say how the break was resolved", field="resolution")


def resolve(books: Books, found: Break, resolution: str) -> dict[str, Any]:
    """One open break resolved, and journaled."""
    entry = books.append("reconciliation.break_resolved", {
        "break_id": found.id, "bank_id": found.bank_id, "resolution": resolution})
    books.bank.resolve_break(found.id, resolution, entry.seq)
    return {"break_id": found.id, "status": BreakStatus.resolved.value,
            "journal_seq": entry.seq}
