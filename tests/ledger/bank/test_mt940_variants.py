"""MT940 as banks really write it: encodings, envelopes, the fields' real-world forms, MT942.

The corpus test (test_corpus_mt940.py) reads real banks' files; these pin each variant down on
its own, with the bank that sends it named where it is known.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.bank.model import Direction, EntryStatus, StatementKind
from ledger.bank.mt940 import parse_mt940, read_mt940
from ledger.bank.statements import detect_format
from ledger.bank.text import TextEncoding
from tests.support.bank import refused, sample
from tests.support.mt940_writer import ENVELOPES, write_mt940


def _text(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def _statement(*body: str, opening: str = "C240301CNY100,00", closing: str = "C240301CNY100,00",
               head: tuple[str, ...] = (":20:REF1", ":25:6226090000000048", ":28C:1/1")) -> str:
    return _text(*head, f":60F:{opening}", *body, f":62F:{closing}", "-")


# --- encodings ------------------------------------------------------------------------------
CHINESE_86 = ":86:/EREF/SALE-0001/NAME/张三培训中心/REMI/学费 十节课 预付卡充值"


@pytest.mark.parametrize("encoding", [None, TextEncoding.gbk, TextEncoding.gb18030])
def test_a_gbk_file_with_chinese_text_reads_detected_or_named(
        encoding: TextEncoding | None) -> None:
    text = _statement(":61:240301C1,00NTRFSALE-0001", CHINESE_86, closing="C240301CNY101,00")
    [statement] = parse_mt940(text.encode("gbk"), encoding)
    [detail] = statement.entries[0].details
    assert detail.counterparty_name == "张三培训中心"
    assert detail.remittance_unstructured == "学费 十节课 预付卡充值"


def test_a_latin_2_file_reads_when_its_encoding_is_named() -> None:
    text = _statement(":61:240301C1,00NTRFNONREF", ":86:/NAME/Árvíztűrő Kft./REMI/Díj ősz",
                      closing="C240301CNY101,00")
    data = text.encode("iso8859-2")
    [named] = parse_mt940(data, TextEncoding.latin2)
    assert named.entries[0].details[0].counterparty_name == "Árvíztűrő Kft."
    # Latin-2 and Latin-1 cannot be told apart by their bytes: unnamed, it reads as Latin-1
    [guessed] = parse_mt940(data)
    assert guessed.entries[0].details[0].counterparty_name == "Árvíztûrõ Kft."


def test_latin_1_german_umlauts_are_detected() -> None:
    text = _statement(":61:240301C1,00NTRFNONREF",
                      ":86:166?00GUTSCHRIFT?20SVWZ+Miete Mai Gebühr?32Jürgen Müller?33 Straße",
                      closing="C240301CNY101,00")
    [statement] = parse_mt940(text.encode("latin-1"))
    [detail] = statement.entries[0].details
    assert detail.counterparty_name == "Jürgen Müller Straße"
    assert detail.remittance_unstructured == "Miete Mai Gebühr"


def test_utf8_with_a_byte_order_mark() -> None:
    [statement] = parse_mt940(b"\xef\xbb\xbf" + sample("mt940_swift_envelope.sta"))
    assert statement.account == "CMBCCNBS/6226090000000055"


def test_bytes_that_are_not_the_named_encoding_are_refused() -> None:
    refused(lambda d: parse_mt940(d, TextEncoding.utf8), _statement().encode() + b"\xff",
            field="line 7", says="not utf-8 text")


# --- envelopes and headers ------------------------------------------------------------------
@pytest.mark.parametrize("envelope", sorted(ENVELOPES))
def test_every_envelope_banks_use_is_read_and_detected(envelope: str) -> None:
    statements = parse_mt940(sample("mt940_two_statements.sta"))
    data = write_mt940(statements, envelope).encode()
    assert detect_format(data, "upload.bin") == "mt940"
    again = parse_mt940(data)
    assert [(s.statement_id, s.closing_booked_fen, len(s.entries)) for s in again] == [
        ("00061/001", 10_073_456, 2), ("00062/001", 10_000_000, 3)]


def test_blocks_together_on_one_line_and_a_trailer_on_its_own() -> None:
    data = _text("{1:F01SNSBNL2AXXXX0000000000}{2:O940SNSBNL2AXXXXN}{3:{108:MUR}}{4:",
                 ":20:A", ":25:ACC", ":28C:1", ":60F:C240301EUR1,", ":62F:C240301EUR1,", "-}",
                 "{5:{CHK:123}}")
    [statement] = parse_mt940(data.encode())
    assert statement.account == "ACC"


def test_messages_of_different_accounts_stay_apart() -> None:
    data = _text(":940:", ":20:A", ":25:FIRST", ":28C:0", ":60F:C240301EUR1,",
                 ":62F:C240301EUR1,", ":25:SECOND", ":28C:0", ":60F:C240301EUR5,",
                 ":62F:C240301EUR5,")
    first, second = parse_mt940(data.encode())
    assert (first.account, first.closing_booked_fen) == ("FIRST", 100)
    assert (second.account, second.closing_booked_fen, second.message_id) == ("SECOND", 500, None)


def test_a_dash_line_inside_86_text_is_text_when_text_follows() -> None:
    # ING wraps :86: so that a line holds only "-"
    data = _statement(":61:240301C1,00NTRFNONREF", ":86:/EREF/20120501P0123478//MARF/MND",
                      "-", "120123//REMI/USTD//CONTRIBUTIE/", closing="C240301CNY101,00")
    [statement] = parse_mt940(data.encode())
    [detail] = statement.entries[0].details
    assert (detail.end_to_end_id, detail.remittance_unstructured) == (
        "20120501P0123478", "CONTRIBUTIE")


# --- fields as banks write them -------------------------------------------------------------
def test_a_missing_or_blank_20_and_a_blank_28c() -> None:
    missing = _statement(head=(":25:ACC", ":28C:"))
    [statement] = parse_mt940(missing.encode())
    assert (statement.message_id, statement.statement_id) == (None, "")
    blank = _statement(head=(":20:", ":25:ACC", ":28C:0000", "0"))  # ING wraps :28C:
    [statement] = parse_mt940(blank.encode())
    assert (statement.message_id, statement.statement_id) == (None, "00000")


def test_long_or_missing_references_a_blank_entry_date_and_whole_amounts() -> None:
    data = _statement(
        ":61:1712271227D713,13NOVBNL49RABO0166416932",  # SNS: an IBAN as the reference
        "gerrits glas en schilderwerk",
        ":61:1712271227D10,NBEA//228ohu/972795",  # no customer reference
        ":61:240312    D5NMSCNONREF//",  # Citi: blank entry date; Knab: 5 without a comma
        opening="C240301CNY1000,00", closing="C240301CNY271,87")
    long_ref, no_ref, whole = parse_mt940(data.encode())[0].entries
    assert long_ref.details[0].end_to_end_id == "NL49RABO0166416932"
    assert long_ref.additional_info == "gerrits glas en schilderwerk"
    assert (no_ref.details[0].end_to_end_id, no_ref.bank_reference) == (None, "228ohu/972795")
    assert (no_ref.amount_fen, whole.amount_fen) == (1000, 500)
    assert whole.booking_date == whole.value_date == date(2024, 3, 12)
    assert whole.bank_reference is None


def test_86_before_the_first_line_and_after_the_closing_balance() -> None:
    data = _text(":20:A", ":25:ACC", ":28C:1", ":60F:C240301CNY1,",
                 ":86:about the statement", ":61:240301C1,NTRFX",
                 ":86:/REMI/about the line", ":62F:C240301CNY2,", ":64:C240301CNY2,",
                 ":65:C240302CNY2,", ":86:/SUM/1/0/1,00/0,00/", "-")
    [statement] = parse_mt940(data.encode())
    [entry] = statement.entries
    assert entry.details[0].remittance_unstructured == "about the line"


def test_a_zero_line_is_kept_as_information() -> None:
    data = _statement(":61:240312CD0,00NDEFNONREF//", "/ABC/DEF/C 37897,00 BAI CD 025",
                      opening="C240301USD1,", closing="C240301USD1,")
    [entry] = parse_mt940(data.encode())[0].entries
    assert (entry.amount_fen, entry.status) == (0, EntryStatus.info)
    assert entry.additional_info == "/ABC/DEF/C 37897,00 BAI CD 025"


def test_a_61_of_many_lines_and_an_86_up_to_the_text_limit() -> None:
    body = [f"line {n} of the purpose" for n in range(60)]
    data = _statement(":61:240301C1,00NTRFA//B", "/TRCD/010", "16", "/",
                      ":86:" + body[0], *body[1:], closing="C240301CNY101,00")
    [entry] = parse_mt940(data.encode())[0].entries
    assert entry.additional_info == "/TRCD/010 16 /"
    assert entry.details[0].remittance_unstructured == " ".join(body)
    over = _statement(":61:240301C1,00NTRFA", ":86:" + "x" * 2001, closing="C240301CNY101,00")
    refused(parse_mt940, over.encode(), field="line 6", says="over the limit of 2000")


def test_the_dk_86_subfields() -> None:
    info = (":86:166?00SEPA-GUTSCHRIFT?109310?20EREF+E2E-0001?21KREF+CUST-77?22MREF+M-1?23"
            "SVWZ+Rechnung 42?24ABWA+Ultimate Ltd?30DRESDEFF430?31DE954308008308?32"
            "ACME TRAINING?33 CENTRE")
    data = _statement(":61:240301C1,00NTRFKREF+//BANK1", info, closing="C240301CNY101,00")
    [entry] = parse_mt940(data.encode())[0].entries
    [detail] = entry.details
    assert (detail.end_to_end_id, detail.remittance_unstructured) == ("E2E-0001", "Rechnung 42")
    assert (detail.counterparty_name, detail.counterparty_account) == (
        "ACME TRAINING CENTRE", "DE954308008308")
    assert entry.additional_info == "SEPA-GUTSCHRIFT KREF+CUST-77 MREF+M-1"


def test_ing_cntp_and_a_structured_remittance() -> None:
    info = ":86:/EREF/15814016000676480//CNTP/NL32INGB0000012345/INGBNL2A/J.Janssen///REMI/STRD/"
    data = _statement(":61:240301C1,00NTRFNONREF", info, "CUR/9001123412341234/",
                      closing="C240301CNY101,00")
    [detail] = parse_mt940(data.encode())[0].entries[0].details
    assert (detail.end_to_end_id, detail.counterparty_account, detail.counterparty_name) == (
        "15814016000676480", "NL32INGB0000012345", "J.Janssen")
    assert detail.creditor_reference == "9001123412341234"


def test_a_bank_private_ns_field_is_read_past() -> None:
    data = _text(":20:STARTUMS", ":25:1966315302010001", ":28:00046", ":NS:22JOHN DOE",
                 "23John Doe", ":60F:C171011HUF10,00", ":61:1710111011DF2,00S   X",
                 ":NS:01526715", "15ERGO", ":62F:C171011HUF8,00")
    [statement] = parse_mt940(data.encode())
    assert [e.amount_fen for e in statement.entries] == [200]


def test_one_refused_statement_leaves_the_others_read() -> None:
    good = _statement(head=(":20:A", ":25:ACC", ":28C:1"))
    bad = _statement(":61:240301C1,00NTRFNONREF", head=(":20:B", ":25:ACC", ":28C:2"))
    parsed = read_mt940((good + bad).encode())
    [statement] = parsed.statements
    [refusal] = parsed.refused
    assert statement.statement_id == "1"
    assert (refusal.statement_id, refusal.position, refusal.field) == ("2", "line 7", "line 12")
    assert "balances do not add up" in refusal.reason


# --- MT942 ----------------------------------------------------------------------------------
MT942_HEAD = (":20:CGNGHKLI0290980", ":25:GJB0291077111", ":28C:03917/00001", ":34F:EURD0,00",
              ":34F:EURC0,00", ":13D:1610301730+0100")


def test_an_mt942_is_an_interim_report_without_balances() -> None:
    data = _text(*MT942_HEAD, ":61:1610301031D0,42NCHGNONREF//055001022000001",
                 ":86:/REMI/Costs", ":61:1610301031C5,00NTRFNONREF", ":90D:1EUR0,42",
                 ":90C:1EUR5,00", "-")
    [report] = parse_mt940(data.encode())
    assert report.kind is StatementKind.interim
    assert (report.opening_booked_fen, report.closing_booked_fen, report.closing_date) == (
        None, None, None)
    assert report.currency == "EUR"
    assert report.created_at == datetime(2016, 10, 30, 16, 30, tzinfo=UTC)
    assert [(e.amount_fen, e.direction) for e in report.entries] == [
        (42, Direction.debit), (500, Direction.credit)]


def test_an_mt942_whose_sums_disagree_with_its_lines_is_refused_by_name() -> None:
    data = _text(*MT942_HEAD, ":61:1610301031D0,42NCHGNONREF", ":90D:1EUR2,30", "-")
    refused(parse_mt940, data.encode(), field="line 8",
            says=":90D: gives 1 debits of 230 fen, the lines hold 1 of 42 fen")
    data = _text(*MT942_HEAD, ":61:1610301031D0,42NCHGNONREF", ":90C:1EUR0,42", "-")
    refused(parse_mt940, data.encode(), field="line 8", says=":90C: gives 1 credits")


def test_a_truly_unknown_field_is_refused_with_its_line() -> None:
    refused(parse_mt940, _statement(":77Z:what").encode(), field="line 5",
            says=":77Z: is not part of MT940")


@pytest.mark.parametrize("stamp", ["1610301730", "1610302530+0000", "1610301730+2500",
                                   "1613301730+0000"])
def test_a_malformed_13d_is_refused(stamp: str) -> None:
    data = _text(*MT942_HEAD[:5], f":13D:{stamp}", "-")
    refused(parse_mt940, data.encode(), field="line 6", says="is not")


def test_a_reference_longer_than_a_line_is_refused() -> None:
    longest = "R" * 65
    [entry] = parse_mt940(_statement(f":61:240301C1,00NTRF{longest}",
                                     closing="C240301CNY101,00").encode())[0].entries
    assert entry.details[0].end_to_end_id == longest
    refused(parse_mt940, _statement(f":61:240301C1,00NTRF{longest}R").encode(), field="line 5",
            says="is not 6!n[4!n]2a")
