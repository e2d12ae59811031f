"""Statements in a zip or a gzip: each member read as its own file, in member order, positions
prefixed with the member's name; a member refused alone; a decompression bomb, an archive in an
archive and an Excel workbook told apart and refused by name."""

from __future__ import annotations

import gzip
import io
import os
import time
import tracemalloc
import zipfile
import zlib
from datetime import date

import pytest

from ledger.bank import limits
from ledger.bank.containers import (
    container_compression_ratio_max,
    container_members_max,
    container_unpacked_bytes_max,
)
from ledger.bank.model import RefusedStatement, Statement, StatementRejected
from ledger.bank.statements import detect_and_parse, detect_format, read_file
from tests.support.bank import sample
from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 2)
BOMB_SECONDS_MAX = 3.0  # a bomb is refused in about the time it takes to unpack the limit
CHUNK = 1024 * 1024


def _zip(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def _day(statement_id: str, opening_fen: int, fen: int, day: date = DAY) -> bytes:
    return camt053([Stmt("6226090000000001", statement_id, opening_fen, day,
                         (entry("CRDT", fen, day, cref=f"R-{statement_id}"),))],
                   message_id=statement_id)


def test_a_zip_reads_every_member_in_order_with_its_name_in_every_position() -> None:
    archive = _zip(("a.xml", _day("S1", 0, 100)), ("sub/b.xml", _day("S2", 100, 200)),
                   ("c.sta", sample("mt940_two_statements.sta")))
    parsed = read_file(archive, "day.zip")
    assert parsed.format == "zip"
    positions = [item.position for item in parsed.items]
    assert positions[:2] == ["a.xml: Stmt[1]", "sub/b.xml: Stmt[1]"]
    assert all(p.startswith("c.sta: ") for p in positions[2:]) and len(positions) == 4
    first = parsed.statements[0]
    assert first.statement_id == "S1" and first.entries[0].position == "a.xml: Stmt[1]/Ntry[1]"
    assert [s.closing_booked_fen for s in parsed.statements[:2]] == [100, 300]


def test_a_member_refused_whole_is_refused_alone_and_the_others_are_read() -> None:
    archive = _zip(("good.xml", _day("S1", 0, 100)), ("junk.bin", b"\x00\x01garbage"),
                   ("bad.xml", b"<Document"), ("late.xml", _day("S2", 100, 50)))
    items = read_file(archive, "day.zip").items
    assert [type(i).__name__ for i in items] == ["Statement", "RefusedStatement",
                                                 "RefusedStatement", "Statement"]
    junk, bad = items[1], items[2]
    assert isinstance(junk, RefusedStatement) and isinstance(bad, RefusedStatement)
    assert (junk.position, junk.field) == ("junk.bin", "junk.bin: file")
    assert "not a statement we read" in junk.reason
    assert bad.field.startswith("bad.xml: line 1") and "not well-formed" in bad.reason
    with pytest.raises(StatementRejected, match=r"junk\.bin"):
        detect_and_parse(archive)  # a caller taking the file whole still refuses it whole


def test_a_gzip_is_its_one_member_named_after_the_file() -> None:
    data = gzip.compress(_day("S1", 0, 100))
    assert detect_format(data, "x") == "gzip"
    [statement] = read_file(data, "statements/day.xml.gz").statements
    assert statement.position == "day.xml: Stmt[1]"
    assert statement.entries[0].amount_fen == 100
    # a multi-member gzip (two gzips written one after the other) is one stream of text
    text = _day("S1", 0, 100)
    assert read_file(gzip.compress(text[:50]) + gzip.compress(text[50:]), "d.gz").statements


def test_an_archive_inside_an_archive_is_not_opened() -> None:
    inner = _zip(("a.xml", _day("S1", 0, 100)))
    archive = _zip(("inner.zip", inner), ("inner.xml.gz", gzip.compress(b"<x/>")),
                   ("b.xml", _day("S2", 0, 100)))
    items = read_file(archive, "outer.zip").items
    nested = [i for i in items if isinstance(i, RefusedStatement)]
    assert [i.position for i in nested] == ["inner.zip", "inner.xml.gz"]
    assert all("archive inside an archive" in i.reason for i in nested)
    assert [i.position for i in items if isinstance(i, Statement)] == ["b.xml: Stmt[1]"]


def test_an_excel_workbook_is_not_a_container() -> None:
    workbook = _zip(("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<workbook/>"),
                    ("xl/worksheets/sheet1.xml", b"<worksheet/>"))
    assert detect_format(workbook, "export.xlsx") == "xlsx"
    assert detect_format(_zip(("a.xml", b"<x/>")), "a.zip") == "zip"


def test_a_zip_naming_a_workbook_but_not_one_is_refused_by_name() -> None:
    workbook = _zip(("xl/workbook.xml", b"<workbook/>"))
    with pytest.raises(StatementRejected, match="not a readable Excel workbook"):
        read_file(workbook, "export.xlsx")
