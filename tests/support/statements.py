"""Bank statements written by the tests (and by scripts/bench_bank.py): camt.053, camt.054 and
our CSV, from plain values. Written here from the standards, not with the parsers' help, so a
parser and its test do not share a mistake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

CSV_HEADER = ("account,currency,booking_date,value_date,direction,amount,status,end_to_end_id,"
              "creditor_reference,bank_reference,counterparty_name,counterparty_account,"
              "remittance,reversal")


@dataclass(frozen=True)
class Detail:
    """One transaction of an entry (camt TxDtls)."""

    amount_fen: int
    end_to_end_id: str | None = None
    creditor_reference: str | None = None


@dataclass(frozen=True)
class Entry:
    direction: str  # CRDT or DBIT: the way the balance moved
    amount_fen: int
    booking_date: date
    status: str = "BOOK"
    reversal: bool = False
    bank_reference: str | None = None
    details: tuple[Detail, ...] = ()

    @property
    def signed_fen(self) -> int:
        if self.status != "BOOK":
            return 0
        return self.amount_fen if self.direction == "CRDT" else -self.amount_fen


@dataclass(frozen=True)
class Stmt:
    account: str
    statement_id: str
    opening_fen: int
    closing_date: date
    entries: tuple[Entry, ...] = field(default=())

    @property
    def closing_fen(self) -> int:
        return self.opening_fen + sum(e.signed_fen for e in self.entries)


def fen_text(fen: int) -> str:
    """Fen as ISO 20022 decimal text, unsigned: 123456 -> "1234.56"."""
    units, cents = divmod(abs(fen), 100)
    return f"{units}.{cents:02d}"


def entry(direction: str, amount_fen: int, day: date, *, e2e: str | None = None,
          cref: str | None = None, **more: object) -> Entry:
    """An entry of one transaction carrying these references."""
    details = (Detail(amount_fen, e2e, cref),) if e2e or cref else ()
    return Entry(direction, amount_fen, day, details=details, **more)  # type: ignore[arg-type]


# --- camt ------------------------------------------------------------------------------------
def camt053(statements: Sequence[Stmt], version: int = 8, message_id: str = "YUFU-TEST-1",
            pretty: bool = True) -> bytes:
    """BkToCstmrStmt, camt.053.001.<version> (02 to 14), one Stmt per statement."""
    body = "".join(_stmt(s, version, "Stmt", balances=True, pretty=pretty) for s in statements)
    return _document("053", "BkToCstmrStmt", version, message_id, statements, body)


def camt052(statements: Sequence[Stmt], version: int = 8, message_id: str = "YUFU-TEST-1"
            ) -> bytes:
    """BkToCstmrAcctRpt, an interim report: one Rpt per statement, with its balances."""
    body = "".join(_stmt(s, version, "Rpt", balances=True, pretty=True) for s in statements)
    return _document("052", "BkToCstmrAcctRpt", version, message_id, statements, body)


def camt054(statements: Sequence[Stmt], version: int = 8, message_id: str = "YUFU-TEST-1"
            ) -> bytes:
    """BkToCstmrDbtCdtNtfctn: one Ntfctn per statement, no balances."""
    body = "".join(_stmt(s, version, "Ntfctn", balances=False, pretty=True)
                   for s in statements)
    return _document("054", "BkToCstmrDbtCdtNtfctn", version, message_id, statements, body)


def _document(kind: str, root: str, version: int, message_id: str,
              statements: Sequence[Stmt], body: str) -> bytes:
    created = statements[0].closing_date if statements else date(2026, 1, 1)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version:02d}">'
            f"<{root}><GrpHdr><MsgId>{escape(message_id)}</MsgId>"
            f"<CreDtTm>{created.isoformat()}T18:00:00+08:00</CreDtTm></GrpHdr>\n"
            f"{body}</{root}></Document>\n").encode()


def _stmt(s: Stmt, version: int, element: str, *, balances: bool, pretty: bool) -> str:
    parts = [f"<{element}><Id>{escape(s.statement_id)}</Id>"
             f"<CreDtTm>{s.closing_date.isoformat()}T18:00:00+08:00</CreDtTm>"
             f"<Acct><Id><Othr><Id>{escape(s.account)}</Id></Othr></Id><Ccy>CNY</Ccy></Acct>"]
    if balances:
        parts.append(_balance("OPBD", s.opening_fen, s.closing_date))
        parts.append(_balance("CLBD", s.closing_fen, s.closing_date))
    separator = "\n" if pretty else ""
    parts.extend(separator + _ntry(e, version) for e in s.entries)
    parts.append(f"</{element}>\n")
    return "".join(parts)


def _balance(code: str, fen: int, day: date) -> str:
    sign = "CRDT" if fen >= 0 else "DBIT"
    return (f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
            f'<Amt Ccy="CNY">{fen_text(fen)}</Amt><CdtDbtInd>{sign}</CdtDbtInd>'
            f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>")


def _ntry(e: Entry, version: int) -> str:
    status = f"<Sts>{e.status}</Sts>" if version <= 6 else f"<Sts><Cd>{e.status}</Cd></Sts>"
    booked = f"<BookgDt><Dt>{e.booking_date.isoformat()}</Dt></BookgDt>" \
        if e.status == "BOOK" else ""
    family = "RCDT" if e.direction == "CRDT" else "ICDT"
    return (f'<Ntry><Amt Ccy="CNY">{fen_text(e.amount_fen)}</Amt>'
            f"<CdtDbtInd>{e.direction}</CdtDbtInd>"
            + ("<RvslInd>true</RvslInd>" if e.reversal else "")
            + status + booked
            + f"<ValDt><Dt>{e.booking_date.isoformat()}</Dt></ValDt>"
            + (f"<AcctSvcrRef>{escape(e.bank_reference)}</AcctSvcrRef>"
               if e.bank_reference else "")
            + f"<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd>"
              "<SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
            + (f"<NtryDtls>{''.join(_tx(d, e, version) for d in e.details)}</NtryDtls>"
               if e.details else "")
            + "</Ntry>")


def _tx(d: Detail, e: Entry, version: int) -> str:
    refs = f"<Refs><EndToEndId>{escape(d.end_to_end_id)}</EndToEndId></Refs>" \
        if d.end_to_end_id else ""
    amount = f'<Amt Ccy="CNY">{fen_text(d.amount_fen)}</Amt>'
    amounts = f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>" if version == 2 \
        else f"{amount}<CdtDbtInd>{e.direction}</CdtDbtInd>"
    remittance = ("<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                  f"<Ref>{escape(d.creditor_reference)}</Ref></CdtrRefInf></Strd></RmtInf>"
                  if d.creditor_reference else "")
    return f"<TxDtls>{refs}{amounts}{remittance}</TxDtls>"


# --- our CSV ---------------------------------------------------------------------------------
def statement_csv(statements: Sequence[Stmt]) -> bytes:
    """Our statement CSV (docs/bank-formats.md): OPBD, the entries, CLBD, per statement."""
    rows = [CSV_HEADER]
    for s in statements:
        day = s.closing_date.isoformat()
        rows.append(f"{s.account},CNY,{day},,OPBD,{_signed(s.opening_fen)},,,,,,,,")
        for e in s.entries:
            assert len(e.details) <= 1, "a CSV row carries one transaction"
            d = e.details[0] if e.details else Detail(e.amount_fen)
            booked = e.booking_date.isoformat() if e.status == "BOOK" else ""
            rows.append(",".join([
                s.account, "CNY", booked, e.booking_date.isoformat(), e.direction,
                fen_text(e.amount_fen), e.status, d.end_to_end_id or "",
                d.creditor_reference or "", e.bank_reference or "", "", "", "",
                "true" if e.reversal else "false"]))
        rows.append(f"{s.account},CNY,{day},,CLBD,{_signed(s.closing_fen)},,,,,,,,")
    return ("\n".join(rows) + "\n").encode()


def _signed(fen: int) -> str:
    return ("-" if fen < 0 else "") + fen_text(fen)
