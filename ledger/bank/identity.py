"""What makes two statements the same statement.

Not the account and the bank's statement number alone: Rabobank numbers every day's MT940
`:28C:0`, Sparkasse, Volksbank and ING reuse theirs, and a camt `Stmt/Id` is only the bank's
label. Keyed on the number, every later day of such a bank would be taken for one already
imported and silently lost. A statement is the same only if its account, number, dates,
opening and closing balances and every line are the same: its fingerprint is a hash of all of
these, in a canonical form. Where in the file it stands, the file's message id and when the
file was made are not part of it, so the same statement sent again in another file is still
found a duplicate, and named one. The account is taken in its barest form (no spacing, no
`BIC/` before it, no currency after it), so a re-sent statement spelt otherwise is the same.

The canonical form is Python's `ascii` of a tuple of plain values (ints, strings, None,
booleans), one per entry, hashed as it is made: the same for the same values on every
Python (the fingerprints are stored; `repr` would not do, as it prints or escapes a character
by the Unicode tables of the Python it runs on: a rare CJK character of a name hashed apart
on 3.11 and 3.12), and a fraction of the cost of JSON for a day's 100,000 entries, which the
API computes before the import is queued, off the writer.
"""

from __future__ import annotations

import hashlib
from datetime import date

from ledger.bank.accounts import account_candidates
from ledger.bank.model import ParsedFile, Statement, StatementEntry

_FORM = "yufu-statement-2"  # the canonical form's version: a new form, a new name


def fingerprint(statement: Statement) -> bytes:
    """SHA-256 of the statement's content."""
    s = statement
    digest = hashlib.sha256(ascii((
        _FORM, account_candidates(s.account, s.currency)[-1], s.statement_id, s.kind.value,
        s.currency, s.opening_booked_fen, s.closing_booked_fen, _day(s.opening_date),
        _day(s.closing_date), len(s.entries))).encode())
    for entry in s.entries:
        digest.update(ascii(_entry(entry)).encode())
    return digest.digest()


def fingerprints(parsed: ParsedFile) -> tuple[bytes | None, ...]:
    """Each statement's fingerprint in file order (None for one refused)."""
    return tuple(fingerprint(item) if isinstance(item, Statement) else None
                 for item in parsed.items)


def _entry(e: StatementEntry) -> tuple[object, ...]:
    return (e.amount_fen, e.direction.value, e.status.value, _day(e.booking_date),
            _day(e.value_date), e.reversal, e.bank_reference, e.additional_info,
            tuple((d.amount_fen, d.end_to_end_id, d.creditor_reference,
                   d.remittance_unstructured, d.counterparty_name, d.counterparty_account,
                   d.bank_reference, d.uetr) for d in e.details))


def _day(day: date | None) -> int | None:
    return day.toordinal() if day is not None else None
