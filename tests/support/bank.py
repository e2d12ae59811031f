"""What the bank tests share: the sample files (and their references swapped for a ledger's),
a parser's refusal, and what an import left in the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from ledger.bank.statements import Statement, StatementRejected
from tests.support import ROOT
from tests.support.db import row, rows

SAMPLES = ROOT / "tests" / "ledger" / "bank" / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def refused(parse: Callable[[bytes], list[Statement]], data: bytes, *, field: str,
            says: str) -> StatementRejected:
    """The parser refuses the whole file, naming `field`, with `says` in the reason."""
    with pytest.raises(StatementRejected) as caught:
        parse(data)
    error = caught.value
    assert error.field == field, error.detail
    assert says in error.detail
    assert error.status == 422
    assert error.code == "statement_rejected"
    return error


def swap(data: bytes, replacements: dict[str, str]) -> bytes:
    """A sample file with its references, accounts and balances swapped for this ledger's;
    each one must be there, so a test never passes on a replacement that did nothing."""
    for old, new in replacements.items():
        assert old.encode() in data, old
        data = data.replace(old.encode(), new.encode())
    return data


def deposit(engine: Engine, reference: str) -> tuple[str, int]:
    found = row(engine, "SELECT status, open_fen FROM expected_deposits WHERE reference = :r",
                r=reference)
    return found["status"], found["open_fen"]


def instruction(engine: Engine, e2e: str) -> tuple[str, str]:
    """(status, bank_status) of a release or refund instruction."""
    return tuple(row(engine, "SELECT status, bank_status FROM release_instructions "  # type: ignore[return-value]
                             "WHERE end_to_end_id = :e UNION ALL SELECT status, bank_status "
                             "FROM refund_instructions WHERE end_to_end_id = :e",
                     e=e2e).values())


def line_kinds(engine: Engine, file_id: int) -> list[tuple[str, str, str | None]]:
    """(position, matched kind, matched ref) of a file's lines, in the file's order."""
    return [(r["position"], r["matched_kind"], r["matched_ref"]) for r in rows(
        engine, "SELECT position, matched_kind, matched_ref FROM statement_lines "
                "WHERE file_id = :f ORDER BY id", f=file_id)]
