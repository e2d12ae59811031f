"""Statement files sent in a zip or a gzip: opened with bounded decompression.

A bank that sends a day's statements at once often zips them (one camt.053 per account), or
gzips a big one. Each member is read as the file it is (any format `read_file` reads), and the
statements of all members come out in member order, each one's position prefixed with its
member's name (`test.xml: Stmt[1]`), so a refusal or a break points at the right file.

A decompression bomb (a few kilobytes that unpack to gigabytes) is refused by name having
unpacked at most `container_unpacked_bytes_max` bytes: a zip's sizes and ratios are checked
from its directory before anything is unpacked, and every member is then read in chunks,
counting what really comes out (a directory can lie). An archive inside an archive is not
opened. A zip that is an Excel workbook (XLSX is a zip with `xl/workbook.xml`) is not a
container: `is_workbook` tells it apart, and detect_format calls it "xlsx".
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Final

from ledger.bank import limits
from ledger.bank.model import ParsedFile, RefusedStatement, Statement, StatementRejected

# What all members of one archive may unpack to, together: the bound on one statement file,
# so an archive can never hand the parsers more than one plain upload could.
container_unpacked_bytes_max: Final = limits.statement_bytes_max
# Members of one archive: a bank's day is one file per account, a few dozen at most.
container_members_max: Final = 1_000
# Unpacked size over packed size, per zip member and for a whole gzip. Statement XML packs
# 10 to 30 times; a run of zeros 1,000 times: past this, it is a bomb, not a statement.
container_compression_ratio_max: Final = 200
# The ratio is judged only past this many unpacked bytes: a tiny file's ratio means nothing.
_RATIO_FLOOR_BYTES: Final = 1024 * 1024
# Members are unpacked this much at a time, so the bound is checked before more is held.
_UNPACK_CHUNK_BYTES: Final = 1024 * 1024

_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")  # a member first, or an empty archive
_GZIP_MAGIC: Final = b"\x1f\x8b"
_WORKBOOK_MEMBER: Final = "xl/workbook.xml"
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS  # zlib's way of saying "a gzip header and trailer"

# What zipfile raises for a zip it cannot read. ValueError: an end record that puts the
# directory past where it is (zipfile seeks to a negative offset), and a member's name flagged
# UTF-8 that is not (UnicodeDecodeError is a ValueError).
_ZIP_FAULTS: Final = (zipfile.BadZipFile, OSError, ValueError)

MemberReader = Callable[[bytes, str], ParsedFile]


def container_kind(data: bytes) -> str | None:
    """"zip" or "gzip" by the first bytes, else None."""
    if data.startswith(_ZIP_MAGICS):
        return "zip"
    if data.startswith(_GZIP_MAGIC):
        return "gzip"
    return None


def is_workbook(data: bytes) -> bool:
    """Whether a zip is an XLSX workbook (the bank's Excel export, read with its profile)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _WORKBOOK_MEMBER in archive.NameToInfo
    except _ZIP_FAULTS:  # not a workbook: read_container then refuses the zip by name
        return False


def read_container(data: bytes, filename: str | None, read_member: MemberReader) -> ParsedFile:
    """Every statement of every member, in member order, each read or refused. A fault of the
    archive itself (not a zip, a bomb, too many members) refuses the file; a member that
    cannot be read is refused on its own, and the others are still read."""
    kind = container_kind(data)
    if kind == "zip":
        items: list[Statement | RefusedStatement] = []
        tally = _Tally()
        for name, member in _zip_members(data):
            read = _member_items(name, member, read_member)
            tally.add(read, name)  # past a limit: refused here, before the next member
            items.extend(read)
        return ParsedFile("zip", tuple(items))
    if kind == "gzip":
        name = _gunzipped_name(filename)
        return ParsedFile("gzip", tuple(_member_items(name, _gunzip(data), read_member)))
    raise StatementRejected("not a zip or gzip archive", field="file")


def _member_items(name: str, member: bytes | StatementRejected, read_member: MemberReader
                  ) -> list[Statement | RefusedStatement]:
    if isinstance(member, StatementRejected):
        return [RefusedStatement(name, member.detail, _in(name, member.field or "file"))]
    if container_kind(member) is not None and not is_workbook(member):  # a workbook is a file
        return [RefusedStatement(name, "an archive inside an archive is not opened: send the "
                                 "statement files themselves, zipped once", name)]
    try:
        parsed = read_member(member, name)
    except StatementRejected as exc:
        return [RefusedStatement(name, exc.detail, _in(name, exc.field or "file"))]
    return [_prefixed(item, name) for item in parsed.items]


class _Tally:
    """Entries and transaction details of the members read so far, against the limits of one
    file: each member is bounded by its parser alone, so without this a zip of members each
    just under `statement_entries_max` would hand on that many times the limit."""

    def __init__(self) -> None:
        self.entries = 0
        self.details = 0

    def add(self, items: list[Statement | RefusedStatement], name: str) -> None:
        for item in items:
            if isinstance(item, Statement):
                self.entries += len(item.entries)
                self.details += sum(len(e.details) for e in item.entries)
        if self.entries > limits.statement_entries_max:
            raise StatementRejected(
                f"the archive's members hold {self.entries} entries up to {name[:80]!r}, over "
                f"the limit of {limits.statement_entries_max} per file", field="file")
        if self.details > limits.statement_details_max:
            raise StatementRejected(
                f"the archive's members hold {self.details} transaction details up to "
                f"{name[:80]!r}, over the limit of {limits.statement_details_max} per file",
                field="file")


def _prefixed(item: Statement | RefusedStatement, name: str) -> Statement | RefusedStatement:
    """The item with every position it carries prefixed by its member's name."""
    if isinstance(item, RefusedStatement):
        return dataclasses.replace(item, position=_in(name, item.position),
                                   field=_in(name, item.field))
    entries = tuple(dataclasses.replace(e, position=_in(name, e.position))
                    for e in item.entries)
    return dataclasses.replace(item, position=_in(name, item.position), entries=entries)


def _in(name: str, position: str) -> str:
    return f"{name}: {position}"


# --- zip -------------------------------------------------------------------------------------
def _zip_members(data: bytes) -> Iterator[tuple[str, bytes | StatementRejected]]:
    """Each file member's name and bytes (or why it cannot be unpacked), in archive order."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_FAULTS as exc:
        raise StatementRejected(f"not a readable zip archive: {exc}", field="file") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        _check_directory(infos)
        budget = _Budget()
        for info in infos:
            yield info.filename, _unzipped(archive, info, budget)


def _check_directory(infos: list[zipfile.ZipInfo]) -> None:
    """The archive's own account of its members, checked before anything is unpacked."""
    if not infos:
        raise StatementRejected("the zip archive holds no file", field="file")
    if len(infos) > container_members_max:
        raise StatementRejected(f"the zip archive holds {len(infos)} files, over the limit "
                                f"of {container_members_max}", field="file")
    declared = sum(info.file_size for info in infos)
    if declared > container_unpacked_bytes_max:
        raise StatementRejected(_past_limit(declared), field="file")
    for info in infos:
        if info.file_size > _RATIO_FLOOR_BYTES and \
                info.file_size > container_compression_ratio_max * max(info.compress_size, 1):
            raise StatementRejected(_over_ratio(info.file_size, info.compress_size),
                                    field=info.filename)


class _Budget:
    """What the archive's members have really unpacked to so far, against the bound."""

    def __init__(self) -> None:
        self.used_bytes = 0

    def take(self, size: int) -> None:
        self.used_bytes += size
        if self.used_bytes > container_unpacked_bytes_max:
            raise StatementRejected(_past_limit(self.used_bytes), field="file")


def _unzipped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget
              ) -> bytes | StatementRejected:
    """The member's bytes, unpacked a chunk at a time against the bound; a member zipfile
    cannot unpack (encrypted, a method it lacks, a bad CRC) is refused on its own."""
    chunks: list[bytes] = []
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_UNPACK_CHUNK_BYTES):
                budget.take(len(chunk))
                chunks.append(chunk)
    except ValueError as exc:  # the archive's directory points where no member starts: a
        # fault of the archive, not of this member, so the file is refused
        raise StatementRejected(f"not a readable zip archive: {exc}", field="file") from None
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError,
            zlib.error) as exc:
        return StatementRejected(f"the zip member cannot be unpacked: {exc}", field="file")
    return b"".join(chunks)


