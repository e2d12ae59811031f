"""Hostile and broken files: each is refused whole, with the reason and the place, and nothing
is returned. No entity is expanded, no URL or file is opened, no oversized file is parsed."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.bank import limits
from ledger.bank.statements import (
    Statement,
    StatementRejected,
    detect_and_parse,
    parse_camt053,
    parse_camt054,
    parse_csv,
    parse_mt940,
    read_statement,
)
from tests.support.bank import refused, sample

DTD_REFUSED = "a DTD (<!DOCTYPE ...>) is not accepted"
MIB = 1024 * 1024
Parser = Callable[[bytes], list[Statement]]


@pytest.mark.parametrize("name", ["hostile_xxe.xml", "hostile_billion_laughs.xml",
                                  "hostile_dtd.xml"])
@pytest.mark.parametrize("parse", [parse_camt053, parse_camt054, detect_and_parse])
def test_a_dtd_is_refused_before_any_entity_is_expanded_or_resolved(name: str,
                                                                   parse: Parser) -> None:
    started = time.perf_counter()
    error = refused(parse, sample(name), field="line 2", says=DTD_REFUSED)
    assert "root:" not in error.detail  # nothing of /etc/passwd
    assert time.perf_counter() - started < 0.5  # the billion laughs were never expanded


def test_an_internal_entity_without_a_doctype_cannot_be_declared() -> None:
    # An entity reference with no declaration is not well-formed: there is no way around the DTD.
    data = sample("camt053_v08_batch_reversal.xml").replace(
        b"<MsgId>BOC-053-20240305-0042</MsgId>", b"<MsgId>&xxe;</MsgId>")
    refused(parse_camt053, data, field="line 7, column 13", says="undefined entity")


def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    with big.open("wb") as out:
        out.write(b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                  b'camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>')
        padding = b"A" * MIB
        for _ in range(200):
            out.write(padding)
    assert big.stat().st_size > 200 * MIB
    started = time.perf_counter()
    with big.open("rb") as upload:
        with pytest.raises(StatementRejected) as caught:
            read_statement(upload)
        # read one chunk past the limit and stopped
        assert upload.tell() <= limits.statement_bytes_max + limits.statement_read_chunk_bytes
    assert caught.value.field == "file"
    assert f"over the {limits.statement_bytes_max} byte limit" in caught.value.detail
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("parse", [parse_camt053, parse_camt054, parse_mt940, parse_csv,
                                   detect_and_parse])
def test_every_parser_checks_the_size_first(parse: Parser) -> None:
    data = b"<" + b" " * limits.statement_bytes_max
    started = time.perf_counter()
    refused(parse, data, field="file", says="byte limit")
    assert time.perf_counter() - started < 2.0


def test_a_stream_within_the_limit_is_read_whole() -> None:
    data = sample("camt053_v02_statement.xml")
    assert read_statement(io.BytesIO(data)) == data


def test_the_wrong_namespace_is_refused_naming_it() -> None:
    error = refused(parse_camt053, sample("wrong_namespace.xml"), field="<Document>",
                    says="'urn:iso:std:iso:20022:tech:xsd:camt.060.001.05'")
    assert "expected camt.053" in error.detail
    refused(detect_and_parse, sample("wrong_namespace.xml"), field="<Document>",
            says="camt.060.001.05")


def test_no_namespace_is_refused() -> None:
    refused(parse_camt053, b"<Document><BkToCstmrStmt/></Document>", field="<Document>",
            says="no namespace")


def test_truncated_xml_is_refused_naming_the_position() -> None:
    refused(parse_camt053, sample("truncated.xml"), field="line 52, column 7",
            says="no element found: the file ends before the document does")


def test_non_xml_garbage_is_refused() -> None:
    refused(parse_camt053, sample("garbage.bin"), field="line 1, column 0",
            says="not well-formed XML")
    refused(detect_and_parse, sample("garbage.bin"), field="file", says="not a statement")
    # Any byte is Latin-1, so garbage decodes; it is then neither MT940 nor our CSV.
    refused(parse_mt940, sample("garbage.bin"), field="line 1", says="no MT940 statement")
    refused(parse_csv, sample("garbage.bin"), field="row 1", says="unknown column")


def test_an_empty_file_is_refused_by_every_parser() -> None:
    refused(parse_camt053, b"", field="line 1, column 0", says="no element found")
    refused(parse_mt940, b"", field="line 1", says="no MT940 statement")
    refused(parse_csv, b"", field="row 1", says="header row is required")
    refused(detect_and_parse, b"", field="file", says="not a statement")


def test_too_many_entries_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "statement_entries_max", 5)
    entry = (b"<Ntry><Amt Ccy=\"CNY\">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
             b"<Sts>BOOK</Sts></Ntry>")
    data = (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
            b"<GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S</Id><Acct><Id><Othr><Id>1</Id>"
            b"</Othr></Id><Ccy>CNY</Ccy></Acct>"
            + entry * (limits.statement_entries_max + 1) + b"</Stmt></BkToCstmrStmt></Document>")
    refused(parse_camt053, data, field="Ntry", says="over the limit of 5")
