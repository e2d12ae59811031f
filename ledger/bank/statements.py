"""Bank statements in, one normalised model out (DOMAIN.md flow 8, bank reconciliation).

    statements = detect_and_parse(read_statement(upload), filename)
    parsed = read_file(data, filename, profile=None, profiles=loaded)  # each read or refused

A bank's own CSV or Excel export is read by its bank profile (profile.py, profiled.py).

Every parser returns the whole file or raises `StatementRejected` (HTTP 422) naming where the
file is at fault; nothing partial is ever returned. The formats, the CSV specification and
the hostile-input rules are in docs/bank-formats.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import BinaryIO, Final

from ledger.bank import limits
from ledger.bank.bankcsv import COLUMNS as CSV_COLUMNS
from ledger.bank.bankcsv import parse_csv, read_csv
from ledger.bank.camt import parse_camt, statements_from_tree
from ledger.bank.containers import container_kind, is_workbook, read_container
from ledger.bank.model import (
    Direction,
    EntryStatus,
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementEntry,
    StatementRejected,
    TxDetail,
    booked_movement_fen,
    check_statement_size,
)
from ledger.bank.mt940 import looks_like_mt940, parse_mt940, read_mt940
from ledger.bank.profile import BankProfile, ProfileFormat, ProfileReader
from ledger.bank.profiled import (
    csv_rows,
    header_columns,
    message_id_of,
    read_profiled,
    read_rows,
)
from ledger.bank.xlsx import xlsx_rows
from ledger.bank.xmlfile import parse_xml

__all__ = [
    "CSV_COLUMNS",
    "BankProfile",
    "Direction",
    "EntryStatus",
    "ParsedFile",
    "RefusedStatement",
    "Statement",
    "StatementEntry",
    "StatementRejected",
    "TxDetail",
    "booked_movement_fen",
    "detect_and_parse",
    "detect_format",
    "parse_camt053",
    "parse_camt054",
    "parse_csv",
    "parse_mt940",
    "profile_by_header",
    "read_file",
    "read_profiled",
    "read_statement",
]

_CAMT_KINDS: Final = frozenset({"052", "053", "054"})
_MT940_START_RE: Final = re.compile(rb"(?:\{1:|:20:)")
_SNIFF_BYTES: Final = 4096
# A CSV's header is looked for among a profile's title lines in this much of the file's start.
_HEADER_SNIFF_BYTES: Final = 64 * 1024
_EXTENSIONS: Final = {
    "xml": "camt", "053": "camt", "054": "camt", "camt": "camt",
    "sta": "mt940", "940": "mt940", "mt940": "mt940", "csv": "csv", "052": "camt"}


def parse_camt053(data: bytes) -> list[Statement]:
    """camt.053.001.02 to .14 (BkToCstmrStmt): every Stmt, with its OPBD/CLBD balances."""
    return parse_camt(data, frozenset({"053"}))


def parse_camt054(data: bytes) -> list[Statement]:
    """camt.054.001.02 to .14 (BkToCstmrDbtCdtNtfctn): every Ntfctn; no balances."""
    return parse_camt(data, frozenset({"054"}))


def read_statement(stream: BinaryIO) -> bytes:
    """Read an upload, refusing it once it passes `statement_bytes_max`: a 200 MB file costs
    one chunk over the limit, not 200 MB of memory and a parse."""
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(limits.statement_read_chunk_bytes):
        size += len(chunk)
        if size > limits.statement_bytes_max:
            raise StatementRejected(
                f"file is over the {limits.statement_bytes_max} byte limit", field="file")
        chunks.append(chunk)
    return b"".join(chunks)


def detect_format(data: bytes, filename: str | None = None) -> str:
    """"camt", "mt940", "csv", "zip", "gzip" or "xlsx", from the first bytes; the file name's
    extension decides only when the content does not, so a mislabelled file is still read
    for what it is."""
    archive = _archive_format(data)
    if archive is not None:
        return archive
    head = data[:_SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return "camt"
    if _MT940_START_RE.match(head) or looks_like_mt940(head):  # after a bank's header lines
        return "mt940"
    first_line = head.split(b"\n", 1)[0].lower()
    if b"account" in first_line and b"direction" in first_line:
        return "csv"
    extension = (filename or "").rpartition(".")[2].lower() if filename and "." in filename \
        else ""
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    raise StatementRejected(
        "not a statement we read: expected camt.052, camt.053 or camt.054 XML, MT940 or our "
        "CSV (or a zip or gzip of them)",
        field="file")


def _archive_format(data: bytes) -> str | None:
    """"zip" or "gzip" for an archive of statement files, "xlsx" for a zip that is an Excel
    workbook (a statement itself, not a container), else None."""
    kind = container_kind(data)
    if kind == "zip" and is_workbook(data):
        return "xlsx"
    return kind


def detect_and_parse(data: bytes, filename: str | None = None,
                     profile: BankProfile | None = None,
                     profiles: Sequence[BankProfile] = ()) -> list[Statement]:
    """Every statement of the file, or the first fault raised: for a caller that takes a file
    whole."""
    return read_file(data, filename, profile, profiles).strict()


def read_file(data: bytes, filename: str | None = None, profile: BankProfile | None = None,
              profiles: Sequence[BankProfile] = ()) -> ParsedFile:
    """Every statement of the file in file order, each read or refused with its reason; a
    fault in the file itself (its format, its encoding, its syntax) raises.

    A bank's own export is read by `profile` when the caller names one, else by the one of
    `profiles` whose header the file's matches (docs/bank-formats.md, "bank profiles")."""
    check_statement_size(data)
    archive = _archive_format(data)
    if archive in ("zip", "gzip"):  # each member read as a file: by the profile, if named
        return read_container(data, filename,
                              lambda member, name: read_file(member, name, profile, profiles))
    if profile is not None:
        return read_profiled(data, profile)
    if archive == "xlsx":
        return _read_workbook(data, profiles)
    return _read_text(data, _text_kind(data, filename, profiles))


