"""camt as banks write it (issue 14, item 4): what the standard allows and banks do, read rather
than refused; what cannot be attributed still refused by name."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.bank.model import EntryStatus, StatementKind, StatementRejected
from ledger.bank.statements import detect_and_parse, parse_camt053, parse_camt054, read_file

NS = "urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version}"


def _doc(body: str, *, kind: str = "053", version: str = "08", root: str = "BkToCstmrStmt",
         item: str = "Stmt", balances: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<Document xmlns="{NS.format(kind=kind, version=version)}"><{root}>'
            "<GrpHdr><MsgId>M</MsgId><CreDtTm>2024-03-01T18:00:00</CreDtTm></GrpHdr>"
            f"<{item}><Id>S1</Id><Acct><Id><IBAN>NL77ABNA0574908765</IBAN></Id>"
            f"<Ccy>EUR</Ccy></Acct>{balances}{body}</{item}></{root}></Document>").encode()


def _bal(code: str, amount: str, day: str = "2024-03-01", *, proprietary: bool = False) -> str:
    kind = f"<Prtry>{code}</Prtry>" if proprietary else f"<Cd>{code}</Cd>"
    return (f"<Bal><Tp><CdOrPrtry>{kind}</CdOrPrtry></Tp><Amt Ccy=\"EUR\">{amount}</Amt>"
            f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>")


def _ntry(amount: str, details: str = "", *, more: str = "") -> str:
    return (f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
            "<Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2024-03-01</Dt></BookgDt>"
            f"<AcctSvcrRef>BANKREF</AcctSvcrRef>"
            + (f"<NtryDtls>{details}</NtryDtls>" if details else "") + more + "</Ntry>")


def _tx(e2e: str, *, amount: str | None = None, name: str = "", ustrd: str = "",
        cref: str = "", more: str = "") -> str:
    return ("<TxDtls><Refs><EndToEndId>" + e2e + "</EndToEndId></Refs>"
            + (f'<Amt Ccy="EUR">{amount}</Amt>' if amount else "")
            + (f"<RltdPties><Dbtr><Pty><Nm>{name}</Nm></Pty></Dbtr></RltdPties>" if name else "")
            + ("<RmtInf>" + (f"<Ustrd>{ustrd}</Ustrd>" if ustrd else "")
               + (f"<Strd><CdtrRefInf><Ref>{cref}</Ref></CdtrRefInf></Strd>" if cref else "")
               + "</RmtInf>")
            + more + "</TxDtls>")


OPENING_CLOSING = _bal("OPBD", "100.00") + _bal("CLBD", "130.00")


def test_a_batch_whose_details_give_no_amounts_is_one_line_of_the_entrys_amount() -> None:
    details = (_tx("E2E-SAME", name="Wang", ustrd="card 1", cref="RF01")
               + _tx("E2E-SAME", name="Wang", ustrd="card 2", cref="RF02"))
    [statement] = parse_camt053(_doc(_ntry("30.00", details), balances=OPENING_CLOSING))
    [detail] = statement.entries[0].details
    assert detail.amount_fen == 3000
    assert detail.end_to_end_id == "E2E-SAME"  # shared by all: kept, it still matches
    assert detail.counterparty_name == "Wang"
    assert detail.creditor_reference is None  # two of them: neither is the line's
    assert detail.remittance_unstructured == "card 1; card 2; references: RF01, RF02"


def test_details_that_give_amounts_but_do_not_add_up_stay_refused() -> None:
    details = _tx("A", amount="10.00") + _tx("B", amount="10.00")
    with pytest.raises(StatementRejected, match="add up to 2000 fen") as caught:
        parse_camt053(_doc(_ntry("30.00", details), balances=OPENING_CLOSING))
    assert caught.value.field == "Stmt[1]/Ntry[1]/NtryDtls"


def test_uetr_additional_entry_info_and_additional_tx_info_are_kept() -> None:
    uetr = "255ae394-9965-4438-ac86-f406feada396"
    details = (_tx("A", amount="10.00", more="<AddtlTxInf>INSURANCE 857239</AddtlTxInf>")
               .replace("</EndToEndId>", f"</EndToEndId><UETR>{uetr}</UETR>")
               + _tx("B", amount="20.00", ustrd="own text",
                     more="<AddtlTxInf>bank's copy</AddtlTxInf>"))
    body = _ntry("30.00", details, more="<AddtlNtryInf>SEPA batch 22.03</AddtlNtryInf>")
    [statement] = parse_camt053(_doc(body, balances=OPENING_CLOSING))
    entry = statement.entries[0]
    assert entry.additional_info == "SEPA batch 22.03"
    first, second = entry.details
    assert (first.uetr, first.remittance_unstructured) == (uetr, "INSURANCE 857239")
    assert (second.uetr, second.remittance_unstructured) == (None, "own text")


def test_a_zero_amount_entry_is_information_not_a_refusal() -> None:
    body = _ntry("0.00") + _ntry("30.00")
    [statement] = parse_camt053(_doc(body, balances=OPENING_CLOSING))
    zero, paid = statement.entries
    assert (zero.amount_fen, zero.status) == (0, EntryStatus.info)
    assert paid.status is EntryStatus.booked


def test_more_decimals_read_exactly_and_inexact_ones_are_refused_by_name() -> None:
    balances = _bal("OPBD", "100.00000") + _bal("CLBD", "108.850")
    [statement] = parse_camt053(_doc(_ntry("8.850"), balances=balances))
    assert (statement.opening_booked_fen, statement.entries[0].amount_fen,
            statement.closing_booked_fen) == (10000, 885, 10885)
    with pytest.raises(StatementRejected, match="not a whole number of fen") as caught:
        parse_camt053(_doc(_ntry("8.855"), balances=balances))
    assert caught.value.field == "Stmt[1]/Ntry[1]/Amt"


def test_every_balance_type_and_a_proprietary_one_is_tolerated() -> None:
    balances = (_bal("PRCD", "100.00", "2024-02-29") + _bal("OPAV", "1.00")
                + _bal("ITBD", "2.00") + _bal("XPCD", "3.00") + _bal("CLAV", "4.00")
                + _bal("BANKOWN", "5.00", proprietary=True) + _bal("CLBD", "130.00"))
    [statement] = parse_camt053(_doc(_ntry("30.00"), balances=balances))
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (10000, 13000)
    assert statement.opening_date == date(2024, 2, 29)  # PRCD: no OPBD given


def test_a_date_time_inside_dt_and_only_dttm_are_read_as_their_day() -> None:
    balances = (_bal("OPBD", "100.00", "2024-03-01T00:00:00.000000000")
                + _bal("CLBD", "130.00").replace(
                    "<Dt><Dt>2024-03-01</Dt></Dt>", "<Dt><DtTm>2024-03-01T23:59:59</DtTm></Dt>"))
    [statement] = parse_camt053(_doc(_ntry("30.00"), balances=balances))
    assert (statement.opening_date, statement.closing_date) == (date(2024, 3, 1),) * 2


def test_camt052_is_an_interim_report_with_what_balances_it_has() -> None:
    report = _doc(_ntry("30.00"), kind="052", root="BkToCstmrAcctRpt", item="Rpt",
                  balances=_bal("OPBD", "100.00") + _bal("ITBD", "130.00"))
    parsed = read_file(report, "intraday.xml")
    assert parsed.format == "camt.052.001.08"
    [statement] = parsed.statements
    assert statement.kind is StatementKind.interim
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (10000, 13000)
    assert statement.position == "Rpt[1]"

    bare = _doc(_ntry("30.00"), kind="052", root="BkToCstmrAcctRpt", item="Rpt")
    [statement] = detect_and_parse(bare)
    assert (statement.kind, statement.closing_booked_fen) == (StatementKind.interim, None)


def test_camt053_statements_are_final_and_camt054_notifications_have_no_balances() -> None:
    [statement] = parse_camt053(_doc(_ntry("30.00"), balances=OPENING_CLOSING))
    assert statement.kind is StatementKind.final
    notification = _doc(_ntry("30.00"), kind="054", root="BkToCstmrDbtCdtNtfctn",
                        item="Ntfctn", balances=OPENING_CLOSING)
    [statement] = parse_camt054(notification)
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (None, None)
