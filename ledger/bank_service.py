"""Partner banks: statement import and matching, cross-verification, instruction answers,
break resolution. Each is one command in one group commit, like every write."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.auth import Principal, Role
from ledger.bank.matching import Decision, Line, Match, decide, lines_of
from ledger.bank.model import Statement
from ledger.bank.statements import detect_and_parse
from ledger.custody_service import _post, resolve_refund, resolve_release
from ledger.db import bank_store as bs
from ledger.db import bank_tables as b
from ledger.db import custody_store as store
from ledger.db import custody_tables as c
from ledger.db.batch import Batch
from ledger.errors import Conflict, Forbidden, InvalidInput, LedgerError, Refused

refs_per_entry_max = 1000  # deposit references listed in one clearing entry
filename_chars_max = 200


def require_bank(principal: Principal, bank_id: str) -> None:
    if principal.role == Role.operator:
        return
    if principal.role == Role.bank and principal.bank_id == bank_id:
        return
    raise Forbidden("only the operator or this bank can do this")


@dataclass(frozen=True)
class ImportStatementFile:
    principal: Principal
    bank_id: str
    filename: str
    data: bytes
    today: date

    def run(self, batch: Batch) -> dict[str, Any]:
        require_bank(self.principal, self.bank_id)
        if len(self.filename) > filename_chars_max:
            raise InvalidInput(f"must be at most {filename_chars_max} characters",
                               field="filename")
        statements = detect_and_parse(self.data, self.filename or None)
        digest = hashlib.sha256(self.data).digest()
        batch.sync()  # everything below reads the database
        earlier = bs.file_by_hash(batch, digest)
        if earlier is not None:
            return {"duplicate": True, "file_id": earlier.id, "sha256": digest.hex(),
                    "journal_seq": earlier.imported_seq, "statements": []}
        accounts = bs.merchants_by_account(batch, self.bank_id)
        _check_accounts(statements, accounts, self.bank_id)
        seen = bs.statements_seen(batch, self.bank_id)
        fresh = [s for s in statements if (s.account, s.statement_id) not in seen]
        return _import(batch, self, digest, statements, fresh, accounts)


def _check_accounts(statements: list[Statement], accounts: dict[str, str], bank_id: str) -> None:
    for index, statement in enumerate(statements):
        if statement.account not in accounts:
            raise Refused(f"account {statement.account} is not a custody account held at "
                          f"{bank_id}", field=f"statements[{index}].account")


def _import(batch: Batch, cmd: ImportStatementFile, digest: bytes,
            statements: list[Statement], fresh: list[Statement],
            accounts: dict[str, str]) -> dict[str, Any]:
    file_id = batch.next_id(b.StatementFile)
    lines_total = sum(len(lines_of(s.entries)) for s in fresh)
    summary = [{"account": s.account, "statement_id": s.statement_id,
                "closing_booked_fen": s.closing_booked_fen,
                "closing_date": s.closing_date.isoformat() if s.closing_date else None,
                "entries": len(s.entries), "already_imported": s not in fresh}
               for s in statements]
    entry = batch.append("statement.imported", {
        "file_id": file_id, "bank_id": cmd.bank_id, "sha256": digest.hex(),
        "format": statements[0].format if statements else "empty", "filename": cmd.filename,
        "statements": summary})
    batch.add_row(b.StatementFile, {
        "id": file_id, "bank_id": cmd.bank_id, "sha256": digest, "filename": cmd.filename,
        "format": statements[0].format if statements else "empty", "body": cmd.data,
        "statements": len(statements), "lines": lines_total, "imported_seq": entry.seq})
    items = bs.open_items(batch, sorted(set(accounts.values())))
    results = [_reconcile(batch, cmd, file_id, s, accounts[s.account], items) for s in fresh]
    overdue = _flag_overdue(batch, cmd, fresh, accounts)
    return {"duplicate": False, "file_id": file_id, "sha256": digest.hex(),
            "journal_seq": entry.seq, "statements": results, "overdue_breaks": overdue}


def _reconcile(batch: Batch, cmd: ImportStatementFile, file_id: int, statement: Statement,
               merchant_id: str, items: bs.OpenItems) -> dict[str, Any]:
    lines = lines_of(statement.entries)
    ids = [batch.next_id(b.StatementLine) for _ in lines]
    decisions, amounts = [], {}
    for line in lines:
        decision = _decide(line, items)
        if decision.match in (Match.deposit, Match.deposit_batch):
            amounts.update({ref: items.deposits[ref] for ref in decision.refs})
        if decision.match is not Match.unmatched:
            items.forget(decision.refs)
        decisions.append(decision)
    m = store.merchant(batch, merchant_id)
    cleared = _clear_deposits(batch, m, statement, ids, decisions, items, amounts)
    outcome: dict[str, int] = defaultdict(int)
    for line, line_id, decision in zip(lines, ids, decisions, strict=True):
        kind = _apply(batch, cmd, m, line, line_id, decision)
        outcome[kind] += 1
        batch.add_row(b.StatementLine, _line_row(cmd, file_id, statement, line, line_id,
                                                 decision, kind))
    verified = _cross_verify(batch, cmd, m, statement, file_id)
    return {"account": statement.account, "statement_id": statement.statement_id,
            "merchant_id": m.id, "lines": len(lines), "deposits_cleared_fen": cleared,
            "outcome": dict(outcome), "cross_verification": verified}


def _decide(line: Line, items: bs.OpenItems) -> Decision:
    if line.reversal:
        return Decision(Match.unmatched, tuple(line.references()), "reversal")
    return decide(line, items.deposits, items.batches, items.instructions, items.by_amount_date)


def _clear_deposits(batch: Batch, m: store.MerchantRow, statement: Statement, ids: list[int],
                    decisions: list[Decision], items: bs.OpenItems,
                    amounts: dict[str, int]) -> int:
    """One clearing transaction per merchant and statement (in chunks), not one per sale."""
    cleared: list[str] = []
    for line_id, decision in zip(ids, decisions, strict=True):
        if decision.match in (Match.deposit, Match.deposit_batch):
            bs.clear_deposits(batch, [items.deposit_ids[r] for r in decision.refs], line_id)
            cleared.extend(decision.refs)
    for start in range(0, len(cleared), refs_per_entry_max):
        chunk = cleared[start:start + refs_per_entry_max]
        amount = sum(amounts[r] for r in chunk)
        _post(batch, "deposits.cleared", [(m.accounts["custody_cash"], amount),
                                          (m.accounts["custody_in_transit"], -amount)],
              {"merchant_id": m.id, "statement_id": statement.statement_id,
               "references": chunk, "amount_fen": amount})
    return sum(amounts.values())


def _apply(batch: Batch, cmd: ImportStatementFile, m: store.MerchantRow, line: Line,
           line_id: int, decision: Decision) -> str:
    """Settle or fail what a line matched; anything else becomes a break. Returns the kind."""
    if decision.match in (Match.deposit, Match.deposit_batch, Match.not_booked):
        return decision.match.value
    if decision.match in (Match.payment, Match.payment_returned):
        return _pay(batch, cmd, m, line, line_id, decision)
    if line.reversal:
        return _reverse(batch, cmd, m, line, line_id)
    _open_break(batch, cmd, m.id, "unmatched_line", decision.reason, line.amount_fen, line_id,
                f"line:{line_id}")
    return "break"


def _pay(batch: Batch, cmd: ImportStatementFile, m: store.MerchantRow, line: Line,
         line_id: int, decision: Decision) -> str:
    found = bs.instruction_by_e2e(batch, decision.refs[0])
    assert found is not None
    table, row = found
    settled = decision.match is Match.payment
    resolve = resolve_release if table is c.ReleaseInstruction else resolve_refund
    mark = batch.mark()
    try:
        resolve(batch, m, row, settled, "returned by the bank", by="statement")
    except LedgerError as refusal:  # e.g. the custody cash is not there: say so, not fail
        batch.undo_to(mark)
        _open_break(batch, cmd, m.id, "unmatched_line", refusal.detail, line.amount_fen,
                    line_id, f"line:{line_id}")
        return "break"
    return "payment_settled" if settled else "payment_failed"


def _reverse(batch: Batch, cmd: ImportStatementFile, m: store.MerchantRow, line: Line,
             line_id: int) -> str:
    """A reversal undoes the deposit clearing it names; anything else is for a person."""
    for ref in line.references():
        deposit = bs.cleared_deposit(batch, ref)
        if deposit is not None and deposit["amount_fen"] == line.amount_fen:
            _post(batch, "deposits.reversed",
                  [(m.accounts["custody_in_transit"], line.amount_fen),
                   (m.accounts["custody_cash"], -line.amount_fen)],
                  {"merchant_id": m.id, "references": [ref], "amount_fen": line.amount_fen})
            batch.rows.update(b.ExpectedDeposit, deposit["id"], status="pending",
                              open_fen=line.amount_fen, cleared_line_id=None)
            return "reversal"
    _open_break(batch, cmd, m.id, "unmatched_reversal",
                "a reversal whose original line cleared nothing this ledger knows",
                line.amount_fen, line_id, f"line:{line_id}")
    return "break"


def _open_break(batch: Batch, cmd: ImportStatementFile, merchant_id: str | None, kind: str,
                reason: str, amount_fen: int, line_id: int | None, item_ref: str) -> int:
    break_id = batch.next_id(b.ReconciliationBreak)
    entry = batch.append("reconciliation.break_opened", {
        "break_id": break_id, "bank_id": cmd.bank_id, "merchant_id": merchant_id, "kind": kind,
        "reason": reason, "amount_fen": amount_fen, "item_ref": item_ref})
    batch.rows.insert(b.ReconciliationBreak, break_id, {
        "id": break_id, "bank_id": cmd.bank_id, "merchant_id": merchant_id, "kind": kind,
        "reason": reason, "amount_fen": amount_fen, "line_id": line_id, "item_ref": item_ref,
        "opened_on": cmd.today, "status": "open", "resolution": None,
        "opened_seq": entry.seq, "resolved_seq": None})
    return break_id


def _line_row(cmd: ImportStatementFile, file_id: int, statement: Statement, line: Line,
              line_id: int, decision: Decision, kind: str) -> dict[str, Any]:
    d = line.detail
    return {"id": line_id, "file_id": file_id, "bank_id": cmd.bank_id,
            "account": statement.account, "statement_id": statement.statement_id,
            "position": line.position, "direction": line.direction.value,
            "status": "BOOK" if line.booked else "NOTB", "reversal": line.reversal,
            "amount_fen": line.amount_fen, "booking_date": line.booking_date,
            "end_to_end_id": d.end_to_end_id, "creditor_reference": d.creditor_reference,
            "bank_reference": d.bank_reference, "counterparty": d.counterparty_name,
            "matched_kind": kind, "matched_ref": ",".join(decision.refs)[:500] or None}


def _cross_verify(batch: Batch, cmd: ImportStatementFile, m: store.MerchantRow,
                  statement: Statement, file_id: int) -> dict[str, Any] | None:
    """交叉验证: the bank's closing booked balance against the ledger's custody cash."""
    if statement.closing_booked_fen is None:
        return None
    ledger_fen = store.balance(batch, m.accounts["custody_cash"])
    difference = statement.closing_booked_fen - ledger_fen
    closing = statement.closing_date or cmd.today
    view = {"merchant_id": m.id, "bank_id": cmd.bank_id, "account": statement.account,
            "statement_id": statement.statement_id, "closing_date": closing.isoformat(),
            "bank_balance_fen": statement.closing_booked_fen, "ledger_balance_fen": ledger_fen,
            "difference_fen": difference, "result": "match" if difference == 0 else "difference"}
    entry = batch.append("custody.cross_verified", view)
    batch.rows.insert(b.CrossVerification, entry.seq, {
        "id": entry.seq, "bank_id": cmd.bank_id, "merchant_id": m.id,
        "account": statement.account, "statement_id": statement.statement_id,
        "file_id": file_id, "closing_date": closing,
        "bank_balance_fen": statement.closing_booked_fen, "ledger_balance_fen": ledger_fen,
        "difference_fen": difference, "verified_seq": entry.seq})
    return {**view, "journal_seq": entry.seq}


def _flag_overdue(batch: Batch, cmd: ImportStatementFile, fresh: list[Statement],
                  accounts: dict[str, str]) -> list[int]:
    """A sale whose money the bank has not shown by its date is a break, once."""
    latest: dict[str, date] = {}
    for s in fresh:
        if s.closing_date is not None:
            merchant_id = accounts[s.account]
            latest[merchant_id] = max(latest.get(merchant_id, s.closing_date), s.closing_date)
    opened = []
    for merchant_id, closing in sorted(latest.items()):
        for d in bs.overdue_deposits(batch, [merchant_id], closing):
            cached = batch.rows.get(b.ExpectedDeposit, d.id)
            if cached is not None and cached["status"] == "cleared":  # cleared by this import
                continue
            opened.append(_open_break(
                batch, cmd, merchant_id, "missing_line",
                f"no bank credit for sale {d.reference} expected by {d.expected_by}",
                d.open_fen, None, d.reference))
    return opened


# -- the bank's answers and an operator's resolutions ---------------------------------------


@dataclass(frozen=True)
class AnswerInstruction:
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
        if found is None:
            raise InvalidInput(f"no instruction has end-to-end id {self.end_to_end_id}",
                               field="end_to_end_id")
        table, row = found
        m = store.merchant(batch, row["merchant_id"])
        if m.bank_id != self.bank_id:
            raise Forbidden("this instruction is addressed to another bank")
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
class ResolveBreak:
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