def _read_text(data: bytes, kind: str | BankProfile) -> ParsedFile:
    if isinstance(kind, BankProfile):
        return read_profiled(data, kind)
    if kind == "camt":
        return statements_from_tree(parse_xml(data), _CAMT_KINDS)
    if kind == "mt940":
        return read_mt940(data)
    return read_csv(data)


def _text_kind(data: bytes, filename: str | None, profiles: Sequence[BankProfile]
               ) -> str | BankProfile:
    """A text file's format; a bank's CSV export by the profile whose header it has."""
    found = profile_by_header(data, profiles)
    return found if found is not None else detect_format(data, filename)


def profile_by_header(data: bytes, profiles: Sequence[BankProfile]) -> BankProfile | None:
    """The one CSV profile whose header row the file's start holds; None if none does, and
    a refusal naming them if several do (the caller must then name one)."""
    head = data[:_HEADER_SNIFF_BYTES]
    if len(data) > len(head):  # whole lines only: no multibyte character is cut in two
        head = head[:head.rfind(b"\n") + 1]
    candidates = [p for p in profiles if p.format is ProfileFormat.csv
                  and p.reader is ProfileReader.columns]
    return _one_match(candidates, lambda p: _csv_head_matches(head, p))


def _csv_head_matches(head: bytes, profile: BankProfile) -> bool:
    try:
        return header_columns(csv_rows(head, profile), profile) is not None
    except StatementRejected:  # not text in its encoding, not its CSV: not this profile's
        return False


def _read_workbook(data: bytes, profiles: Sequence[BankProfile]) -> ParsedFile:
    rows = xlsx_rows(data)
    candidates = [p for p in profiles if p.format is ProfileFormat.xlsx]
    found = _one_match(candidates, lambda p: header_columns(rows, p) is not None)
    if found is None:
        names = ", ".join(p.name for p in candidates) or "none is loaded"
        raise StatementRejected("an Excel workbook needs a bank profile: name one (profile=) "
                                f"or add one whose header the workbook has (Excel profiles: "
                                f"{names})", field="profile")
    return read_rows(rows, found, message_id_of(data))


def _one_match(candidates: Sequence[BankProfile], matches: Callable[[BankProfile], bool]
               ) -> BankProfile | None:
    found = [p for p in candidates if matches(p)]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise StatementRejected(f"the header matches the profiles {names}: name one "
                                "(profile=)", field="profile")
    return found[0] if found else None
