"""Reconciliation (对账): applying one imported statement's lines, once every line is decided
(`ledger.bank.matching`) and everything the import reads has been read
(ledger/flows/statements.py). Nothing here asks the store a query: what a line may need
beyond its decision (the deposits and instructions its references name) was read before the
import's first change, and is read again by id, through the batch, as this import left it.

A statement's matched deposits are cleared in one posting per merchant and statement (in
chunks); then its other lines are applied in file order (payments, returns, reversals,
breaks); then its closing balance is cross-verified. A refusal on the way (the custody cash is
not there) is a break, not a failed import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ledger.bank.matching import OWN_REFERENCE_RE, Decision, Line, Match
from ledger.bank.model import Direction, Statement
from ledger.bank.reconciliation import (
    KIND_OF_MATCH,
    Break,
    BreakKind,
    BreakStatus,
    CrossVerification,
    Deposit,
    DepositStatus,
    LineKind,
    LineStatus,
)
from ledger.bank.store import InstructionRef, MerchantItems, StatementLine
from ledger.commands import Books, IdKind
from ledger.custody.lifecycle import Instruction, InstructionStatus, Merchant, Release, SettledBy
from ledger.errors import LedgerError, require
from ledger.flows.instructions import instruction_of
from ledger.flows.refunds import fail_refund, settle_refund
from ledger.flows.releases import fail_release, settle_release

refs_per_entry_max = 1000  # deposit references listed in one clearing entry
matched_ref_chars_max = 500

Applied = tuple[LineKind, str | None]  # the line's kind and the ledger item it names


@dataclass
class Import:
    """One import as it goes: what it read before its first change, and what it writes last,
    straight to the database."""

    books: Books
    bank_id: str
    today: date
    file_id: int
    # What the lines that may need them name, read up front (`references_needed`):
    # merchant -> reference -> deposit ids, and end-to-end id -> instruction, if any.
    deposits: dict[str, dict[str, list[int]]]
    instructions: dict[str, InstructionRef | None]
    lines: list[StatementLine] = field(default_factory=list)
    cleared: dict[int, int] = field(default_factory=dict)  # deposit id -> clearing line id

    def seen_now(self, deposit: Deposit) -> Deposit:
        """A deposit as this import leaves it so far (its clearings are written last)."""
        line_id = self.cleared.get(deposit.id)
        if line_id is None:
            return deposit
        return replace(deposit, status=DepositStatus.cleared, open_fen=0,
                       cleared_line_id=line_id)

    def named_deposits(self, merchant_id: str, reference: str) -> list[Deposit]:
        ids = self.deposits.get(merchant_id, {}).get(reference)
        require(ids is not None, "what a line names is read before the import's first change")
        return [self.seen_now(self.books.bank.deposit(i)) for i in ids or ()]

    def named_instruction(self, end_to_end_id: str) -> Instruction | None:
        require(end_to_end_id in self.instructions,
                "what a line names is read before the import's first change")
        found = self.instructions[end_to_end_id]
        return None if found is None else instruction_of(self.books, found)


def reconcile(run: Import, statement: Statement, lines: list[Line], ids: list[int],
              decisions: list[Decision], mine: MerchantItems, merchant_id: str
              ) -> dict[str, Any]:
    m = run.books.custody.merchant(merchant_id)
    cleared = _clear_deposits(run, m, statement, ids, decisions, mine)
    outcome: dict[str, int] = defaultdict(int)
    for line, line_id, decision in zip(lines, ids, decisions, strict=True):
        kind, matched_ref = _apply(run, m, line, line_id, decision, mine)
        outcome[kind.value] += 1
        run.lines.append(_line_row(run, statement, line, line_id, kind, matched_ref))
    verified = _cross_verify(run, m, statement)
    return {"account": statement.account, "statement_id": statement.statement_id,
            "merchant_id": m.id, "lines": len(lines), "deposits_cleared_fen": cleared,
            "outcome": dict(outcome), "cross_verification": verified}


def _clear_deposits(run: Import, m: Merchant, statement: Statement, ids: list[int],
                    decisions: list[Decision], mine: MerchantItems) -> int:
    """One clearing transaction per merchant and statement (in chunks), not one per sale."""
    cleared: list[tuple[str, int]] = []
    for line_id, decision in zip(ids, decisions, strict=True):
        if decision.match in (Match.deposit, Match.deposit_batch):
            for ref, amount in zip(decision.refs, decision.amounts, strict=True):
                cleared.append((ref, amount))
                run.cleared[mine.deposit_ids[ref]] = line_id
    for start in range(0, len(cleared), refs_per_entry_max):
        chunk = cleared[start:start + refs_per_entry_max]
        amount = sum(fen for _, fen in chunk)
        run.books.record("deposits.cleared", [(m.accounts["custody_cash"], amount),
                                              (m.accounts["custody_in_transit"], -amount)],
                         {"merchant_id": m.id, "statement_id": statement.statement_id,
                          "references": [ref for ref, _ in chunk], "amount_fen": amount})
    return sum(fen for _, fen in cleared)


def _apply(run: Import, m: Merchant, line: Line, line_id: int, decision: Decision,
           mine: MerchantItems) -> Applied:
    """Settle, fail or undo what a line names; anything else becomes a break."""
    matched_ref = ",".join(decision.refs)[:matched_ref_chars_max] or None
    kind = KIND_OF_MATCH.get(decision.match)
    if kind is not None:
        return kind, matched_ref
    if decision.match in (Match.payment, Match.payment_returned):
        paid = instruction_of(run.books, mine.instructions[decision.refs[0]])
        return _pay(run, m, line, line_id, paid,
                    settled=decision.match is Match.payment), matched_ref
    if decision.match is Match.reversal:
        return _reverse(run, m, line, line_id)
    if line.direction is Direction.credit:
        returned = _settled_instruction(run, m, line.references())
        if returned is not None:
            return _return_settled(run, m, line, line_id, returned)
        confirmed = _confirmed_by_hand(run, m, line, line_id)
        if confirmed is not None:
            return confirmed
    open_break(run, m.id, BreakKind.unmatched_line, decision.reason, line.amount_fen, line_id,
               f"line:{line_id}")
    return LineKind.break_, matched_ref


def references_needed(line: Line, decision: Decision) -> tuple[list[str], list[str]]:
    """What applying the line may look up beyond its decision (see `_apply`), to be read
    before the import's first change: deposit references, and end-to-end ids."""
    if decision.match is Match.reversal:
        refs = line.references()
        return (refs, []) if line.direction is Direction.debit else ([], refs)
    if decision.match is Match.unmatched and line.direction is Direction.credit:
        refs = line.references()
        return [ref for ref in refs if OWN_REFERENCE_RE.match(ref)], refs
    return [], []


