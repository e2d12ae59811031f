"""Every camt file of the real-statement corpus (../shared/real-statements, SOURCES.md): read,
with what was read checked by hand against the file, or refused for a reason that is true of
that file (each refusal below says why it is right).

The files are others' test data (genkgo/camt, OCA/bank-statement-import) and are read where
they are, never copied into the project. Without the directory (a clone outside CI) these
tests skip, saying so.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest

from ledger.bank.model import (
    EntryStatus,
    RefusedStatement,
    Statement,
    StatementKind,
    booked_movement_fen,
)
from ledger.bank.statements import read_file


def _corpus() -> Path:
    named = os.environ.get("YUFU_REAL_STATEMENTS")
    if named:
        return Path(named)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "real-statements"


CORPUS = _corpus()
_ENTRY_RE = re.compile(rb"<Ntry>")


@dataclass(frozen=True)
class Read:
    """A statement read: its id, kind, balances and entries as the file states them; and for
    two entries, hand-checked from the file: (index, amount fen, direction, booking date,
    a reference (end-to-end id, creditor reference, bank reference or UETR))."""

    statement_id: str
    account: str
    currency: str
    opening_fen: int | None
    closing_fen: int | None
    entries: int
    checked: tuple[tuple[int, int, str, date | None, str], ...] = ()
    kind: StatementKind = StatementKind.final


@dataclass(frozen=True)
class Refused:
    """A statement refused: `says` is in the reason, `field` is where, and `why` is the
    arithmetic or fact of the file that makes the refusal true."""

    field: str
    says: str
    why: str


@dataclass(frozen=True)
class Expected:
    items: tuple[Read | Refused, ...]
    format: str = ""
    more: dict[str, object] = field(default_factory=dict)


EXPECTED: dict[str, Expected] = {
    "camt_genkgo_camt052.v8.xml": Expected((
        Read("AAAASESS-FP-ACCR001", "CH2801234000123456789", "SEK", None, None, 1,
             ((0, 20_000_000, "DBIT", date(2007, 10, 18), "AAAASESS-FP-ACCR-01"),),
             kind=StatementKind.interim),), "camt.052.001.08",
        # its batch (NbOfTxs 20) lists no transaction details, and the entry's note is kept
        {"additional_info": "Credit"}),
    "camt_genkgo_camt053.v2.all-balance-types.xml": Expected((Refused(
        "Stmt[1]/Bal", "opening 101 fen + booked entries 885 fen != closing 404 fen",
        "OPBD 1.01 + the one booked credit of 8.850 is 9.86, not the CLBD of 4.04 (and the "
        "PRCD 2.02 + 8.85 is not either); the other eight balance types are read past"),),
        "camt.053.001.02"),
    "camt_genkgo_camt053.v2.five.decimals.xml": Expected((Refused(
        "Stmt[1]/Bal", "opening 1815 fen + booked entries 885 fen != closing 2705 fen",
        "the amounts read exactly (18.150, 8.850, 27.050 are 1815, 885 and 2705 fen), and "
        "18.15 + 8.85 = 27.00, not the CLBD of 27.05"),), "camt.053.001.02"),
    "camt_genkgo_camt053.v2.minimal.xml": Expected((Refused(
        "Stmt[1]/Bal[2]/Amt", "CLBD balance is in SEK, the account in EUR",
        "Acct/Ccy is EUR and the CLBD's Amt has Ccy=\"SEK\" (its OPAV is CHF, its CLAV JPY)"),),
        "camt.053.001.02"),
    "camt_genkgo_camt053.v2.multi.statement.xml": Expected((
        Read("253EURNL26VAYB8060476890", "NL26VAYB8060476890", "EUR", 1815, 2700, 1,
             ((0, 885, "CRDT", date(2014, 12, 31), "000000001"),)),
        Read("254EURNL26VAYB8060476890", "NL26VAYB8060476890", "EUR", 2700, 2000, 1,
             ((0, 700, "DBIT", date(2014, 12, 31), "000000002"),)),
    ), "camt.053.001.02"),
    "camt_genkgo_camt053.v3.xml": Expected((Refused(
        "Stmt[1]/Bal[2]/Amt", "CLBD balance is in SEK, the account in EUR",
        "Acct/Ccy is EUR and the CLBD is in SEK (and its one detail, 105.750, is not the "
        "entry's 8.85)"),), "camt.053.001.03"),
    "camt_genkgo_camt053.v4.xml": Expected((Refused(
        "Stmt[1]/Bal[2]/Amt", "CLBD balance is in SEK, the account in EUR",
        "the OPBD is EUR, the CLBD SEK: one account cannot have both"),), "camt.053.001.04"),
    "camt_genkgo_camt053.v8.xml": Expected((Refused(
        "Stmt[1]/Bal[2]/Amt", "CLBD balance is in SEK, the account in EUR",
        "the OPBD is EUR, the CLBD SEK: one account cannot have both"),), "camt.053.001.08"),
    "camt_genkgo_camt054.v2.xml": Expected((
        # three TxDtls with no amount under one 200000 SEK debit: one line of the entry's
        # amount, their shared end-to-end id kept
        Read("AAAASESS-FP-ACCR001", "CH2801234000123456789", "SEK", None, None, 1,
             ((0, 20_000_000, "DBIT", date(2007, 10, 18), "MUELL/FINP/RA12345"),)),),
        "camt.054.001.02", {"remittance_has": "ISR ref number V2"}),
    "camt_genkgo_camt054.v4.xml": Expected((Refused(
        "Ntfctn[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/Amt", "amount in CHF on an account in SEK",
        "the entry is 200000 SEK, its details 3.1, 3.2 and 3.2 CHF, credits under a debit: "
        "nothing to attribute them by"),), "camt.054.001.04"),
    "camt_genkgo_camt054.v8-with-UETR.xml": Expected((
        Read("AAAASESS-FP-ACCR001", "CH2801234000123456789", "SEK", None, None, 1,
             ((0, 20_000_000, "DBIT", None, "255ae394-9965-4438-ac86-f406feada396"),)),),
        "camt.054.001.08"),
    "camt_genkgo_camt054.v8.xml": Expected((Refused(
        "Ntfctn[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/Amt", "amount in CHF on an account in SEK",
        "as v4: CHF details under a SEK entry"),), "camt.054.001.08"),
    "camt_genkgo_camt53.only-Dt-with-DtTm.xml": Expected((
        # an OPBD dated by DtTm only, 5442.09000 RON, and no entry or CLBD
        Read("I38y0h4YyLnQiOV6P7nEd44r2", "GB33BUKB20201555555555", "RON", 544_209, None, 0),),
        "camt.053.001.02", {"opening_date": date(2025, 7, 23)}),
    "camt_oca_test-camt053": Expected((Refused(
        "Stmt[1]/Bal", "opening 1556827 fen + booked entries -1299 fen != closing 1512112 fen",
        "15568.27 - 754.25 - 664.05 (a reversal booked as a debit) + 1405.31 = 15555.28, "
        "not the CLBD of 15121.12"),), "camt.053.001.02"),
    "camt_oca_test-camt053-txdtls": Expected((
        Read("20170323123456789012345", "CH1111000000123456789", "CHF", 7_596_015, 7_944_315,
             1, ((0, 348_300, "CRDT", date(2017, 3, 22), "20170323001234567891234567891234"),)),),
        "camt.053.001.04", {"details": [(218_700, "302388292000011111111111111"),
                                        (129_600, "302388292000022222222222222")]}),
    "camt_oca_test-camt053.zip": Expected((
        Refused("test-camt053_02.xml: Stmt[1]/Ntry[2]/NtryDtls",
                "the 1 transaction details add up to 56405 fen, the entry is 59405 fen",
                "the entry is 594.05 and its one TxDtls's TxAmt 564.05 (and 15568.27 - "
                "754.25 - 594.05 + 1405.31 = 15625.28 is not the CLBD of 15121.12 either)"),
        Refused("test-camt053_03.xml: Stmt[1]/Ntry[2]/NtryDtls",
                "the 1 transaction details add up to 56405 fen, the entry is 59405 fen",
                "the same file as _02 for another month"),
    ), "zip"),
    "camt_oca_test-camt054": Expected((
        Read("20220120000000000000000", "NL77ABNA0574908765", "EUR", None, None, 1,
             ((0, 500, "CRDT", date(2022, 1, 26), "ENDTOENDID-01"),)),),
        "camt.054.001.04", {"additional_info": "Additional entry info"}),
}


def _files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(p.name for p in CORPUS.iterdir() if p.name.startswith("camt_"))


needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(),
    reason=f"the real-statement corpus is not at {CORPUS} (set YUFU_REAL_STATEMENTS): "
           "a clone outside CI")


@needs_corpus
def test_every_camt_file_of_the_corpus_has_its_expectation() -> None:
    assert _files() == sorted(EXPECTED)


def _entries_in(data: bytes) -> list[int]:
    """Ntry elements per file (per member of a zip), counted in the bytes, not the parser."""
    if data.startswith(b"PK"):
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return [len(_ENTRY_RE.findall(archive.read(n))) for n in archive.namelist()]
    return [len(_ENTRY_RE.findall(data))]


def _references(statement: Statement, index: int) -> set[str]:
    entry = statement.entries[index]
    found = {entry.bank_reference}
    for d in entry.details:
        found |= {d.end_to_end_id, d.creditor_reference, d.bank_reference, d.uetr}
    return {r for r in found if r}


def _check_read(statement: Statement, want: Read) -> None:
    assert (statement.statement_id, statement.account, statement.currency, statement.kind) == \
        (want.statement_id, want.account, want.currency, want.kind)
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == \
        (want.opening_fen, want.closing_fen)
    assert len(statement.entries) == want.entries
    if want.opening_fen is not None and want.closing_fen is not None:  # continuity
        assert want.opening_fen + booked_movement_fen(statement.entries) == want.closing_fen
    for index, fen, direction, booked_on, reference in want.checked:
        entry = statement.entries[index]
        assert (entry.amount_fen, entry.direction.value, entry.booking_date) == \
            (fen, direction, booked_on)
        assert entry.status is EntryStatus.booked
        assert reference in _references(statement, index)
        if entry.details:  # the details of an entry always add up to it
            assert sum(d.amount_fen for d in entry.details) == entry.amount_fen


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_corpus_file_is_read_as_checked_by_hand_or_refused_for_a_true_reason(
        name: str) -> None:
    data = (CORPUS / name).read_bytes()
    expected = EXPECTED[name]
    parsed = read_file(data, name)
    assert parsed.format == expected.format
    assert len(parsed.items) == len(expected.items)
    for item, want in zip(parsed.items, expected.items, strict=True):
        if isinstance(want, Refused):
            assert isinstance(item, RefusedStatement), item
            assert (item.field, want.says in item.reason) == (want.field, True), item.reason
        else:
            assert isinstance(item, Statement), item
            _check_read(item, want)
    read_entries = sum(len(s.entries) for s in parsed.statements)
    refused_positions = {r.position for r in parsed.refused}
    if not refused_positions:  # every entry of the file is a line read
        assert read_entries == sum(_entries_in(data))
    _check_more(parsed.statements, expected.more)


def _check_more(statements: tuple[Statement, ...], more: dict[str, object]) -> None:
    if not more:
        return
    statement = statements[0]
    if "additional_info" in more:
        assert statement.entries[0].additional_info == more["additional_info"]
    if "opening_date" in more:
        assert statement.opening_date == more["opening_date"]
    if "remittance_has" in more:
        [detail] = statement.entries[0].details
        assert str(more["remittance_has"]) in (detail.remittance_unstructured or "")
    if "details" in more:
        assert [(d.amount_fen, d.creditor_reference) for d in statement.entries[0].details] \
            == more["details"]
