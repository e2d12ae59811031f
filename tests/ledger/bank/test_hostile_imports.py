"""Hostile and broken statement files through the API: each refused as a whole, with a
problem+json naming the element, line or row at fault, and nothing imported."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import Engine

from ledger.bank import limits
from tests.support.bank import deposit, sample, swap
from tests.support.db import nothing_imported
from tests.support.driver import Banking
from tests.support.http import assert_problem
from tests.support.statements import Stmt, camt053, entry

BANK = "BANK-HOSTILE"
upload_bytes_huge = 200 * 1024 * 1024
# Refused by its size, not read and parsed: far below what parsing 200 MB would take.
size_refusal_s_max = 20.0


@pytest.mark.parametrize(("name", "field", "says"), [
    ("hostile_xxe.xml", "line 2", "a DTD (<!DOCTYPE ...>) is not accepted"),
    ("hostile_billion_laughs.xml", "line 2", "a DTD (<!DOCTYPE ...>) is not accepted"),
    ("hostile_dtd.xml", "line 2", "a DTD (<!DOCTYPE ...>) is not accepted"),
    ("wrong_namespace.xml", "<Document>", "namespace 'urn:iso:std:iso:20022:tech:xsd:camt.060"),
    ("truncated.xml", "line 52, column 7", "the file ends before the document does"),
    ("garbage.bin", "file", "not a statement we read"),
])
def test_a_hostile_or_broken_xml_file_is_refused_naming_where(
        banking: Banking, engine: Engine, name: str, field: str, says: str) -> None:
    banking.merchant(BANK)
    with nothing_imported(banking.client, engine):
        response = banking.post_statement(BANK, sample(name), filename=name)
    assert_problem(response, 422, field=field, code="statement_rejected", detail_has=says)


def test_a_broken_mt940_and_a_broken_csv_name_their_line_and_row(banking: Banking,
                                                                  engine: Engine) -> None:
    m = banking.merchant(BANK)
    mt940 = swap(sample("mt940_two_statements.sta"), {"6226090000000048": m.account})
    cut = mt940[:mt940.index(b":62F:C240301")]  # the first statement loses its closing
    csv = swap(sample("statement.csv"), {"1234.56": "1234.567"})
    with nothing_imported(banking.client, engine):
        mt940_refused = banking.post_statement(BANK, cut, filename="day.sta")
        csv_refused = banking.post_statement(BANK, csv, filename="day.csv")
    assert_problem(mt940_refused, 422, field="line 9", code="statement_rejected",
                   detail_has="expected :62F: or :62M: after this field")
    assert_problem(csv_refused, 422, field="row 3, amount", code="statement_rejected",
                   detail_has="at most 2 decimals")


def test_a_file_that_does_not_add_up_is_refused_though_every_line_would_match(
        banking: Banking, engine: Engine) -> None:
    m = banking.merchant(BANK)
    sale = banking.sell_at(m, 10_000)
    day = date.fromisoformat(sale["sold_on"])
    good = camt053([Stmt(m.account, "S-1", 0, day,
                         (entry("CRDT", 10_000, day, cref=sale["reference"]),))])
    lying = good.replace(b"<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">100.00",
                         b"<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"CNY\">100.01")
    assert lying != good
    with nothing_imported(banking.client, engine):
        response = banking.post_statement(BANK, lying)
    assert_problem(response, 422, field="Stmt[1]/Bal", code="statement_rejected",
                   detail_has="balances do not add up")
    assert deposit(engine, sale["reference"]) == ("pending", 10_000)


def test_a_200_mb_upload_is_refused_by_its_declared_size(banking: Banking,
                                                         engine: Engine) -> None:
    banking.merchant(BANK)
    huge = b"<" + b"x" * (upload_bytes_huge - 1)
    with nothing_imported(banking.client, engine):
        started = time.monotonic()
        response = banking.post_statement(BANK, huge)
        elapsed_s = time.monotonic() - started
    del huge
    assert_problem(response, 413, field="body", code="body_too_large",
                   detail_has=str(limits.statement_bytes_max))
    assert elapsed_s < size_refusal_s_max


def test_a_200_mb_upload_without_a_length_is_refused_once_past_the_limit(
        banking: Banking, engine: Engine) -> None:
    banking.merchant(BANK)
    chunk = b"x" * (1024 * 1024)

    def stream() -> Iterator[bytes]:  # chunked: the size is known only by reading
        for _ in range(upload_bytes_huge // len(chunk)):
            yield chunk

    with nothing_imported(banking.client, engine):
        started = time.monotonic()
        response = banking.client.post(f"/v1/banks/{BANK}/statements",
                                       headers=banking.bank(BANK), content=stream())
        elapsed_s = time.monotonic() - started
    assert_problem(response, 413, field="body", code="body_too_large")
    assert elapsed_s < size_refusal_s_max