def _confirmed_by_hand(run: Import, m: Merchant, line: Line, line_id: int) -> Applied | None:
    """The credit of a sale (or day batch) whose arrival a person already confirmed
    (ConfirmDeposit): the custody cash is booked, so the line is its evidence, not a break."""
    for ref in line.references():
        if not OWN_REFERENCE_RE.match(ref):
            continue
        named = run.named_deposits(m.id, ref)
        if named and all(d.confirmed_by_hand for d in named) \
                and sum(d.amount_fen for d in named) == line.amount_fen:
            run.books.bank.attach_line([d.id for d in named], line_id)
            return LineKind.deposit_confirmed_by_hand, ref
    return None


def _pay(run: Import, m: Merchant, line: Line, line_id: int, instruction: Instruction,
         settled: bool) -> LineKind:
    """The bank paid the instruction (settled), or its money came straight back (failed)."""
    books = run.books
    checkpoint = books.checkpoint()
    try:
        if settled:
            _settle(books, m, instruction)
        else:
            _fail(books, m, instruction, "returned by the bank")
    except LedgerError as refusal:  # e.g. the custody cash is not there: say so, not fail
        books.rewind(checkpoint)
        open_break(run, m.id, BreakKind.unmatched_line, refusal.detail, line.amount_fen,
                   line_id, f"line:{line_id}")
        return LineKind.break_
    return LineKind.payment_settled if settled else LineKind.payment_failed


