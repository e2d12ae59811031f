"""What becomes of each statement of a file: imported, already imported, or refused by name.

A file may hold statements of several days and accounts. Each is sorted on its own, so one
that cannot be imported (read wrong, a foreign account, another currency, an interim report)
does not hold back the others, unless the bank asks for all or nothing; and none is ever left
out of the answer or the journal. A statement is a duplicate only if its content is
(ledger/bank/identity.py), never because its number repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from ledger.bank.accounts import account_candidates, custody_currency
from ledger.bank.identity import fingerprints
from ledger.bank.model import (
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementKind,
    StatementRejected,
)
from ledger.bank.store import SeenStatement
from ledger.commands import Books
from ledger.errors import require

refusals_named_max = 20  # statements an all-or-nothing refusal names in its detail


class StatementOutcome(StrEnum):
    imported = "imported"
    already_imported = "already_imported"
    refused = "refused"


@dataclass(frozen=True, slots=True)
class Sorted:
    """One statement of a file, in file order, and what becomes of it. An imported one
    carries the statement under the custody account it is filed as, and its merchant."""

    position: str
    account: str | None
    number: str | None
    outcome: StatementOutcome
    statement: Statement | None = None
    merchant_id: str | None = None
    fingerprint: bytes | None = None
    reason: str | None = None
    field: str | None = None
    earlier: SeenStatement | None = None

    def view(self) -> dict[str, Any]:
        """As the journal and the answer name it."""
        s = self.statement
        view: dict[str, Any] = {"position": self.position, "account": self.account,
                                "statement_id": self.number, "status": self.outcome.value}
        if s is not None:
            view.update(kind=s.kind.value, entries=len(s.entries),
                        opening_booked_fen=s.opening_booked_fen,
                        closing_booked_fen=s.closing_booked_fen,
                        closing_date=s.closing_date.isoformat() if s.closing_date else None)
        if self.fingerprint is not None:
            view["fingerprint"] = self.fingerprint.hex()
        if self.reason is not None:  # why refused, or why already imported within the file
            view["reason"] = self.reason
        if self.outcome is StatementOutcome.refused:
            view["field"] = self.field
        if self.earlier is not None:
            view.update(earlier_statement=self.earlier.id, earlier_file_id=self.earlier.file_id)
        return view


def sort_statements(books: Books, bank_id: str, parsed: ParsedFile,
                    prints: Sequence[bytes | None] | None = None) -> list[Sorted]:
    """Every statement of the file sorted; two queries, both before any change. `prints`:
    the statements' fingerprints, if the caller made them (off the writer: a day's file's
    take a fifth of a second)."""
    return sorted_by(books.bank.merchants_by_account(bank_id),
                     lambda found: books.bank.statements_seen(bank_id, found),
                     bank_id, parsed, prints)


def sorted_by(accounts: dict[str, str],
              seen_of: Callable[[list[bytes]], dict[bytes, SeenStatement]],
              bank_id: str, parsed: ParsedFile,
              prints: Sequence[bytes | None] | None = None) -> list[Sorted]:
    """The same from the bank's merchants by custody account and a look-up of statements
    imported before: so a dry run sorts a file exactly as an import would, writing nothing."""
    prints = prints if prints is not None else fingerprints(parsed)
    require(len(prints) == len(parsed.items), "a fingerprint for each statement of the file")
    placed = [_placed(item, accounts, bank_id, made)
              for item, made in zip(parsed.items, prints, strict=True)]
    seen = seen_of([s.fingerprint for s in placed if s.fingerprint is not None])
    in_file: set[bytes] = set()
    result = []
    for s in placed:
        if s.fingerprint is not None and s.fingerprint in seen:
            s = replace(s, outcome=StatementOutcome.already_imported, earlier=seen[s.fingerprint])
        elif s.fingerprint is not None and s.fingerprint in in_file:
            s = replace(s, outcome=StatementOutcome.already_imported,
                        reason="the same statement comes earlier in this file")
        elif s.fingerprint is not None:
            in_file.add(s.fingerprint)
        result.append(s)
    return result


def check_importable(sorted_: list[Sorted], *, all_or_nothing: bool) -> None:
    """Refuse the file (nothing written) when the bank asked for all or nothing and a
    statement is refused, or when no statement of it can be imported at all."""
    refused = [s for s in sorted_ if s.outcome is StatementOutcome.refused]
    if not refused:
        return
    if all_or_nothing or len(refused) == len(sorted_):
        named = "; ".join(f"{s.position}: {s.reason}" for s in refused[:refusals_named_max])
        why = "all or nothing was asked" if all_or_nothing else "no statement can be imported"
        raise StatementRejected(f"{len(refused)} of {len(sorted_)} statements refused ({why}): "
                                f"{named}", field=refused[0].field or refused[0].position)


def _placed(item: Statement | RefusedStatement, accounts: dict[str, str],
            bank_id: str, made: bytes | None) -> Sorted:
    if isinstance(item, RefusedStatement):
        return Sorted(item.position, item.account, item.statement_id, StatementOutcome.refused,
                      reason=item.reason, field=item.field)
    refusal = _refusal(item, accounts, bank_id)
    if refusal is not None:
        return Sorted(item.position, item.account, item.statement_id, StatementOutcome.refused,
                      reason=refusal, field=item.position)
    account = next(a for a in account_candidates(item.account, item.currency) if a in accounts)
    filed = replace(item, account=account)
    require(made is not None, "a statement read has its fingerprint")
    return Sorted(item.position, account, item.statement_id, StatementOutcome.imported,
                  statement=filed, merchant_id=accounts[account], fingerprint=made)


def _refusal(s: Statement, accounts: dict[str, str], bank_id: str) -> str | None:
    if not any(a in accounts for a in account_candidates(s.account, s.currency)):
        return f"account {s.account} is not a custody account held at {bank_id}"
    if s.currency != custody_currency:
        return f"the statement is in {s.currency}; custody accounts are in {custody_currency}"
    if s.kind is StatementKind.interim:
        return ("an interim report (camt.052, MT942) is not imported: its lines come again "
                "in the day's statement, which is what is reconciled")
    return None
