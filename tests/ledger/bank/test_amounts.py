"""Fen <-> decimal text, exactly, as properties: through camt.053 and through pain.001."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from defusedxml import ElementTree as DefusedElementTree
from hypothesis import given
from hypothesis import strategies as st

from ledger import limits
from ledger.bank.amounts import AmountFormatError, fen_from_text, text_from_fen
from ledger.bank.payments import PAIN001_NAMESPACE, PaymentInstruction, build_pain001
from ledger.bank.statements import parse_camt053

FEN = st.integers(1, limits.amount_fen_max)
NS = {"p": PAIN001_NAMESPACE}


def _camt053(entry_text: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>
<GrpHdr><MsgId>M</MsgId><CreDtTm>2024-03-01T00:00:00Z</CreDtTm></GrpHdr>
<Stmt><Id>S</Id><Acct><Id><Othr><Id>6226090000000048</Id></Othr></Id><Ccy>CNY</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">0.00</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-03-01</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">{entry_text}</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-03-01</Dt></Dt></Bal>
<Ntry><Amt Ccy="CNY">{entry_text}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
<BookgDt><Dt>2024-03-01</Dt></BookgDt></Ntry></Stmt></BkToCstmrStmt></Document>""".encode()


@given(fen=st.integers(-limits.amount_fen_max, limits.amount_fen_max))
def test_fen_to_text_and_back_is_exact(fen: int) -> None:
    text = text_from_fen(fen)
    assert fen_from_text(text, allow_negative=True) == fen
    assert Decimal(text) * 100 == fen  # the text means what it says
    assert fen_from_text(text.replace(".", ","), mark=",", allow_negative=True) == fen


@given(fen=FEN)
def test_an_amount_round_trips_through_a_camt053_statement(fen: int) -> None:
    [statement] = parse_camt053(_camt053(text_from_fen(fen)))
    assert statement.entries[0].amount_fen == fen
    assert statement.closing_booked_fen == fen


@given(amounts=st.lists(st.integers(1, 10**12), min_size=1, max_size=30))
def test_pain001_control_sum_is_the_exact_sum_of_the_amounts(amounts: list[int]) -> None:
    instructions = [
        PaymentInstruction(
            end_to_end_id=f"E2E-{i}", amount_fen=fen, currency="CNY",
            debtor_account="6226090000000048", debtor_name="Custody", creditor_name="M",
            creditor_account="6222020000000002", remittance="", requested_date=date(2024, 3, 1))
        for i, fen in enumerate(amounts)]
    xml = build_pain001(instructions, message_id="M1",
                        created_at=datetime(2024, 3, 1, tzinfo=UTC),
                        initiating_party="Yufu")
    root = DefusedElementTree.fromstring(xml, forbid_dtd=True)
    control_sum = root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS)
    assert fen_from_text(control_sum) == sum(amounts)
    instructed = root.findall(".//p:InstdAmt", NS)
    assert [fen_from_text(a.text or "") for a in instructed] == amounts


@pytest.mark.parametrize("text", ["1.234", "1.230", "1.", ".5", "+1.00", "1e3", " 1.00", "1,00",
                                  "NaN", "Infinity", "1_000.00", "١٢٣.٤٥", "12345678901234567.00"])
def test_anything_but_plain_decimal_text_is_refused(text: str) -> None:
    with pytest.raises(AmountFormatError):
        fen_from_text(text)


@pytest.mark.parametrize(("text", "fen"), [("8.850", 885), ("5442.09000", 544209),
                                           ("0.10000", 10), ("12.3", 1230)])
def test_more_decimals_are_read_where_allowed_when_they_are_whole_fen(text: str,
                                                                       fen: int) -> None:
    assert fen_from_text(text, decimals_max=5) == fen


@pytest.mark.parametrize(("text", "says"), [
    ("8.855", "not a whole number of fen"), ("8.00001", "not a whole number of fen"),
    ("8.000000", "at most 5 decimals"),
    ("1234567890123456.000", "more than 18 digits"), ("1.2.3", "not digits")])
def test_decimals_that_are_not_whole_fen_are_refused_by_name(text: str, says: str) -> None:
    with pytest.raises(AmountFormatError, match=says):
        fen_from_text(text, decimals_max=5)


def test_mt940_amounts_need_the_decimal_comma() -> None:
    assert fen_from_text("1,", mark=",") == 100
    assert fen_from_text("0,5", mark=",") == 50
    for bad in ("1", "1.00", "1,001", ",5"):
        with pytest.raises(AmountFormatError):
            fen_from_text(bad, mark=",")
