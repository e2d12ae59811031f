"""What makes two statements the same statement.

Not the account and the bank's statement number alone: Rabobank numbers every day's MT940
`:28C:0`, Sparkasse, Volksbank and ING reuse theirs, and a camt `Stmt/Id` is only the bank's
label. Keyed on the number, every later day of such a bank would be taken for one already
imported and silently lost. A statement is the same only if its account, number, dates,
opening and closing balances and every line are the same: its fingerprint is a hash of all of
these, in a canonical form. Where in the file it stands, the file's message id and when the
file was made are not part of it, so the same statement sent again in another file is still
found a duplicate, and named one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

from ledger.bank.model import Statement, StatementEntry, TxDetail


def fingerprint(statement: Statement, account: str) -> bytes:
    """SHA-256 of the statement's content; `account` is the account as normalised."""
    s = statement
    content = [account, s.statement_id, s.kind.value, s.currency, s.opening_booked_fen,
               s.closing_booked_fen, _day(s.opening_date), _day(s.closing_date),
               [_entry(e) for e in s.entries]]
    encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).digest()


def _entry(e: StatementEntry) -> list[Any]:
    return [e.amount_fen, e.direction.value, e.status.value, _day(e.booking_date),
            _day(e.value_date), e.reversal, e.bank_reference, e.additional_info,
            [_detail(d) for d in e.details]]


def _detail(d: TxDetail) -> list[Any]:
    return [d.amount_fen, d.end_to_end_id, d.creditor_reference, d.remittance_unstructured,
            d.counterparty_name, d.counterparty_account, d.bank_reference, d.uetr]


def _day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
