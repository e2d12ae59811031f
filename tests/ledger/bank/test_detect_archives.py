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
    read_container,
)
from ledger.bank.model import ParsedFile, RefusedStatement, Statement, StatementRejected
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


def _zeros_zip(size: int) -> bytes:
    """A zip of one member of `size` zero bytes, written in chunks (its directory honest)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("bomb.xml", "w", force_zip64=True) as member:
        for _ in range(size // CHUNK):
            member.write(bytes(CHUNK))
        member.write(bytes(size % CHUNK))
    return out.getvalue()


def _refused_in_bounds(data: bytes, says: str) -> StatementRejected:
    """Refused naming `says`, in bounded time and memory: what is unpacked is at most the
    limit and a chunk, never the bomb."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(StatementRejected) as caught:
            read_file(data, "bomb.zip")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert says in caught.value.detail, caught.value.detail
    assert elapsed < BOMB_SECONDS_MAX
    assert peak < container_unpacked_bytes_max + 4 * CHUNK
    return caught.value


def test_a_zip_bomb_is_refused_by_its_size_before_it_is_unpacked() -> None:
    data = _zeros_zip(container_unpacked_bytes_max + CHUNK)
    assert len(data) < 100 * 1024  # a small file ...
    _refused_in_bounds(data, f"unpacks past {container_unpacked_bytes_max} bytes")


def test_a_zip_member_that_packs_too_well_is_refused_by_its_ratio() -> None:
    data = _zeros_zip(8 * CHUNK)  # within the size limit, but zeros pack 1,000 to 1
    error = _refused_in_bounds(data, f"over {container_compression_ratio_max} times")
    assert error.field == "bomb.xml"


def test_a_zip_whose_directory_lies_about_a_size_unpacks_no_more_than_it_says() -> None:
    honest = _zip(("a.xml", bytes(4 * CHUNK)))
    info = zipfile.ZipFile(io.BytesIO(honest)).getinfo("a.xml")
    size = info.file_size.to_bytes(4, "little")
    lying = honest.replace(size, (1000).to_bytes(4, "little"))  # local header and directory
    [member] = read_file(lying, "lie.zip").items
    assert isinstance(member, RefusedStatement)
    assert "cannot be unpacked" in member.reason  # stopped at 1000 bytes: the CRC is wrong


def test_a_gzip_bomb_is_refused_having_unpacked_at_most_the_limit() -> None:
    """A gzip states no size that can be trusted: it is counted as it unpacks. Random blocks
    repeated pack about 80 to 1, under the ratio limit, so the size limit is what stops it."""
    block = os.urandom(16 * 1024)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [packer.compress(block * 64) for _ in range(container_unpacked_bytes_max // CHUNK + 2)]
    data = b"".join(parts) + packer.flush()
    assert len(data) * container_compression_ratio_max > container_unpacked_bytes_max
    assert len(data) < limits.statement_bytes_max
    _refused_in_bounds(data, f"unpacks past {container_unpacked_bytes_max} bytes")


def test_a_gzip_of_zeros_is_refused_by_its_ratio() -> None:
    _refused_in_bounds(gzip.compress(bytes(16 * CHUNK)), "decompression bomb")


@pytest.mark.parametrize(("data", "says"), [
    (b"PK\x03\x04" + b"\x00" * 60, "not a readable zip"),
    (_zip(), "holds no file"),
    (gzip.compress(b"<x/>")[:-12], "ends before its data does"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff", "not a readable gzip"),
])
def test_a_broken_archive_is_refused_by_name(data: bytes, says: str) -> None:
    with pytest.raises(StatementRejected, match=says) as caught:
        read_file(data, "x.zip")
    assert caught.value.field == "file"


def test_too_many_members_are_refused() -> None:
    archive = _zip(*((f"m{i}.xml", b"<x/>") for i in range(container_members_max + 1)))
    with pytest.raises(StatementRejected, match=f"over the limit of {container_members_max}"):
        read_file(archive, "many.zip")


def test_a_zip_of_two_days_imports_through_the_api(banking: Banking) -> None:
    banking.set_today(DAY)
    m = banking.merchant("BANK-ZIP")
    sale, later = banking.sell_at(m, 10_000), banking.sell_at(m, 20_000)
    next_day = date(2026, 11, 3)
    day_one = Stmt(m.account, "ZIP-1", 0, DAY, (entry("CRDT", 10_000, DAY,
                                                      cref=sale["reference"]),))
    day_two = Stmt(m.account, "ZIP-2", 10_000, next_day,
                   (entry("CRDT", 20_000, next_day, cref=later["reference"]),))
    archive = _zip(("d1.xml", camt053([day_one], message_id="D1")),
                   ("d2.xml", camt053([day_two], message_id="D2")))
    answer = banking.import_file("BANK-ZIP", archive, filename="days.zip")
    assert [(s["statement_id"], s["outcome"]) for s in answer["statements"]] == [
        ("ZIP-1", {"deposit": 1}), ("ZIP-2", {"deposit": 1})]
    assert banking.open_breaks(m) == []


def _two_entries(statement_id: str) -> bytes:
    return camt053([Stmt("6226090000000001", statement_id, 0, DAY,
                         (entry("CRDT", 100, DAY, cref=f"A-{statement_id}"),
                          entry("CRDT", 200, DAY, cref=f"B-{statement_id}")))],
                   message_id=statement_id)


@pytest.mark.parametrize("limit", ["statement_entries_max", "statement_details_max"])
def test_a_zip_is_bounded_by_the_entries_of_all_its_members_together(
        monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    """Each member is within the limit alone; three together are not. The file is refused
    by name, and the member after the one that passes the limit is never read."""
    monkeypatch.setattr(limits, limit, 5)
    members = [(f"m{n}.xml", _two_entries(f"S{n}")) for n in range(1, 5)]
    assert len(read_file(_zip(*members[:2]), "day.zip").statements) == 2  # 4 is within 5
    read: list[str] = []

    def reader(data: bytes, name: str) -> ParsedFile:
        read.append(name)
        return read_file(data, name)

    with pytest.raises(StatementRejected, match="over the limit of 5 per file") as caught:
        read_container(_zip(*members), "day.zip", reader)
    assert caught.value.field == "file" and "'m3.xml'" in caught.value.detail
    assert read == ["m1.xml", "m2.xml", "m3.xml"]
