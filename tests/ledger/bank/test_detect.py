"""detect_and_parse: the format comes from the content; the file name only breaks a tie."""

from __future__ import annotations

import pytest

from ledger.bank.statements import detect_and_parse, detect_format
from tests.support.bank import refused, sample


@pytest.mark.parametrize(("name", "kind", "statement_format"), [
    ("camt053_v02_statement.xml", "camt", "camt.053.001.02"),
    ("camt053_v04_two_statements.xml", "camt", "camt.053.001.04"),
    ("camt053_v06_reversal_pending.xml", "camt", "camt.053.001.06"),
    ("camt053_v08_batch_reversal.xml", "camt", "camt.053.001.08"),
    ("camt054_v02_notification.xml", "camt", "camt.054.001.02"),
    ("camt054_v08_notification.xml", "camt", "camt.054.001.08"),
    ("mt940_two_statements.sta", "mt940", "mt940"),
    ("mt940_swift_envelope.sta", "mt940", "mt940"),
    ("statement.csv", "csv", "csv"),
])
def test_every_sample_is_recognised_by_its_content(name: str, kind: str,
                                                   statement_format: str) -> None:
    data = sample(name)
    assert detect_format(data) == kind
    assert detect_format(data, "upload.bin") == kind  # a wrong name does not mislead
    statements = detect_and_parse(data)
    assert statements and {s.format for s in statements} == {statement_format}


def test_a_bom_and_leading_blank_lines_do_not_hide_the_format() -> None:
    assert detect_format(b"\xef\xbb\xbf\r\n  " + sample("camt053_v02_statement.xml")) == "camt"


def test_the_name_decides_only_when_the_content_cannot() -> None:
    bad_csv = b"acct;ccy;amount\n"
    refused(lambda d: detect_and_parse(d, "statement.csv"), bad_csv, field="row 1",
            says="unknown column 'acct;ccy;amount'")
    refused(detect_and_parse, bad_csv, field="file", says="not a statement we read")