def _settle(books: Books, m: Merchant, instruction: Instruction) -> None:
    if isinstance(instruction, Release):
        settle_release(books, m, instruction, SettledBy.statement)
    else:
        settle_refund(books, m, instruction, SettledBy.statement)


def _fail(books: Books, m: Merchant, instruction: Instruction, reason: str) -> None:
    if isinstance(instruction, Release):
        fail_release(books, m, instruction, reason)
    else:
        fail_refund(books, m, instruction, reason, SettledBy.statement)


def _settled_instruction(run: Import, m: Merchant, refs: Sequence[str]) -> Instruction | None:
    """The merchant's settled instruction one of these references names (as this import
    left it: a debit earlier in the file may have settled it)."""
    for ref in refs:
        instruction = run.named_instruction(ref)
        if instruction is not None and instruction.merchant_id == m.id \
                and instruction.status == InstructionStatus.settled:
            return instruction
    return None


def _return_settled(run: Import, m: Merchant, line: Line, line_id: int,
                    instruction: Instruction) -> Applied:
    """A paid instruction's money came back: the payment is undone and the instruction
    fails (a release back to earned, a refund's claim back onto the card)."""
    books, e2e = run.books, instruction.end_to_end_id
    if instruction.amount_fen != line.amount_fen:
        open_break(run, m.id, BreakKind.returned_after_settlement,
                   f"{e2e} paid {instruction.amount_fen} fen, the bank returned "
                   f"{line.amount_fen}", line.amount_fen, line_id, f"line:{line_id}")
        return LineKind.break_, e2e
    what = "release" if isinstance(instruction, Release) else "refund"
    pending = "release_pending" if isinstance(instruction, Release) else "refunds_payable"
    checkpoint = books.checkpoint()
    try:
        books.record(f"{what}.returned", [(m.accounts["custody_cash"], line.amount_fen),
                                          (m.accounts[pending], -line.amount_fen)],
                     {"merchant_id": m.id, "end_to_end_id": e2e, "amount_fen": line.amount_fen})
        _fail(books, m, instruction, "returned by the bank after payment")
    except LedgerError as refusal:
        books.rewind(checkpoint)
        open_break(run, m.id, BreakKind.returned_after_settlement, refusal.detail,
                   line.amount_fen, line_id, f"line:{line_id}")
        return LineKind.break_, e2e
    return LineKind.payment_returned, e2e


def _reverse(run: Import, m: Merchant, line: Line, line_id: int) -> Applied:
    """A reversal undoes the line it reverses: a reversed credit puts the deposits it cleared
    back in transit; a reversed debit returns the instruction it paid. Else it is a break."""
    refs = line.references()
    if line.direction is Direction.debit:
        for ref in refs:
            cleared = _cleared_by_one_line(run.named_deposits(m.id, ref), line.amount_fen)
            if cleared:
                return _unclear(run, m, line, line_id, ref, cleared)
    else:
        returned = _settled_instruction(run, m, refs)
        if returned is not None:
            return _return_settled(run, m, line, line_id, returned)
    open_break(run, m.id, BreakKind.unmatched_reversal,
               "a reversal of nothing this ledger matched: no cleared sale or paid "
               "instruction has its reference and amount", line.amount_fen, line_id,
               f"line:{line_id}")
    return LineKind.break_, ",".join(refs)[:matched_ref_chars_max] or None


