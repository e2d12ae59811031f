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
from typing import Any, NamedTuple

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


@dataclass
class Decided:
    """A fresh statement with every line decided, before the import changes anything."""

    statement: Statement
    merchant_id: str
    lines: list[Line]
    decisions: list[Decision]
    mine: MerchantItems  # what the merchant's lines could match, as the decisions left it
    statement_ref: int  # its row in bank_statements, which its lines name


class About(NamedTuple):
    """What a break is about: an amount, and a statement line or a sale's reference."""

    amount_fen: int
    line_id: int | None
    item_ref: str


def reconcile(run: Import, decided: Decided, ids: list[int]) -> dict[str, Any]:
    """Apply one statement's lines (`ids`: theirs), then cross-verify its closing balance."""
    statement = decided.statement
    applying, cleared, outcome = apply_lines(run, decided, ids)
    return {"account": statement.account, "statement_id": statement.statement_id,
            "statement_ref": decided.statement_ref, "merchant_id": applying.m.id,
            "lines": len(decided.lines),
            "deposits_cleared_fen": cleared, "outcome": outcome,
            "cross_verification": applying.cross_verify()}


def apply_lines(run: Import, decided: Decided, ids: list[int]
                ) -> tuple[Applying, int, dict[str, int]]:
    """Apply a statement's lines, or a slice of them (ledger/flows/imports.py): what it
    cleared in fen, and how many lines of each kind."""
    applying = Applying(run, decided.statement,
                        run.books.custody.merchant(decided.merchant_id), decided.mine,
                        decided.statement_ref)
    cleared = applying.clear_deposits(ids, decided.decisions)
    outcome: dict[str, int] = defaultdict(int)
    for line, line_id, decision in zip(decided.lines, ids, decided.decisions, strict=True):
        kind, matched_ref = applying.apply(line, line_id, decision)
        outcome[kind.value] += 1
        run.lines.append(applying.row(line, line_id, kind, matched_ref))
    return applying, cleared, dict(outcome)


def references_needed(line: Line, decision: Decision) -> tuple[list[str], list[str]]:
    """What applying the line may look up beyond its decision (see `Applying.apply`), to be
    read before the import's first change: deposit references, and end-to-end ids."""
    if decision.match is Match.reversal:
        refs = line.references()
        return (refs, []) if line.direction is Direction.debit else ([], refs)
    if decision.match is Match.unmatched and line.direction is Direction.credit:
        refs = line.references()
        return [ref for ref in refs if OWN_REFERENCE_RE.match(ref)], refs
    return [], []


def open_break(run: Import, merchant_id: str | None, kind: BreakKind, reason: str,
               about: About) -> int:
    books = run.books
    break_id = books.draw_id(IdKind.reconciliation_break)
    entry = books.append("reconciliation.break_opened", {
        "break_id": break_id, "bank_id": run.bank_id, "merchant_id": merchant_id,
        "kind": kind.value, "reason": reason, "amount_fen": about.amount_fen,
        "item_ref": about.item_ref})
    books.bank.add_break(Break(break_id, run.bank_id, merchant_id, kind, reason,
                               about.amount_fen, about.line_id, about.item_ref, run.today,
                               BreakStatus.open, None, entry.seq, None))
    return break_id


