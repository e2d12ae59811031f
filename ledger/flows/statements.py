"""Statement import (对账): a custodian bank's statement file in, each of its lines matched to
what the ledger expects, one command in one group commit like every write.

An import reads everything it needs before its first change: the bank's merchants, the
statements imported before, each merchant's open items, what the lines that may need it name
(deposits, instructions), the deposits overdue. Those are the store's queries
(ledger/bank/store.py): they see every earlier command of the group commit, and would be
refused after a change. Then it decides every line (pure: `ledger.bank.matching`) and applies
them statement by statement (ledger/flows/reconcile.py), flags the overdue deposits this
import did not clear, and writes the file, its lines and the deposits they cleared last, in
three statements straight to the database (a day's file may hold 100,000 lines): nothing is
refused after.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.access import require_bank
from ledger.auth import Principal
from ledger.bank.matching import Decision, Line, decide, lines_of, spent
from ledger.bank.model import ParsedFile
from ledger.bank.reconciliation import BreakKind
from ledger.bank.statements import read_file
from ledger.bank.store import (
    ImportedFile,
    ImportedStatement,
    InstructionRef,
    MerchantItems,
    OverdueDeposit,
    StatementFile,
)
from ledger.collector import collector_paused
from ledger.commands import Books, Command, IdKind
from ledger.errors import Conflict, InvalidInput, require
from ledger.flows.reconcile import (
    About,
    Decided,
    Import,
    open_break,
    reconcile,
    references_needed,
)
from ledger.flows.sorting import (
    Sorted,
    StatementOutcome,
    check_importable,
    sort_statements,
)

filename_chars_max = 200


@dataclass(frozen=True)
class ImportStatementFile(Command):
    """Import one statement file in one command. `parsed` is the file already read (the API
    reads it before it queues the command, so a big file's parse does not hold up every
    other write); without it the file is read here."""

    principal: Principal
    bank_id: str
    filename: str
    data: bytes
    today: date
    parsed: ParsedFile | None = None
    all_or_nothing: bool = False

    def run(self, books: Books) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        check_filename(self.filename)
        parsed = self.parsed or read_file(self.data, self.filename or None)
        digest = hashlib.sha256(self.data).digest()
        earlier = books.bank.file_by_hash(digest)
        sorted_ = sort_statements(books, self.bank_id, parsed)
        if earlier is not None:
            return duplicate_file(earlier, digest, self.bank_id, sorted_)
        check_importable(sorted_, all_or_nothing=self.all_or_nothing)
        with collector_paused():  # the parsed file and its lines: see ledger/collector.py
            return self._import(books, digest, parsed.format, sorted_)

    def _import(self, books: Books, digest: bytes, file_format: str,
                sorted_: list[Sorted]) -> dict[str, Any]:
        # Every query first: a query after the first change would be refused.
        fresh = [s for s in sorted_ if s.outcome is StatementOutcome.imported]
        decided = decided_statements(books, fresh)
        deposits, instructions = named_items(books, decided)
        overdue = overdue_deposits(books, decided)
        # Then the changes.
        run = Import(books, self.bank_id, self.today, books.draw_id(IdKind.statement_file),
                     deposits, instructions)
        line_ids = books.bank.line_ids(sum(len(d.lines) for d in decided))
        entry = books.append("statement.imported", {
            "file_id": run.file_id, "bank_id": self.bank_id, "sha256": digest.hex(),
            "format": file_format, "filename": self.filename,
            "statements": [s.view() for s in sorted_]})
        books.bank.write_file(StatementFile(
            run.file_id, self.bank_id, digest, file_format, self.filename, self.data,
            len(sorted_), len(line_ids), entry.seq))
        books.bank.write_statements(statement_rows(
            fresh, [d.statement_ref for d in decided], self.bank_id, run.file_id, entry.seq))
        results, start = [], 0
        for d in decided:
            results.append(reconcile(run, d, line_ids[start:start + len(d.lines)]))
            start += len(d.lines)
        flagged = flag_overdue(run, overdue)
        books.bank.write_lines(run.lines, run.cleared)
        return {"duplicate": False, "file_id": run.file_id, "sha256": digest.hex(),
                "journal_seq": entry.seq, "statements": answers(sorted_, results),
                "overdue_breaks": flagged}


def check_filename(filename: str) -> None:
    if len(filename) > filename_chars_max:
        raise InvalidInput(f"must be at most {filename_chars_max} characters", field="filename")


def duplicate_file(earlier: ImportedFile, digest: bytes, bank_id: str,
                   sorted_: Sequence[Sorted]) -> dict[str, Any]:
    """The answer to a file imported before, byte for byte: what each of its statements is
    now (imported then, or not: a statement refused then, say for an account filed since,
    is imported when the bank sends it in a new file). Another bank's file is not this
    bank's to know about."""
    if earlier.bank_id != bank_id:
        raise Conflict("this very file was received before from another bank: a custody "
                       "statement comes from its own bank", field="file")
    return {"duplicate": True, "file_id": earlier.id, "sha256": digest.hex(),
            "journal_seq": earlier.imported_seq,
            "statements": [_as_before(s) for s in sorted_]}


