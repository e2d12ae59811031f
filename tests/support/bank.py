"""Helpers the bank-file tests share: the sample files and a refusal check."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.bank.statements import Statement, StatementRejected
from tests.support import ROOT

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
