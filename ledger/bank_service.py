"""Partner banks: statement import and matching, cross-verification, instruction answers,
break resolution. Each is one command in one group commit, like every write.

An import decides every line first (pure: `ledger.bank.matching`), then clears the matched
deposits in one posting per merchant and statement (in chunks), then applies the other lines
in file order (payments, returns, reversals, breaks), then cross-verifies the closing balance.
The file, its lines and the deposits they cleared are written last, in three statements
straight to the database (a day's file may hold 100,000 lines): nothing is refused after.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from ledger.auth import Principal, Role
from ledger.bank.matching import (
    OWN_REFERENCE_RE,
    Decision,
    Line,
    Match,
    decide,
    lines_of,
    spent,
)
from ledger.bank.model import Direction, Statement
from ledger.bank.statements import detect_and_parse
from ledger.collector import collector_paused
from ledger.commands import Command
from ledger.custody.lifecycle import SettledBy
from ledger.db.custody_store import refund_of, release_of
from ledger.flows.refunds import fail_refund, settle_refund
from ledger.flows.releases import fail_release, settle_release


def post_entry(batch: Batch, kind: str, legs: Any, details: Any) -> Any:
    return batch.record(kind, legs, details)


def resolve_release(batch: Batch, m: Any, row: Any, settled: bool, reason: str,
                    by: str = "call") -> dict[str, Any]:
    release = release_of(row)
    if settled:
        return settle_release(batch, m, release, SettledBy(by))
    entry = fail_release(batch, m, release, reason or "payment failed")
    return {"release_id": release.id, "status": "failed", "journal_seq": entry.seq}


def resolve_refund(batch: Batch, m: Any, row: Any, settled: bool, reason: str,
                   by: str = "call") -> dict[str, Any]:
    refund = refund_of(row)
    if settled:
        return settle_refund(batch, m, refund, SettledBy(by))
    return fail_refund(batch, m, refund, reason, SettledBy(by))
from ledger.db import bank_store as bs
from ledger.db import bank_tables as b
from ledger.db import custody_store as store
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.errors import Conflict, Forbidden, InvalidInput, LedgerError, NotFound, Refused

refs_per_entry_max = 1000  # deposit references listed in one clearing entry
filename_chars_max = 200
custody_currency = "CNY"  # every custody account, like every ledger account, is in CNY


def require_bank(principal: Principal, bank_id: str) -> None:
    if principal.role == Role.operator:
        return
    if principal.role == Role.bank and principal.bank_id == bank_id:
        return
    raise Forbidden("only the operator or this bank can do this")


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

    def run(self, batch: Batch) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        if len(self.filename) > filename_chars_max:
            raise InvalidInput(f"must be at most {filename_chars_max} characters",
                               field="filename")
        parsed = list(self.statements) if self.statements is not None \
            else detect_and_parse(self.data, self.filename or None)
        digest = hashlib.sha256(self.data).digest()
        batch.sync()  # everything below reads the database
        earlier = bs.file_by_hash(batch, digest)
        if earlier is not None:
            return {"duplicate": True, "file_id": earlier.id, "sha256": digest.hex(),
                    "journal_seq": earlier.imported_seq, "statements": []}
        accounts = bs.merchants_by_account(batch, self.bank_id)
        statements = _identified(parsed, accounts, self.bank_id)
        seen = bs.statements_seen(batch, self.bank_id,
                                  [(s.account, s.statement_id) for s in statements])
        fresh: list[Statement] = []
        for s in statements:  # a statement repeated inside the file counts once, too
            if (s.account, s.statement_id) not in seen:
                seen.add((s.account, s.statement_id))
                fresh.append(s)
        with collector_paused():  # the parsed file and its lines: see ledger/collector.py
            return _import(_Run(batch, self, batch.next_id(b.StatementFile), digest),
                           statements, fresh, accounts)


def _identified(statements: list[Statement], accounts: dict[str, str],
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


@dataclass
class _Run:
    """One import: its command, and what it writes last, straight to the database."""

    batch: Batch
    cmd: ImportStatementFile
    file_id: int
    digest: bytes
    lines: list[dict[str, Any]] = field(default_factory=list)  # statement_lines rows
    cleared: dict[int, int] = field(default_factory=dict)  # deposit id -> clearing line id

    def seen_now(self, deposit: dict[str, Any]) -> dict[str, Any]:
        """A deposit row as this import leaves it so far."""
        line_id = self.cleared.get(deposit["id"])
        if line_id is None:
            return deposit
        return {**deposit, "status": "cleared", "open_fen": 0, "cleared_line_id": line_id}


def _import(run: _Run, statements: list[Statement], fresh: list[Statement],
            accounts: dict[str, str]) -> dict[str, Any]:
    batch, cmd = run.batch, run.cmd
    fresh_lines = [lines_of(s.entries) for s in fresh]
    line_ids = bs.line_ids(batch, sum(len(lines) for lines in fresh_lines))
    fresh_ids = {id(s) for s in fresh}
    summary = [{"account": s.account, "statement_id": s.statement_id,
                "closing_booked_fen": s.closing_booked_fen,
                "closing_date": s.closing_date.isoformat() if s.closing_date else None,
                "entries": len(s.entries), "already_imported": id(s) not in fresh_ids}
               for s in statements]
    file_format = statements[0].format
    entry = batch.append("statement.imported", {
        "file_id": run.file_id, "bank_id": cmd.bank_id, "sha256": run.digest.hex(),
        "format": file_format, "filename": cmd.filename, "statements": summary})
    items = bs.open_items(batch, sorted({accounts[s.account] for s in fresh}))
    results, start = [], 0
    for statement, lines in zip(fresh, fresh_lines, strict=True):
        ids = line_ids[start:start + len(lines)]
        start += len(lines)
        results.append(_reconcile(run, statement, lines, ids, items[accounts[statement.account]],
                                  accounts[statement.account]))
    overdue = _flag_overdue(run, fresh, accounts)
    bs.write_import(batch, {
        "id": run.file_id, "bank_id": cmd.bank_id, "sha256": run.digest,
        "filename": cmd.filename, "format": file_format, "body": cmd.data,
        "statements": len(statements), "lines": len(line_ids), "imported_seq": entry.seq},
        run.lines, run.cleared)
    return {"duplicate": False, "file_id": run.file_id, "sha256": run.digest.hex(),
            "journal_seq": entry.seq, "statements": results, "overdue_breaks": overdue}


def _reconcile(run: _Run, statement: Statement, lines: list[Line], ids: list[int],
               mine: bs.MerchantItems, merchant_id: str) -> dict[str, Any]:
    decisions = []
    for line in lines:
        decision = decide(line, mine.items)
        mine.items.forget(spent(decision))
        decisions.append(decision)
    m = store.merchant(run.batch, merchant_id)
    cleared = _clear_deposits(run, m, statement, ids, decisions, mine)
    outcome: dict[str, int] = defaultdict(int)
    for line, line_id, decision in zip(lines, ids, decisions, strict=True):
        kind, matched_ref = _apply(run, m, line, line_id, decision, mine)
        outcome[kind] += 1
        run.lines.append(_line_row(run, statement, line, line_id, kind, matched_ref))
    verified = _cross_verify(run, m, statement)
    return {"account": statement.account, "statement_id": statement.statement_id,
            "merchant_id": m.id, "lines": len(lines), "deposits_cleared_fen": cleared,
            "outcome": dict(outcome), "cross_verification": verified}


def _clear_deposits(run: _Run, m: store.MerchantRow, statement: Statement, ids: list[int],
                    decisions: list[Decision], mine: bs.MerchantItems) -> int:
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
        post_entry(run.batch, "deposits.cleared", [(m.accounts["custody_cash"], amount),
                                              (m.accounts["custody_in_transit"], -amount)],
              {"merchant_id": m.id, "statement_id": statement.statement_id,
               "references": [ref for ref, _ in chunk], "amount_fen": amount})
    return sum(fen for _, fen in cleared)


Applied = tuple[str, str | None]  # the line's kind and the ledger item it names


def _apply(run: _Run, m: store.MerchantRow, line: Line, line_id: int, decision: Decision,
           mine: bs.MerchantItems) -> Applied:
    """Settle, fail or undo what a line names; anything else becomes a break."""
    matched_ref = ",".join(decision.refs)[:500] or None
    if decision.match in (Match.deposit, Match.deposit_batch, Match.not_booked):
        return decision.match.value, matched_ref
    if decision.match in (Match.payment, Match.payment_returned):
        table, row_id = mine.instruction_ids[decision.refs[0]]
        row = bs.instruction_row(run.batch, table, row_id)
        return _resolve(run, m, line, line_id, table, row,
                        settled=decision.match is Match.payment), matched_ref
    if decision.match is Match.reversal:
        return _reverse(run, m, line, line_id)
    if line.direction is Direction.credit:
        returned = _settled_instruction(run.batch, m, line.references())
        if returned is not None:
            return _return_settled(run, m, line, line_id, *returned)
        confirmed = _confirmed_by_hand(run, m, line, line_id)
        if confirmed is not None:
            return confirmed
    _open_break(run, m.id, "unmatched_line", decision.reason, line.amount_fen, line_id,
                f"line:{line_id}")
    return "break", matched_ref


def _confirmed_by_hand(run: _Run, m: store.MerchantRow, line: Line, line_id: int
                       ) -> Applied | None:
    """The credit of a sale (or day batch) whose arrival a person already confirmed
    (ConfirmDeposit): the custody cash is booked, so the line is its evidence, not a break."""
    for ref in line.references():
        if not OWN_REFERENCE_RE.match(ref):
            continue
        named = [run.seen_now(d) for d in bs.deposits_named(run.batch, m.id, ref)]
        if named and all(d["status"] == "cleared" and d["cleared_line_id"] is None
                         for d in named) \
                and sum(d["amount_fen"] for d in named) == line.amount_fen:
            for d in named:
                run.batch.rows.update(b.ExpectedDeposit, d["id"], cleared_line_id=line_id)
            return "deposit_confirmed_by_hand", ref
    return None


def _resolve(run: _Run, m: store.MerchantRow, line: Line, line_id: int, table: Any,
             row: dict[str, Any], settled: bool) -> str:
    resolve = resolve_release if table is c.ReleaseInstruction else resolve_refund
    mark = run.batch.mark()
    try:
        resolve(run.batch, m, row, settled, "returned by the bank", by="statement")
    except LedgerError as refusal:  # e.g. the custody cash is not there: say so, not fail
        run.batch.undo_to(mark)
        _open_break(run, m.id, "unmatched_line", refusal.detail, line.amount_fen, line_id,
                    f"line:{line_id}")
        return "break"
    return "payment_settled" if settled else "payment_failed"


def _settled_instruction(batch: Batch, m: store.MerchantRow, refs: Sequence[str]
                         ) -> tuple[Any, dict[str, Any]] | None:
    """The merchant's settled instruction one of these references names (as this import
    left it: a debit earlier in the file may have settled it)."""
    for ref in refs:
        found = bs.instruction_by_e2e(batch, ref)
        if found is not None and found[1]["merchant_id"] == m.id \
                and found[1]["status"] == "settled":
            return found
    return None


def _return_settled(run: _Run, m: store.MerchantRow, line: Line, line_id: int, table: Any,
                    row: dict[str, Any]) -> Applied:
    """A paid instruction's money came back: the payment is undone and the instruction
    fails (a release back to earned, a refund's claim back onto the card)."""
    e2e = row["end_to_end_id"]
    if row["amount_fen"] != line.amount_fen:
        _open_break(run, m.id, "returned_after_settlement",
                    f"{e2e} paid {row['amount_fen']} fen, the bank returned "
                    f"{line.amount_fen}", line.amount_fen, line_id, f"line:{line_id}")
        return "break", e2e
    is_release = table is c.ReleaseInstruction
    pending = "release_pending" if is_release else "refunds_payable"
    mark = run.batch.mark()
    try:
        post_entry(run.batch, "release.returned" if is_release else "refund.returned",
              [(m.accounts["custody_cash"], line.amount_fen),
               (m.accounts[pending], -line.amount_fen)],
              {"merchant_id": m.id, "end_to_end_id": e2e, "amount_fen": line.amount_fen})
        resolve = resolve_release if is_release else resolve_refund
        resolve(run.batch, m, row, False, "returned by the bank after payment",
                by="statement")
    except LedgerError as refusal:
        run.batch.undo_to(mark)
        _open_break(run, m.id, "returned_after_settlement", refusal.detail, line.amount_fen,
                    line_id, f"line:{line_id}")
        return "break", e2e
    return "payment_returned", e2e


def _reverse(run: _Run, m: store.MerchantRow, line: Line, line_id: int) -> Applied:
    """A reversal undoes the line it reverses: a reversed credit puts the deposits it cleared
    back in transit; a reversed debit returns the instruction it paid. Else it is a break."""
    refs = line.references()
    if line.direction is Direction.debit:
        for ref in refs:
            named = [run.seen_now(d) for d in bs.deposits_named(run.batch, m.id, ref)]
            cleared = _cleared_by_one_line(named, line.amount_fen)
            if cleared:
                return _unclear(run, m, line, line_id, ref, cleared)
    else:
        returned = _settled_instruction(run.batch, m, refs)
        if returned is not None:
            return _return_settled(run, m, line, line_id, *returned)
    _open_break(run, m.id, "unmatched_reversal",
                "a reversal of nothing this ledger matched: no cleared sale or paid "
                "instruction has its reference and amount", line.amount_fen, line_id,
                f"line:{line_id}")
    return "break", ",".join(refs)[:500] or None


def _cleared_by_one_line(deposits: list[dict[str, Any]], amount_fen: int
                         ) -> list[dict[str, Any]]:
    """The deposits one statement line cleared that add up to `amount_fen` (a reversal undoes
    one line), or none."""
    by_line: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in deposits:
        if d["status"] == "cleared" and d["cleared_line_id"] is not None:
            by_line[d["cleared_line_id"]].append(d)
    for group in by_line.values():
        if sum(d["amount_fen"] for d in group) == amount_fen:
            return group
    return []


def _unclear(run: _Run, m: store.MerchantRow, line: Line, line_id: int, ref: str,
             deposits: list[dict[str, Any]]) -> Applied:
    mark = run.batch.mark()
    try:
        post_entry(run.batch, "deposits.reversed",
              [(m.accounts["custody_in_transit"], line.amount_fen),
               (m.accounts["custody_cash"], -line.amount_fen)],
              {"merchant_id": m.id, "references": [d["reference"] for d in deposits],
               "amount_fen": line.amount_fen})
    except LedgerError as refusal:  # the cash was paid out since: a person must look
        run.batch.undo_to(mark)
        _open_break(run, m.id, "unmatched_reversal", refusal.detail, line.amount_fen,
                    line_id, f"line:{line_id}")
        return "break", ref
    for d in deposits:
        if run.cleared.pop(d["id"], None) is None:  # cleared by an earlier import
            batch_row = run.batch.rows.get(b.ExpectedDeposit, d["id"])
            assert batch_row is not None, "deposits_named brought it into the batch"
            run.batch.rows.update(b.ExpectedDeposit, d["id"], status="pending",
                                  open_fen=d["amount_fen"], cleared_line_id=None)
    return "reversal", ref


def _open_break(run: _Run, merchant_id: str | None, kind: str, reason: str, amount_fen: int,
                line_id: int | None, item_ref: str) -> int:
    batch, bank_id = run.batch, run.cmd.bank_id
    break_id = batch.next_id(b.ReconciliationBreak)
    entry = batch.append("reconciliation.break_opened", {
        "break_id": break_id, "bank_id": bank_id, "merchant_id": merchant_id, "kind": kind,
        "reason": reason, "amount_fen": amount_fen, "item_ref": item_ref})
    batch.rows.insert(b.ReconciliationBreak, break_id, {
        "id": break_id, "bank_id": bank_id, "merchant_id": merchant_id, "kind": kind,
        "reason": reason, "amount_fen": amount_fen, "line_id": line_id, "item_ref": item_ref,
        "opened_on": run.cmd.today, "status": "open", "resolution": None,
        "opened_seq": entry.seq, "resolved_seq": None})
    return break_id


def _line_row(run: _Run, statement: Statement, line: Line, line_id: int, kind: str,
              matched_ref: str | None) -> dict[str, Any]:
    d = line.detail
    return {"id": line_id, "file_id": run.file_id, "bank_id": run.cmd.bank_id,
            "account": statement.account, "statement_id": statement.statement_id,
            "position": line.position, "direction": line.direction.value,
            "status": "BOOK" if line.booked else "NOTB", "reversal": line.reversal,
            "amount_fen": line.amount_fen, "booking_date": line.booking_date,
            "end_to_end_id": d.end_to_end_id, "creditor_reference": d.creditor_reference,
            "bank_reference": d.bank_reference, "counterparty": d.counterparty_name,
            "matched_kind": kind, "matched_ref": matched_ref}


def _cross_verify(run: _Run, m: store.MerchantRow, statement: Statement
                  ) -> dict[str, Any] | None:
    """交叉验证: the bank's closing booked balance against the ledger's custody cash once the
    statement's lines are applied. A difference is journaled with its amount: it is a signal
    against the merchant in risk tiering (DOMAIN.md flow 9, fund flows)."""
    if statement.closing_booked_fen is None:
        return None
    batch, bank_id = run.batch, run.cmd.bank_id
    ledger_fen = store.balance(batch, m.accounts["custody_cash"])
    difference = statement.closing_booked_fen - ledger_fen
    closing = statement.closing_date or run.cmd.today
    view = {"merchant_id": m.id, "bank_id": bank_id, "account": statement.account,
            "statement_id": statement.statement_id, "closing_date": closing.isoformat(),
            "bank_balance_fen": statement.closing_booked_fen, "ledger_balance_fen": ledger_fen,
            "difference_fen": difference, "result": "match" if difference == 0 else "difference"}
    entry = batch.append("custody.cross_verified", view)
    batch.rows.insert(b.CrossVerification, entry.seq, {
        "id": entry.seq, "bank_id": bank_id, "merchant_id": m.id,
        "account": statement.account, "statement_id": statement.statement_id,
        "file_id": run.file_id, "closing_date": closing,
        "bank_balance_fen": statement.closing_booked_fen, "ledger_balance_fen": ledger_fen,
        "difference_fen": difference, "verified_seq": entry.seq})
    return {**view, "journal_seq": entry.seq}


def _flag_overdue(run: _Run, fresh: list[Statement], accounts: dict[str, str]) -> list[int]:
    """A sale whose money the bank has not shown by its date is a break, once."""
    latest: dict[str, date] = {}
    for s in fresh:
        if s.closing_date is not None:
            merchant_id = accounts[s.account]
            latest[merchant_id] = max(latest.get(merchant_id, s.closing_date), s.closing_date)
    opened = []
    for merchant_id, closing in sorted(latest.items()):
        for d in bs.overdue_deposits(run.batch, [merchant_id], closing):
            if d.id in run.cleared:  # cleared by this import
                continue
            opened.append(_open_break(
                run, merchant_id, "missing_line",
                f"no bank credit for sale {d.reference} expected by {d.expected_by}",
                d.open_fen, None, d.reference))
    return opened


# -- the bank's answers and an operator's resolutions ---------------------------------------


@dataclass(frozen=True)
class AnswerInstruction(Command):
    """The bank accepts an instruction from its file, or rejects it (the instruction fails)."""

    principal: Principal
    bank_id: str
    end_to_end_id: str
    accept: bool
    reason: str = ""

    def run(self, batch: Batch) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        batch.sync()  # a rejected release frees its consumptions: found by query
        found = bs.instruction_by_e2e(batch, self.end_to_end_id)
        m = store.merchant(batch, found[1]["merchant_id"]) if found is not None else None
        if found is None or m is None or m.bank_id != self.bank_id:
            # Another bank's instruction answers as a missing one: end-to-end ids follow the
            # journal's numbers, and a bank must not learn which of them are others'.
            raise NotFound(f"bank {self.bank_id} has no instruction with end-to-end id "
                           f"{self.end_to_end_id}", field="end_to_end_id")
        table, row = found
        if row["status"] != "pending" or row["bank_status"] != "pending":
            raise Conflict(f"the instruction is already {row['status']} "
                           f"({row['bank_status']} by the bank)", field="end_to_end_id")
        status = "accepted" if self.accept else "rejected"
        entry = batch.append(f"instruction.{status}", {
            "end_to_end_id": self.end_to_end_id, "bank_id": self.bank_id, "reason": self.reason})
        store.update_row(batch, table, row["id"], bank_status=status)
        result = {"end_to_end_id": self.end_to_end_id, "bank_status": status,
                  "journal_seq": entry.seq}
        if not self.accept:
            resolve = resolve_release if table is c.ReleaseInstruction else resolve_refund
            result["instruction"] = resolve(batch, m, row, False, self.reason or "rejected",
                                            by="bank")
        return result


@dataclass(frozen=True)
class ResolveBreak(Command):
    principal: Principal
    break_id: int
    resolution: str

    def run(self, batch: Batch) -> dict[str, Any]:
        self.principal.require_role(Role.operator)
        if not self.resolution.strip():
            raise InvalidInput("say how the break was resolved", field="resolution")
        row = bs.break_row(batch, self.break_id)
        if row["status"] != "open":
            raise Conflict("the break is already resolved", field="break_id")
        entry = batch.append("reconciliation.break_resolved", {
            "break_id": row["id"], "bank_id": row["bank_id"], "resolution": self.resolution})
        batch.rows.update(b.ReconciliationBreak, row["id"], status="resolved",
                          resolution=self.resolution, resolved_seq=entry.seq)
        return {"break_id": row["id"], "status": "resolved", "journal_seq": entry.seq}