def _as_before(s: Sorted) -> dict[str, Any]:
    """A statement of a file received before, as sending those bytes again names it."""
    if s.outcome is not StatementOutcome.imported:
        return s.view()
    return {**s.view(), "status": StatementOutcome.refused.value, "field": s.position,
            "reason": "not imported from this file before; this very file again imports "
                      "nothing: send the statement in a new file"}


def statement_rows(fresh: Sequence[Sorted], ids: Sequence[int], bank_id: str, file_id: int,
                   imported_seq: int) -> list[ImportedStatement]:
    """The `bank_statements` rows of the statements a file imports."""
    rows = []
    for s, statement_ref in zip(fresh, ids, strict=True):
        st = s.statement
        require(st is not None and s.fingerprint is not None, "an imported statement is read")
        assert st is not None and s.fingerprint is not None  # for mypy: required just above
        rows.append(ImportedStatement(
            statement_ref, bank_id, st.account, st.statement_id, s.fingerprint, file_id,
            st.position, st.kind.value, st.format, st.opening_booked_fen, st.closing_booked_fen,
            st.opening_date, st.closing_date, len(lines_of(st.entries)), imported_seq))
    return rows


def answers(sorted_: Sequence[Sorted], results: Sequence[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    """Every statement of the file in file order: an imported one with what its lines did."""
    imported = iter(results)
    return [{**s.view(), **next(imported)} if s.outcome is StatementOutcome.imported
            else s.view() for s in sorted_]


def decided_statements(books: Books, fresh: list[Sorted]) -> list[Decided]:
    """Each fresh statement's lines, decided against its merchant's open items, with the id
    its row will have."""
    items = books.bank.open_items({s.merchant_id for s in fresh if s.merchant_id})
    decided = []
    for s in fresh:
        require(s.statement is not None and s.merchant_id is not None,
                "an imported statement is read and filed")
        assert s.statement is not None and s.merchant_id is not None  # for mypy
        lines = lines_of(s.statement.entries)
        mine = items[s.merchant_id]
        decided.append(Decided(s.statement, s.merchant_id, lines, decide_lines(lines, mine),
                               mine, books.draw_id(IdKind.bank_statement)))
    return decided


def decide_lines(lines: list[Line], mine: MerchantItems) -> list[Decision]:
    """Every line of a statement, in file order: an item one line matched is not there for
    the next."""
    decisions = []
    for line in lines:
        decision = decide(line, mine.items)
        mine.items.forget(spent(decision))
        decisions.append(decision)
    return decisions


def named_items(books: Books, decided: Sequence[Decided]
           ) -> tuple[dict[str, dict[str, list[int]]], dict[str, InstructionRef | None]]:
    """What the lines that may need them name (a reversal, a credit nobody expected): the
    merchant's deposits by reference, and instructions by end-to-end id."""
    deposit_refs: dict[str, set[str]] = defaultdict(set)
    end_to_end_ids: set[str] = set()
    for d in decided:
        for line, decision in zip(d.lines, d.decisions, strict=True):
            references, e2e = references_needed(line, decision)
            deposit_refs[d.merchant_id].update(references)
            end_to_end_ids.update(e2e)
    deposits = {}
    for merchant_id, wanted in sorted(deposit_refs.items()):
        found = books.bank.deposits_named(merchant_id, wanted) if wanted else {}
        deposits[merchant_id] = {ref: found.get(ref, []) for ref in wanted}
    instructions = books.bank.instructions_named(end_to_end_ids)
    return deposits, {e2e: instructions.get(e2e) for e2e in end_to_end_ids}


def overdue_deposits(books: Books, decided: Sequence[Decided]
                     ) -> list[tuple[str, OverdueDeposit]]:
    """A sale whose money the bank has not shown by the statements' latest date is a break,
    once: the candidates as they stand before this import (it leaves out those it clears)."""
    return overdue_by(books, [(d.merchant_id, d.statement.closing_date) for d in decided])


def overdue_by(books: Books, closings: Iterable[tuple[str, date | None]]
               ) -> list[tuple[str, OverdueDeposit]]:
    """The pending deposits due before each merchant's latest closing date (a query)."""
    latest: dict[str, date] = {}
    for merchant_id, closing in closings:
        if closing is not None:
            latest[merchant_id] = max(latest.get(merchant_id, closing), closing)
    return [(merchant_id, d) for merchant_id, closing in sorted(latest.items())
            for d in books.bank.overdue_deposits(merchant_id, closing)]


def flag_overdue(run: Import, overdue: Iterable[tuple[str, OverdueDeposit]]) -> list[int]:
    """A break for each overdue deposit the import did not clear."""
    return [open_break(run, merchant_id, BreakKind.missing_line,
                       f"no bank credit for sale {d.reference} expected by {d.expected_by}",
                       About(d.open_fen, None, d.reference))
            for merchant_id, d in overdue if d.id not in run.cleared]