@dataclass
class Applying:
    """One statement's lines being applied, for the merchant whose custody account it is."""

    run: Import
    statement: Statement
    m: Merchant
    mine: MerchantItems
    statement_ref: int

    def clear_deposits(self, ids: list[int], decisions: list[Decision]) -> int:
        """One clearing transaction per merchant and statement (in chunks), not one per
        sale."""
        run, m = self.run, self.m
        cleared: list[tuple[str, int]] = []
        for line_id, decision in zip(ids, decisions, strict=True):
            if decision.match in (Match.deposit, Match.deposit_batch):
                for ref, amount in zip(decision.refs, decision.amounts, strict=True):
                    cleared.append((ref, amount))
                    run.cleared[self.mine.deposit_ids[ref]] = line_id
        for start in range(0, len(cleared), refs_per_entry_max):
            chunk = cleared[start:start + refs_per_entry_max]
            amount = sum(fen for _, fen in chunk)
            run.books.record("deposits.cleared", [(m.accounts["custody_cash"], amount),
                                                  (m.accounts["custody_in_transit"], -amount)],
                             {"merchant_id": m.id, "statement_id": self.statement.statement_id,
                              "references": [ref for ref, _ in chunk], "amount_fen": amount})
        return sum(fen for _, fen in cleared)

    def apply(self, line: Line, line_id: int, decision: Decision) -> Applied:
        """Settle, fail or undo what a line names; anything else becomes a break."""
        matched_ref = ",".join(decision.refs)[:matched_ref_chars_max] or None
        kind = KIND_OF_MATCH.get(decision.match)
        if kind is not None:
            return kind, matched_ref
        if decision.match in (Match.payment, Match.payment_returned):
            paid = instruction_of(self.run.books, self.mine.instructions[decision.refs[0]])
            return self._pay(line, line_id, paid,
                             settled=decision.match is Match.payment), matched_ref
        if decision.match is Match.reversal:
            return self._reverse(line, line_id)
        if line.direction is Direction.credit:
            returned = self._settled_instruction(line.references())
            if returned is not None:
                return self._return_settled(line, line_id, returned)
            confirmed = self._confirmed_by_hand(line, line_id)
            if confirmed is not None:
                return confirmed
        return self._break(line, line_id, BreakKind.unmatched_line, decision.reason), \
            matched_ref

    def _confirmed_by_hand(self, line: Line, line_id: int) -> Applied | None:
        """The credit of a sale (or day batch) whose arrival a person already confirmed
        (ConfirmDeposit): the custody cash is booked, so the line is its evidence, not a
        break."""
        for ref in line.references():
            if not OWN_REFERENCE_RE.match(ref):
                continue
            named = self.run.named_deposits(self.m.id, ref)
            if named and all(d.confirmed_by_hand for d in named) \
                    and sum(d.amount_fen for d in named) == line.amount_fen:
                self.run.books.bank.attach_line([d.id for d in named], line_id)
                return LineKind.deposit_confirmed_by_hand, ref
        return None

    def _pay(self, line: Line, line_id: int, instruction: Instruction, settled: bool
             ) -> LineKind:
        """The bank paid the instruction (settled), or its money came straight back."""
        books = self.run.books
        checkpoint = books.checkpoint()
        try:
            if settled:
                _settle(books, self.m, instruction)
            else:
                _fail(books, self.m, instruction, "returned by the bank")
        except LedgerError as refusal:  # e.g. the custody cash is not there: say so, not fail
            books.rewind(checkpoint)
            return self._break(line, line_id, BreakKind.unmatched_line, refusal.detail)
        return LineKind.payment_settled if settled else LineKind.payment_failed

    def _settled_instruction(self, refs: Sequence[str]) -> Instruction | None:
        """The merchant's settled instruction one of these references names (as this import
        left it: a debit earlier in the file may have settled it)."""
        for ref in refs:
            instruction = self.run.named_instruction(ref)
            if instruction is not None and instruction.merchant_id == self.m.id \
                    and instruction.status == InstructionStatus.settled:
                return instruction
        return None

    def _return_settled(self, line: Line, line_id: int, instruction: Instruction) -> Applied:
        """A paid instruction's money came back: the payment is undone and the instruction
        fails (a release back to earned, a refund's claim back onto the card)."""
        books, m, e2e = self.run.books, self.m, instruction.end_to_end_id
        if instruction.amount_fen != line.amount_fen:
            return self._break(line, line_id, BreakKind.returned_after_settlement,
                               f"{e2e} paid {instruction.amount_fen} fen, the bank returned "
                               f"{line.amount_fen}"), e2e
        what = "release" if isinstance(instruction, Release) else "refund"
        pending = "release_pending" if isinstance(instruction, Release) else "refunds_payable"
        checkpoint = books.checkpoint()
        try:
            books.record(f"{what}.returned", [(m.accounts["custody_cash"], line.amount_fen),
                                              (m.accounts[pending], -line.amount_fen)],
                         {"merchant_id": m.id, "end_to_end_id": e2e,
                          "amount_fen": line.amount_fen})
            _fail(books, m, instruction, "returned by the bank after payment")
        except LedgerError as refusal:
            books.rewind(checkpoint)
            return self._break(line, line_id, BreakKind.returned_after_settlement,
                               refusal.detail), e2e
        return LineKind.payment_returned, e2e

    def _reverse(self, line: Line, line_id: int) -> Applied:
        """A reversal undoes the line it reverses: a reversed credit puts the deposits it
        cleared back in transit; a reversed debit returns the instruction it paid. Else it is
        a break."""
        refs = line.references()
        if line.direction is Direction.debit:
            for ref in refs:
                cleared = _cleared_by_one_line(self.run.named_deposits(self.m.id, ref),
                                               line.amount_fen)
                if cleared:
                    return self._unclear(line, line_id, ref, cleared)
        else:
            returned = self._settled_instruction(refs)
            if returned is not None:
                return self._return_settled(line, line_id, returned)
        return self._break(line, line_id, BreakKind.unmatched_reversal,
                           "a reversal of nothing this ledger matched: no cleared sale or paid "
                           "instruction has its reference and amount"), \
            ",".join(refs)[:matched_ref_chars_max] or None

    def _unclear(self, line: Line, line_id: int, ref: str, deposits: list[Deposit]
                 ) -> Applied:
        run, m = self.run, self.m
        checkpoint = run.books.checkpoint()
        try:
            run.books.record("deposits.reversed",
                             [(m.accounts["custody_in_transit"], line.amount_fen),
                              (m.accounts["custody_cash"], -line.amount_fen)],
                             {"merchant_id": m.id, "references": [d.reference for d in deposits],
                              "amount_fen": line.amount_fen})
        except LedgerError as refusal:  # the cash was paid out since: a person must look
            run.books.rewind(checkpoint)
            return self._break(line, line_id, BreakKind.unmatched_reversal,
                               refusal.detail), ref
        # Cleared by this import: not cleared after all; by an earlier one: pending again.
        run.books.bank.reopen_deposits([d.id for d in deposits
                                        if run.cleared.pop(d.id, None) is None])
        return LineKind.reversal, ref

    def _break(self, line: Line, line_id: int, kind: BreakKind, reason: str) -> LineKind:
        open_break(self.run, self.m.id, kind, reason,
                   About(line.amount_fen, line_id, f"line:{line_id}"))
        return LineKind.break_

    def row(self, line: Line, line_id: int, kind: LineKind, matched_ref: str | None
            ) -> StatementLine:
        d, s = line.detail, self.statement
        return StatementLine(
            line_id, self.run.file_id, self.run.bank_id, s.account, s.statement_id,
            line.position, line.direction.value,
            (LineStatus.booked if line.booked else LineStatus.not_booked).value, line.reversal,
            line.amount_fen, line.booking_date, d.end_to_end_id, d.creditor_reference,
            d.bank_reference, d.counterparty_name, kind.value, matched_ref, self.statement_ref,
            d.uetr)

    def cross_verify(self) -> dict[str, Any] | None:
        """交叉验证: the bank's closing booked balance against the ledger's custody cash once
        the statement's lines are applied. A difference is journaled with its amount: it is a
        signal against the merchant in risk tiering (DOMAIN.md flow 9, fund flows)."""
        s, run, m = self.statement, self.run, self.m
        if s.closing_booked_fen is None:
            return None
        ledger_fen = run.books.balance(m.accounts["custody_cash"])
        difference = s.closing_booked_fen - ledger_fen
        closing = s.closing_date or run.today
        view = {"merchant_id": m.id, "bank_id": run.bank_id, "account": s.account,
                "statement_id": s.statement_id, "closing_date": closing.isoformat(),
                "bank_balance_fen": s.closing_booked_fen, "ledger_balance_fen": ledger_fen,
                "difference_fen": difference,
                "result": "match" if difference == 0 else "difference"}
        entry = run.books.append("custody.cross_verified", view)
        run.books.bank.add_cross_verification(CrossVerification(
            entry.seq, run.bank_id, m.id, s.account, s.statement_id, run.file_id, closing,
            s.closing_booked_fen, ledger_fen))
        return {**view, "journal_seq": entry.seq}


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
