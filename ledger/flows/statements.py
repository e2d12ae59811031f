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
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from ledger.access import require_bank
from ledger.auth import Principal
from ledger.bank.matching import Decision, Line, decide, lines_of, spent
from ledger.bank.model import Statement
from ledger.bank.reconciliation import BreakKind
from ledger.bank.statements import detect_and_parse
from ledger.bank.store import InstructionRef, MerchantItems, OverdueDeposit, StatementFile
from ledger.collector import collector_paused
from ledger.commands import Books, Command, IdKind
from ledger.errors import InvalidInput, Refused
from ledger.flows.reconcile import (
    About,
    Decided,
    Import,
    open_break,
    reconcile,
    references_needed,
)

filename_chars_max = 200
custody_currency = "CNY"  # every custody account, like every ledger account, is in CNY


@dataclass(frozen=True)
class ImportStatementFile(Command):
    """Import one statement file. `statements` is the file already parsed (the API parses
    before it queues the command, so a big file's parse does not hold up every other
    write); without it the file is parsed here."""

    principal: Principal
    bank_id: str
    filename: str
    data: bytes
    today: date
    statements: tuple[Statement, ...] | None = None

    def run(self, books: Books) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        if len(self.filename) > filename_chars_max:
            raise InvalidInput(f"must be at most {filename_chars_max} characters",
                               field="filename")
        parsed = list(self.statements) if self.statements is not None \
            else detect_and_parse(self.data, self.filename or None)
        digest = hashlib.sha256(self.data).digest()
        earlier = books.bank.file_by_hash(digest)
        if earlier is not None:
            return {"duplicate": True, "file_id": earlier.id, "sha256": digest.hex(),
                    "journal_seq": earlier.imported_seq, "statements": []}
        accounts = books.bank.merchants_by_account(self.bank_id)
        statements = identified(parsed, accounts, self.bank_id)
        fresh = fresh_statements(books, self.bank_id, statements)
        with collector_paused():  # the parsed file and its lines: see ledger/collector.py
            return self._import(books, digest, statements, fresh, accounts)

    def _import(self, books: Books, digest: bytes, statements: list[Statement],
                fresh: list[Statement], accounts: dict[str, str]) -> dict[str, Any]:
        # Every query first: a query after the first change would be refused.
        decided = decided_statements(books, fresh, accounts)
        deposits, instructions = named_items(books, decided)
        overdue = overdue_deposits(books, decided)
        # Then the changes.
        run = Import(books, self.bank_id, self.today, books.draw_id(IdKind.statement_file),
                     deposits, instructions)
        line_ids = books.bank.line_ids(sum(len(d.lines) for d in decided))
        file_format = statements[0].format
        entry = books.append("statement.imported", {
            "file_id": run.file_id, "bank_id": self.bank_id, "sha256": digest.hex(),
            "format": file_format, "filename": self.filename,
            "statements": summary(statements, fresh)})
        results, start = [], 0
        for d in decided:
            results.append(reconcile(run, d, line_ids[start:start + len(d.lines)]))
            start += len(d.lines)
        flagged = flag_overdue(run, overdue)
        books.bank.write_import(StatementFile(
            run.file_id, self.bank_id, digest, file_format, self.filename, self.data,
            len(statements), len(line_ids), entry.seq), run.lines, run.cleared)
        return {"duplicate": False, "file_id": run.file_id, "sha256": digest.hex(),
                "journal_seq": entry.seq, "statements": results, "overdue_breaks": flagged}


def identified(statements: list[Statement], accounts: dict[str, str],
               bank_id: str) -> list[Statement]:
    """Each statement under the custody account it is for, and with an id that names it.

    MT940's `:25:` may be `BIC/account`; our CSV has no statement id of its own (the parser
    gives `account:currency`), so its statement is the day its closing balance names, or,
    without one, the file."""
    named = []
    for index, s in enumerate(statements):
        account = s.account if s.account in accounts else s.account.rpartition("/")[2]
        if account not in accounts:
            raise Refused(f"account {s.account} is not a custody account held at {bank_id}",
                          field=f"statements[{index}].account")
        if s.currency != custody_currency:
            raise Refused(f"the statement is in {s.currency}; custody accounts are in "
                          f"{custody_currency}", field=f"statements[{index}].currency")
        statement_id = s.statement_id
        if s.format == "csv":
            day = s.closing_date.isoformat() if s.closing_date else s.message_id
            statement_id = f"{statement_id}:{day}"
        named.append(replace(s, account=account, statement_id=statement_id))
    return named


def fresh_statements(books: Books, bank_id: str, statements: list[Statement]
                     ) -> list[Statement]:
    """The statements not imported before (a statement repeated inside the file counts
    once, too)."""
    seen = books.bank.statements_seen(bank_id, [(s.account, s.statement_id)
                                                for s in statements])
    fresh: list[Statement] = []
    for s in statements:
        if (s.account, s.statement_id) not in seen:
            seen.add((s.account, s.statement_id))
            fresh.append(s)
    return fresh


def summary(statements: list[Statement], fresh: list[Statement]) -> list[dict[str, Any]]:
    """The file's statements as the import's journal entry names them."""
    fresh_ids = {id(s) for s in fresh}
    return [{"account": s.account, "statement_id": s.statement_id,
             "closing_booked_fen": s.closing_booked_fen,
             "closing_date": s.closing_date.isoformat() if s.closing_date else None,
             "entries": len(s.entries), "already_imported": id(s) not in fresh_ids}
            for s in statements]


def decided_statements(books: Books, fresh: list[Statement], accounts: dict[str, str]
                       ) -> list[Decided]:
    """Each fresh statement's lines, decided against its merchant's open items."""
    merchants = [accounts[s.account] for s in fresh]
    items = books.bank.open_items(set(merchants))
    decided = []
    for s, merchant_id in zip(fresh, merchants, strict=True):
        lines = lines_of(s.entries)
        decided.append(Decided(s, merchant_id, lines, decide_lines(lines, items[merchant_id]),
                               items[merchant_id]))
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
