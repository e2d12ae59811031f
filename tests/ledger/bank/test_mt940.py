"""MT940: the field list read strictly, several statements per file, :61: subfields, :86: tags."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.bank.statements import Direction, EntryStatus, TxDetail, parse_mt940
from tests.support.bank import refused, sample

TWO = "mt940_two_statements.sta"


def _text(*lines: str) -> bytes:
    return "\r\n".join(lines).encode() + b"\r\n"


def _statement(*body: str, opening: str = "C240301CNY100,00",
               closing: str = "C240301CNY100,00") -> bytes:
    return _text(":20:REF1", ":25:6226090000000048", ":28C:1/1", f":60F:{opening}", *body,
                 f":62F:{closing}", "-")


def test_two_statements_in_one_file_keep_their_own_balances() -> None:
    first, second = parse_mt940(sample(TWO))
    assert (first.format, first.message_id, first.statement_id) == (
        "mt940", "STMT20240301", "00061/001")
    assert (first.account, first.currency) == ("6226090000000048", "CNY")
    assert (first.opening_booked_fen, first.closing_booked_fen) == (10_000_000, 10_073_456)
    assert first.closing_date == date(2024, 3, 1)
    assert (second.opening_booked_fen, second.closing_booked_fen) == (10_073_456, 10_000_000)
    assert [e.position for e in second.entries] == ["line 17", "line 21", "line 24"]
    assert all(e.status is EntryStatus.booked for e in first.entries + second.entries)


def test_the_statement_line_subfields() -> None:
    [sale, release] = parse_mt940(sample(TWO))[0].entries
    assert (sale.amount_fen, sale.direction, sale.reversal) == (123456, Direction.credit, False)
    assert (sale.value_date, sale.booking_date) == (date(2024, 3, 1), date(2024, 3, 1))
    assert sale.bank_reference == "BK240301000001"
    assert sale.details == (TxDetail(
        amount_fen=123456, end_to_end_id="SALE-0001", creditor_reference="YF-CARD-000042",
        remittance_unstructured="Lesson pack 10 sessions", counterparty_name="Zhang San",
        bank_reference="BK240301000001"),)
    assert (release.direction, release.details[0].end_to_end_id) == (Direction.debit, "REL-0001")


def test_a_reversal_mark_books_the_opposite_way() -> None:
    _, reversal, refund = parse_mt940(sample(TWO))[1].entries
    # RC: the reversal of a credit, so money goes out
    assert (reversal.direction, reversal.reversal, reversal.amount_fen) == (
        Direction.debit, True, 20000)
    assert reversal.details[0].end_to_end_id is None  # NONREF, and :86: is free text
    assert reversal.details[0].remittance_unstructured == "Reversal of BK240302000001"
    # no :86: at all: the customer reference is the end-to-end id of our own payment
    assert refund.details[0].end_to_end_id == "RFD-0001"
    data = _statement(":61:240301RD1,00NTRFX//B1", closing="C240301CNY101,00")
    [entry] = parse_mt940(data)[0].entries
    assert (entry.direction, entry.reversal) == (Direction.credit, True)


def test_the_german_structured_86_with_eref_plus() -> None:
    [sale, _, _] = parse_mt940(sample(TWO))[1].entries
    [detail] = sale.details
    assert detail.end_to_end_id == "SALE-0301"
    assert detail.remittance_unstructured == "Card YF-CARD-000301 top-up"
    assert detail.counterparty_account == "6226090000000099"
    assert detail.counterparty_name == "WANG WU"


def test_the_swift_block_envelope_and_a_structured_creditor_reference() -> None:
    [statement] = parse_mt940(sample("mt940_swift_envelope.sta"))
    assert statement.account == "CMBCCNBS/6226090000000055"
    assert (statement.opening_booked_fen, statement.closing_booked_fen) == (-1000, 0)
    [detail] = statement.entries[0].details
    assert (detail.end_to_end_id, detail.creditor_reference) == ("SALE-0601", "YF-CARD-000601")


def test_an_entry_date_across_new_year_takes_the_nearest_year() -> None:
    data = _statement(":61:2501021231C1,00NTRFNONREF", opening="C241231CNY0,",
                      closing="C250102CNY1,")
    [entry] = parse_mt940(data)[0].entries
    assert (entry.value_date, entry.booking_date) == (date(2025, 1, 2), date(2024, 12, 31))


def test_a_funds_code_and_an_intermediate_page() -> None:
    data = _text(":20:REF1", ":25:ACC", ":28C:7/2", ":60M:C240301CNY5,", ":61:240301CY5,NTRFA",
                 ":62M:C240301CNY10,", ":64:C240301CNY10,", ":65:C240302CNY10,",
                 ":65:C240303CNY10,", ":86:statement information")
    [statement] = parse_mt940(data)
    assert statement.entries[0].amount_fen == 500
    assert statement.closing_booked_fen == 1000


@pytest.mark.parametrize(("body", "field", "says"), [
    ((":61:240301C1,001NTRFNONREF",), "line 5", "at most 2 decimals"),
    ((":61:240301C1.00NTRFNONREF",), "line 5", "is not 6!n[4!n]2a"),
    ((":61:240301X1,00NTRFNONREF",), "line 5", "is not 6!n[4!n]2a"),
    ((":61:240230C1,00NTRFNONREF",), "line 5", "not a date"),
    ((":61:2403011331C1,00NTRFNONREF",), "line 5", "entry date '1331'"),
    ((":61:240301CX1,00NTRFNONREF",), "line 5", "funds code X"),
    ((":99:what",), "line 5", ":99: is not part of MT940"),
    ((":64:C240301CNY100,00",), "line 5", "expected :62F: or :62M:, found :64:"),
    ((":61:240301C1,00NTRFA//B", ":90D:1CNY1,00"), "line 6", "expected :62F: or :62M:"),
])
def test_a_malformed_field_is_refused_with_its_line(body: tuple[str, ...], field: str,
                                                    says: str) -> None:
    refused(parse_mt940, _statement(*body), field=field, says=says)


def test_fields_out_of_order_are_refused() -> None:
    data = _text(":20:REF1", ":28C:1/1", ":25:ACC")
    refused(parse_mt940, data, field="line 2", says="expected :25:, found :28C:")
    data = _text(":20:REF1", ":25:ACC", ":28C:1/1", ":60F:C240301CNY1,", ":62F:C240301CNY1,",
                 ":61:240301C1,00NTRFNONREF")
    refused(parse_mt940, data, field="line 6", says=":61: is out of place")


def test_a_truncated_statement_is_refused() -> None:
    data = _text(":20:REF1", ":25:ACC", ":28C:1/1", ":60F:C240301CNY1,",
                 ":61:240301C1,00NTRFNONREF")
    refused(parse_mt940, data, field="line 5", says="the statement ends (truncated?)")


def test_balances_that_do_not_add_up_are_refused() -> None:
    data = _statement(":61:240301C1,00NTRFNONREF")  # opening 100 + 1 != closing 100
    refused(parse_mt940, data, field="line 6", says="balances do not add up")


def test_a_currency_change_inside_a_statement_is_refused() -> None:
    data = _statement(closing="C240301USD100,00")
    refused(parse_mt940, data, field="line 5", says="balance in USD")


def test_text_outside_a_message_and_extra_lines_are_refused() -> None:
    title = [f"title line {n}" for n in range(9)]
    refused(parse_mt940, _text(*title, ":20:X"), field="line 9",
            says="9 lines of text outside any message")
    refused(parse_mt940, _text(":20:REF1", "more", "and more"), field="line 3",
            says=":20: (line 1) has at most 2 lines")