def _cleared_by_one_line(deposits: list[Deposit], amount_fen: int) -> list[Deposit]:
    """The deposits one statement line cleared that add up to `amount_fen` (a reversal undoes
    one line), or none."""
    by_line: dict[int, list[Deposit]] = defaultdict(list)
    for d in deposits:
        if d.status == DepositStatus.cleared and d.cleared_line_id is not None:
            by_line[d.cleared_line_id].append(d)
    for group in by_line.values():
        if sum(d.amount_fen for d in group) == amount_fen:
            return group
    return []


def _unclear(run: Import, m: Merchant, line: Line, line_id: int, ref: str,
             deposits: list[Deposit]) -> Applied:
    books = run.books
    checkpoint = books.checkpoint()
    try:
        books.record("deposits.reversed", [(m.accounts["custody_in_transit"], line.amount_fen),
                                           (m.accounts["custody_cash"], -line.amount_fen)],
                     {"merchant_id": m.id, "references": [d.reference for d in deposits],
                      "amount_fen": line.amount_fen})
    except LedgerError as refusal:  # the cash was paid out since: a person must look
        books.rewind(checkpoint)
        open_break(run, m.id, BreakKind.unmatched_reversal, refusal.detail, line.amount_fen,
                   line_id, f"line:{line_id}")
        return LineKind.break_, ref
    # Cleared by this import: not cleared after all; by an earlier one: pending again.
    earlier = [d.id for d in deposits if run.cleared.pop(d.id, None) is None]
    books.bank.reopen_deposits(earlier)
    return LineKind.reversal, ref


def open_break(run: Import, merchant_id: str | None, kind: BreakKind, reason: str,
               amount_fen: int, line_id: int | None, item_ref: str) -> int:
    books = run.books
    break_id = books.draw_id(IdKind.reconciliation_break)
    entry = books.append("reconciliation.break_opened", {
        "break_id": break_id, "bank_id": run.bank_id, "merchant_id": merchant_id,
        "kind": kind.value, "reason": reason, "amount_fen": amount_fen, "item_ref": item_ref})
    books.bank.add_break(Break(break_id, run.bank_id, merchant_id, kind, reason, amount_fen,
                               line_id, item_ref, run.today, BreakStatus.open, None, entry.seq,
                               None))
    return break_id


def _line_row(run: Import, statement: Statement, line: Line, line_id: int, kind: LineKind,
              matched_ref: str | None) -> StatementLine:
    d = line.detail
    return StatementLine(
        line_id, run.file_id, run.bank_id, statement.account, statement.statement_id,
        line.position, line.direction.value,
        (LineStatus.booked if line.booked else LineStatus.not_booked).value, line.reversal,
        line.amount_fen,
        line.booking_date, d.end_to_end_id, d.creditor_reference, d.bank_reference,
        d.counterparty_name, kind.value, matched_ref)


def _cross_verify(run: Import, m: Merchant, statement: Statement) -> dict[str, Any] | None:
    """交叉验证: the bank's closing booked balance against the ledger's custody cash once the
    statement's lines are applied. A difference is journaled with its amount: it is a signal
    against the merchant in risk tiering (DOMAIN.md flow 9, fund flows)."""
    if statement.closing_booked_fen is None:
        return None
    books = run.books
    ledger_fen = books.balance(m.accounts["custody_cash"])
    difference = statement.closing_booked_fen - ledger_fen
    closing = statement.closing_date or run.today
    view = {"merchant_id": m.id, "bank_id": run.bank_id, "account": statement.account,
            "statement_id": statement.statement_id, "closing_date": closing.isoformat(),
            "bank_balance_fen": statement.closing_booked_fen, "ledger_balance_fen": ledger_fen,
            "difference_fen": difference, "result": "match" if difference == 0 else "difference"}
    entry = books.append("custody.cross_verified", view)
    books.bank.add_cross_verification(CrossVerification(
        entry.seq, run.bank_id, m.id, statement.account, statement.statement_id, run.file_id,
        closing, statement.closing_booked_fen, ledger_fen))
    return {**view, "journal_seq": entry.seq}
