"""A property: any statement written out as camt.053 (in UTF-8 or, its names Chinese, in GBK or
GB18030; its amounts with up to five decimals where they are whole fen; as it is, zipped or
gzipped) reads back to the same lines and balances.

The writer here is written from the standard, not with the parser's help."""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.bank.model import Direction, EntryStatus, Statement
from ledger.bank.statements import read_file

# Every CJK unified ideograph of this range is in GBK (and so in GB18030).
CHINESE = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1,
                  max_size=12)
LATIN = st.from_regex(r"[A-Za-z][A-Za-z &<>'.-]{0,20}[A-Za-z]", fullmatch=True)
REFERENCE = st.from_regex(r"[A-Z0-9][A-Z0-9/-]{0,20}", fullmatch=True)
START = date(2026, 1, 1)


@dataclass(frozen=True)
class Line:
    direction: Direction
    amount_fen: int
    status: EntryStatus
    day: date
    end_to_end_id: str | None
    creditor_reference: str | None
    name: str | None
    remittance: str | None


def lines(names: st.SearchStrategy[str]) -> st.SearchStrategy[Line]:
    return st.builds(
        Line, st.sampled_from(Direction), st.integers(1, 10**11),
        st.sampled_from([EntryStatus.booked, EntryStatus.booked, EntryStatus.pending]),
        st.integers(0, 30).map(lambda n: START + timedelta(days=n)),
        st.none() | REFERENCE, st.none() | REFERENCE, st.none() | names, st.none() | names)


def _amount(fen: int, zeros: int) -> str:
    units, cents = divmod(fen, 100)
    return f"{units}.{cents:02d}" + "0" * zeros


def _balance(code: str, fen: int, zeros: int) -> str:
    sign = "CRDT" if fen >= 0 else "DBIT"
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="CNY">{_amount(abs(fen), zeros)}</Amt><CdtDbtInd>{sign}</CdtDbtInd>'
            f"<Dt><Dt>{START.isoformat()}</Dt></Dt></Bal>")


def _ntry(line: Line, zeros: int, version: int) -> str:
    status = f"<Sts>{line.status}</Sts>" if version <= 6 else f"<Sts><Cd>{line.status}</Cd></Sts>"
    party = "Dbtr" if line.direction is Direction.credit else "Cdtr"
    name = ("" if line.name is None else
            f"<RltdPties><{party}><Nm>{escape(line.name)}</Nm></{party}></RltdPties>"
            if version <= 6 else
            f"<RltdPties><{party}><Pty><Nm>{escape(line.name)}</Nm></Pty></{party}></RltdPties>")
    remittance = "" if line.remittance is None and line.creditor_reference is None else (
        "<RmtInf>"
        + ("" if line.remittance is None else f"<Ustrd>{escape(line.remittance)}</Ustrd>")
        + ("" if line.creditor_reference is None else
           f"<Strd><CdtrRefInf><Ref>{line.creditor_reference}</Ref></CdtrRefInf></Strd>")
        + "</RmtInf>")
    refs = "" if line.end_to_end_id is None else \
        f"<Refs><EndToEndId>{line.end_to_end_id}</EndToEndId></Refs>"
    return (f'<Ntry><Amt Ccy="CNY">{_amount(line.amount_fen, zeros)}</Amt>'
            f"<CdtDbtInd>{line.direction}</CdtDbtInd>{status}"
            f"<BookgDt><Dt>{line.day.isoformat()}</Dt></BookgDt>"
            f"<NtryDtls><TxDtls>{refs}{name}{remittance}</TxDtls></NtryDtls></Ntry>")


def camt053(entries: list[Line], opening_fen: int, *, encoding: str, zeros: int,
            version: int) -> tuple[bytes, int]:
    closing = opening_fen + sum(e.amount_fen if e.direction is Direction.credit
                                else -e.amount_fen
                                for e in entries if e.status is EntryStatus.booked)
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}">'
            "<BkToCstmrStmt><GrpHdr><MsgId>P</MsgId><CreDtTm>2026-02-01T00:00:00</CreDtTm>"
            "</GrpHdr><Stmt><Id>P-1</Id>"
            "<Acct><Id><Othr><Id>6226090000000001</Id></Othr></Id><Ccy>CNY</Ccy></Acct>"
            + _balance("OPBD", opening_fen, zeros) + _balance("CLBD", closing, zeros)
            + "\n".join(_ntry(e, zeros, version) for e in entries)
            + "</Stmt></BkToCstmrStmt></Document>\n")
    return text.encode(encoding), closing


def _packed(data: bytes, container: str) -> tuple[bytes, str]:
    if container == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("day.xml", data)
        return out.getvalue(), "day.zip"
    if container == "gzip":
        return gzip.compress(data), "day.xml.gz"
    return data, "day.xml"


def _check(statement: Statement, entries: list[Line], opening: int, closing: int) -> None:
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (opening, closing)
    assert len(statement.entries) == len(entries)
    for read, line in zip(statement.entries, entries, strict=True):
        [detail] = read.details
        assert (read.direction, read.amount_fen, read.status, read.booking_date) == \
            (line.direction, line.amount_fen, line.status, line.day)
        assert (detail.amount_fen, detail.end_to_end_id, detail.creditor_reference) == \
            (line.amount_fen, line.end_to_end_id, line.creditor_reference)
        assert (detail.counterparty_name, detail.remittance_unstructured) == \
            (line.name, line.remittance)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), encoding=st.sampled_from(["UTF-8", "GBK", "GB18030"]),
       zeros=st.integers(0, 3), container=st.sampled_from(["plain", "zip", "gzip"]),
       version=st.sampled_from([2, 6, 8, 13]), opening=st.integers(-10**11, 10**11))
def test_a_camt053_reads_back_to_the_same_lines_and_balances(
        data: st.DataObject, encoding: str, zeros: int, container: str, version: int,
        opening: int) -> None:
    names = CHINESE if encoding != "UTF-8" else (CHINESE | LATIN)
    entries = data.draw(st.lists(lines(names), max_size=12))
    document, closing = camt053(entries, opening, encoding=encoding, zeros=zeros,
                                version=version)
    packed, filename = _packed(document, container)

    [statement] = read_file(packed, filename).statements

    _check(statement, entries, opening, closing)
    if container != "plain":
        assert statement.position.endswith(": Stmt[1]")
