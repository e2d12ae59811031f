"""camt.053 and camt.054: every version's sample read into the one model, and what is refused."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ledger.bank.statements import (
    Direction,
    EntryStatus,
    TxDetail,
    booked_movement_fen,
    parse_camt053,
    parse_camt054,
)
from tests.support.bank import refused, sample

V08 = "camt053_v08_batch_reversal.xml"


def test_v02_statement_reads_balances_entries_and_references() -> None:
    [statement] = parse_camt053(sample("camt053_v02_statement.xml"))
    assert statement.format == "camt.053.001.02"
    assert statement.message_id == "CMBC-053-20240301-0001"
    assert statement.statement_id == "STMT-20240301"
    assert statement.account == "6226090000000048"
    assert statement.currency == "CNY"
    assert statement.opening_booked_fen == 10_000_000
    assert statement.closing_booked_fen == 10_073_456
    assert statement.closing_date == date(2024, 3, 1)
    assert statement.created_at == datetime(2024, 3, 1, 18, tzinfo=timezone(timedelta(hours=8)))
    credit, debit = statement.entries
    assert (credit.position, credit.amount_fen, credit.direction, credit.status) == (
        "Stmt[1]/Ntry[1]", 123456, Direction.credit, EntryStatus.booked)
    assert credit.bank_reference == "BK240301000001"
    assert credit.details == (TxDetail(
        amount_fen=123456, end_to_end_id="SALE-0001", creditor_reference="YF-CARD-000042",
        counterparty_name="张三", counterparty_account="6222020000000001",
        bank_reference="BK240301000001-1"),)
    # v02 gives no amount on the lone TxDtls here: it is the entry's
    [release] = debit.details
    assert (release.amount_fen, release.end_to_end_id) == (50000, "REL-0001")
    assert (release.counterparty_name, release.counterparty_account) == (
        "北京某健身有限公司", "6222020000000002")
    assert release.remittance_unstructured == "Weekly release"


def test_several_statements_in_one_file_come_back_in_order() -> None:
    first, second = parse_camt053(sample("camt053_v04_two_statements.xml"))
    assert (first.statement_id, first.account, first.closing_booked_fen) == (
        "STMT-A-20240302", "6226090000000048", 30000)
    assert (second.statement_id, second.account, second.closing_booked_fen) == (
        "STMT-B-20240302", "6226090000000055", 550000)
    assert first.message_id == second.message_id == "ICBC-053-20240302-0007"


def test_a_batched_entry_keeps_every_transaction_detail() -> None:
    _, second = parse_camt053(sample("camt053_v04_two_statements.xml"))
    batch = second.entries[0]
    assert batch.amount_fen == 150000
    assert [d.amount_fen for d in batch.details] == [50000, 70000, 30000]
    assert [d.end_to_end_id for d in batch.details] == ["SALE-0201", "SALE-0202", "SALE-0203"]
    assert batch.details[0].counterparty_account == "DE89370400440532013000"  # an IBAN
    assert batch.details[1].remittance_unstructured == "Swim card 20 sessions"
    assert batch.details[2].creditor_reference == "YF-CARD-000203"


def test_a_reversal_and_a_pending_entry_in_v06() -> None:
    [statement] = parse_camt053(sample("camt053_v06_reversal_pending.xml"))
    sale, reversal, pending, refund = statement.entries
    assert not sale.reversal
    assert reversal.reversal and reversal.direction is Direction.debit
    assert reversal.details[0].end_to_end_id == sale.details[0].end_to_end_id == "SALE-0301"
    # the reversed credit's counterparty is still the payer
    assert reversal.details[0].counterparty_name == "Sun Ba"
    assert reversal.booking_date == date(2024, 3, 4)  # from BookgDt/DtTm
    assert pending.status is EntryStatus.pending and pending.booking_date is None
    assert pending.value_date == date(2024, 3, 5)
    assert refund.details == ()
    # an ITBD balance is not the opening or the closing one
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (10_073_456, 10_000_000)
    # the pending 88.00 does not move the booked balance
    assert booked_movement_fen(statement.entries) == -73456


def test_v08_reads_sts_cd_party_choice_and_a_dbit_opening_balance() -> None:
    [statement] = parse_camt053(sample(V08))
    assert statement.opening_booked_fen == -5000
    assert statement.closing_booked_fen == 195000
    assert statement.created_at == datetime(2024, 3, 5, 20, 0, 0, 123000,
                                            tzinfo=timezone(timedelta(hours=8)))
    batch, release, returned = statement.entries
    assert [e.status for e in statement.entries] == [EntryStatus.booked] * 3
    first, second = batch.details
    assert (first.counterparty_name, first.creditor_reference) == ("李四", "YF-CARD-000401")
    assert first.remittance_unstructured == "Yoga card 12 sessions"
    assert second.end_to_end_id is None  # NOTPROVIDED is no id
    assert second.creditor_reference == "YF-CARD-000402"
    assert release.details[0].counterparty_name == "北京某健身有限公司"
    # a release returned: the reversal of a debit, booked as a credit
    assert returned.reversal and returned.direction is Direction.credit
    assert returned.details[0].end_to_end_id == "REL-0401"
    assert returned.details[0].counterparty_account == "6222020000000002"


# Each sample is also valid, unchanged but for its namespace, in these versions (checked against
# the official XSDs): the same reading must come out.
@pytest.mark.parametrize(("name", "version"), [
    ("camt053_v04_two_statements.xml", "03"), ("camt053_v04_two_statements.xml", "05"),
    ("camt053_v06_reversal_pending.xml", "05"), (V08, "07"), (V08, "09"), (V08, "10"),
    (V08, "11"), (V08, "12"), (V08, "13"), (V08, "14"),
    ("camt054_v08_notification.xml", "07"), ("camt054_v08_notification.xml", "14"),
])
def test_other_versions_are_read_by_the_same_path(name: str, version: str) -> None:
    original = sample(name)
    kind, old = name[4:7], name.split("_")[1][1:]
    data = original.replace(f"camt.{kind}.001.{old}".encode(),
                            f"camt.{kind}.001.{version}".encode())
    parse = parse_camt053 if kind == "053" else parse_camt054
    statements = parse(data)
    assert {s.format for s in statements} == {f"camt.{kind}.001.{version}"}
    assert [s.entries for s in statements] == [s.entries for s in parse(original)]


def test_an_entry_in_another_currency_refuses_the_file() -> None:
    refused(parse_camt053, sample("camt053_v08_foreign_currency.xml"),
            field="Stmt[1]/Ntry[2]/Amt", says="USD on an account in CNY")


def test_camt054_notifications_have_no_balances() -> None:
    [v08] = parse_camt054(sample("camt054_v08_notification.xml"))
    assert v08.format == "camt.054.001.08"
    assert (v08.opening_booked_fen, v08.closing_booked_fen, v08.closing_date) == (None, None, None)
    credit, pending = v08.entries
    assert credit.details[0].counterparty_name == "Zhou Jiu"
    assert credit.details[0].creditor_reference == "YF-CARD-000501"
    assert pending.status is EntryStatus.pending
    [v02] = parse_camt054(sample("camt054_v02_notification.xml"))
    # no Acct/Ccy: the currency is the first entry's
    assert (v02.currency, v02.account) == ("CNY", "6226090000000055")
    assert v02.entries[0].details[0].counterparty_name == "Wu Shi"  # creditor of a debit
    assert v02.created_at == datetime(2024, 3, 8, 9, 0)  # naive: the bank gave no offset


def test_each_parser_refuses_the_other_message() -> None:
    refused(parse_camt054, sample(V08), field="<Document>", says="expected camt.054")
    refused(parse_camt053, sample("camt054_v08_notification.xml"), field="<Document>",
            says="expected camt.053")


def _edited(old: str, new: str, name: str = V08) -> bytes:
    data = sample(name)
    assert old.encode() in data
    return data.replace(old.encode(), new.encode(), 1)


@pytest.mark.parametrize(("old", "new", "field", "says"), [
    ('<Amt Ccy="CNY">1500.00</Amt>', '<Amt Ccy="CNY">1500.001</Amt>',
     "Stmt[1]/Ntry[2]/Amt", "not a whole number of fen"),
    ('<Amt Ccy="CNY">1500.00</Amt>', '<Amt Ccy="CNY">1500.000000</Amt>',
     "Stmt[1]/Ntry[2]/Amt", "at most 5 decimals"),
    ('<Amt Ccy="CNY">1500.00</Amt>', '<Amt Ccy="CNY">1.5e3</Amt>',
     "Stmt[1]/Ntry[2]/Amt", "not digits"),
    ('<Amt Ccy="CNY">1500.00</Amt>', '<Amt Ccy="JPY">1500.00</Amt>',
     "Stmt[1]/Ntry[2]/Amt/@Ccy", "two minor digits"),
    ("<CdtDbtInd>DBIT</CdtDbtInd>\n        <Sts>", "<CdtDbtInd>DEBIT</CdtDbtInd>\n        <Sts>",
     "Stmt[1]/Ntry[2]/CdtDbtInd", "not CRDT or DBIT"),
    ("<RvslInd>true</RvslInd>", "<RvslInd>yes</RvslInd>", "Stmt[1]/Ntry[3]/RvslInd",
     "not a boolean"),
    ("<Sts><Cd>BOOK</Cd></Sts>", "<Sts><Cd>FUTR</Cd></Sts>", "Stmt[1]/Ntry[1]/Sts",
     "not BOOK, PDNG or INFO"),
    ("<BookgDt><Dt>2024-03-05</Dt></BookgDt>", "<BookgDt><Dt>2024-02-30</Dt></BookgDt>",
     "Stmt[1]/Ntry[1]/BookgDt/Dt", "not a date"),
    ('<Amt Ccy="CNY">800.00</Amt>', '<Amt Ccy="CNY">799.99</Amt>',
     "Stmt[1]/Ntry[1]/NtryDtls", "add up to 199999 fen"),
    ('<Amt Ccy="CNY">800.00</Amt>', '<Amt Ccy="USD">800.00</Amt>',
     "Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/Amt", "USD on an account in CNY"),
    ('<Amt Ccy="CNY">1950.00</Amt>', '<Amt Ccy="CNY">1950.01</Amt>',
     "Stmt[1]/Bal", "balances do not add up"),
    ("<Id>STMT-20240305-62</Id>", "", "Stmt[1]/Id", "missing Id"),
    ("<MsgId>BOC-053-20240305-0042</MsgId>", "", "GrpHdr/MsgId", "missing"),
    ("<Id><Othr><Id>6226090000000062</Id></Othr></Id>", "<Id/>", "Stmt[1]/Acct/Id",
     "missing account identification"),
])
def test_a_bad_element_refuses_the_file_naming_its_path(old: str, new: str, field: str,
                                                          says: str) -> None:
    refused(parse_camt053, _edited(old, new), field=field, says=says)


def test_a_batched_detail_without_an_amount_when_others_give_one_is_refused() -> None:
    data = _edited('<Amt Ccy="CNY">800.00</Amt>\n            <CdtDbtInd>CRDT</CdtDbtInd>', "")
    refused(parse_camt053, data, field="Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/Amt",
            says="when any of them does")


def test_a_detail_against_its_entrys_direction_is_refused() -> None:
    data = _edited("<Amt Ccy=\"CNY\">800.00</Amt>\n            <CdtDbtInd>CRDT</CdtDbtInd>",
                   "<Amt Ccy=\"CNY\">800.00</Amt>\n            <CdtDbtInd>DBIT</CdtDbtInd>")
    refused(parse_camt053, data, field="Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[2]/CdtDbtInd",
            says="netted batch")


def test_an_unsupported_version_is_refused_by_name() -> None:
    data = sample(V08).replace(b"camt.053.001.08", b"camt.053.001.01")
    refused(parse_camt053, data, field="<Document>", says="camt.053.001.01 is not supported")


def test_a_statement_without_stmt_is_refused() -> None:
    start, end = sample(V08).split(b"<Stmt>")[0], sample(V08).split(b"</Stmt>")[1]
    refused(parse_camt053, start + end, field="BkToCstmrStmt", says="no Stmt")


def test_text_over_the_bound_is_refused() -> None:
    data = _edited("<Ustrd>Yoga card</Ustrd>", f"<Ustrd>{'x' * 2001}</Ustrd>")
    refused(parse_camt053, data, field="Stmt[1]/Ntry[1]/NtryDtls[1]/TxDtls[1]/RmtInf/Ustrd",
            says="over the limit of 2000")