# --- gzip ------------------------------------------------------------------------------------
def _gunzip(data: bytes) -> bytes:
    """A gzip's bytes (every member of a multi-member gzip, one after the other), unpacked a
    chunk at a time: refused once past the bound or the ratio, whatever its trailer says."""
    out: list[bytes] = []
    unpacked = 0
    rest = data
    try:
        while rest:
            stream = zlib.decompressobj(_GZIP_WBITS)
            pending = rest
            while pending and not stream.eof:
                chunk = stream.decompress(pending, _UNPACK_CHUNK_BYTES)
                pending = stream.unconsumed_tail
                unpacked += len(chunk)
                _check_gzip(unpacked, len(data))
                out.append(chunk)
            if not stream.eof:
                raise StatementRejected("the gzip file ends before its data does (truncated?)",
                                        field="file")
            rest = stream.unused_data
    except zlib.error as exc:
        raise StatementRejected(f"not a readable gzip file: {exc}", field="file") from None
    return b"".join(out)


def _check_gzip(unpacked: int, packed: int) -> None:
    if unpacked > container_unpacked_bytes_max:
        raise StatementRejected(_past_limit(unpacked), field="file")
    if unpacked > _RATIO_FLOOR_BYTES and unpacked > container_compression_ratio_max * packed:
        raise StatementRejected(_over_ratio(unpacked, packed), field="file")


def _gunzipped_name(filename: str | None) -> str:
    """The member's name: the file's without `.gz` (`day.xml.gz` -> `day.xml`)."""
    name = (filename or "").rsplit("/", 1)[-1]
    if name.lower().endswith(".gz"):
        return name[:-3] or "gzip"
    return name or "gzip"


def _past_limit(size: int) -> str:
    return (f"the archive unpacks past {container_unpacked_bytes_max} bytes "
            f"({size} or more): refused as a decompression bomb")


def _over_ratio(unpacked: int, packed: int) -> str:
    return (f"unpacks {unpacked} bytes from {packed}, over {container_compression_ratio_max} "
            f"times its packed size: refused as a decompression bomb")
