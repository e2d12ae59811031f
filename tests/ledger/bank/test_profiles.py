"""Chinese banks' own exports read by bank profiles (ledger/bank/profile.py, profiled.py,
xlsx.py): the shipped profiles, the profile language's forms, and what is refused by name."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.bank import limits
from ledger.bank.model import Direction, EntryStatus, RefusedStatement, Statement
from ledger.bank.profile import (
    AmountForm,
    BankProfile,
    DateForm,
    ProfileError,
    profile_from_mapping,
)
from ledger.bank.profiled import date_of_text, fen_of_text
from ledger.bank.statements import (
    detect_and_parse,
    detect_format,
    parse_csv,
    read_file,
)
from ledger.bank.xlsx import xlsx_ratio_max, xlsx_rows
from tests.support.bank import refused, sample
from tests.support.bank_exports import (
    Line,
    balances,
    generic_rows,
    generic_xlsx,
    signed_rows,
    thousands,
    to_csv,
)
from tests.support.statements import CSV_HEADER

PROFILES_DIR = Path(__file__).resolve().parents[3] / "ledger" / "bank" / "profiles"
ACCOUNT = "6222000011112222"
DAY = date(2026, 12, 1)


def shipped() -> dict[str, BankProfile]:
    """The shipped profiles, read as api/profiles.py reads them (without the api layer)."""
    return {p.stem: profile_from_mapping(json.loads(p.read_text("utf-8")))
            for p in sorted(PROFILES_DIR.glob("*.json"))}


PROFILES = shipped()
ALL = tuple(PROFILES.values())
LINES = (Line(DAY, 10_000, summary="货款", purpose="YFS000000000042 会员卡"),
         Line(DAY, -2_550, counterparty="北京某公司", summary="付款"),
         Line(DAY + timedelta(1), 123_456_789, summary="转账"))


def only(parsed: Any) -> Statement:
    [statement] = parsed.items
    assert isinstance(statement, Statement), statement
    return statement


def test_the_shipped_profiles_are_valid_and_named_as_their_files() -> None:
    assert set(PROFILES) == {"yufu-csv", "cn-generic", "cn-generic-xlsx", "cn-signed"}
    assert all(p.name == name for name, p in PROFILES.items())


def test_a_gb18030_bank_csv_is_recognised_by_its_header_and_read() -> None:
    data = to_csv(generic_rows(ACCOUNT, 500_000, LINES), "gb18030")
    s = only(read_file(data, "明细.csv", profiles=ALL))
    assert (s.format, s.account, s.currency) == ("cn-generic", ACCOUNT, "CNY")
    assert s.statement_id == f"{ACCOUNT}:2026-12-01..2026-12-02"
    assert (s.opening_booked_fen, s.closing_booked_fen) == (500_000, 500_000 + 123_464_239)
    assert (s.opening_date, s.closing_date) == (DAY, DAY + timedelta(1))
    first, second, _ = s.entries
    assert (first.position, first.direction, first.amount_fen) == ("row 6", Direction.credit,
                                                                   10_000)
    [detail] = first.details
    assert detail.creditor_reference == "YFS000000000042"
    assert detail.remittance_unstructured == "货款 YFS000000000042 会员卡"
    assert (detail.counterparty_name, detail.counterparty_account) == ("张三",
                                                                       "6222020000000001")
    assert first.bank_reference == detail.bank_reference == "SN00000000"
    assert first.additional_info == "对方开户行: 中国工商银行北京分行"
    assert (second.direction, second.amount_fen) == (Direction.debit, 2_550)
    assert second.details[0].creditor_reference is None


def test_a_row_that_breaks_the_balance_chain_refuses_the_statement_naming_it() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[6][4] = "1.00"  # row 7's 余额: as if a line before it were lost
    [item] = read_file(to_csv(rows), profiles=ALL).items
    assert isinstance(item, RefusedStatement)
    assert item.field == "row 7, 余额" and "lost or edited" in item.reason
    assert item.account == ACCOUNT


def test_a_footer_total_that_is_not_the_rows_sum_is_refused() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[8][3] = "1.00"  # 合计's 贷方发生额
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows),
            field="row 9, 贷方发生额", says="the footer says 100 fen")


def test_a_row_after_the_footer_is_refused_not_dropped() -> None:
    rows = [*generic_rows(ACCOUNT, 0, LINES), generic_rows(ACCOUNT, 0, LINES)[5]]
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows),
            field="row 11", says="a row after the footer")


def test_thousands_separators_and_parentheses() -> None:
    # An overdrawn account: its balances in parentheses, amounts with separators.
    data = to_csv(generic_rows(ACCOUNT, -1_000_000_00, LINES, amount=thousands))
    assert b"(1,000,000.00)" not in data  # the opening is not written, only reached
    s = only(read_file(data, profile=PROFILES["cn-generic"]))
    assert (s.opening_booked_fen, s.closing_booked_fen) == (-100_000_000,
                                                            -100_000_000 + 123_464_239)


@pytest.mark.parametrize(("text", "fen"), [
    ("1234.56", 123_456), ("1,234.56", 123_456), ("1,234,567.8", 123_456_780),
    ("-1,234.56", -123_456), ("(1,234.56)", -123_456), ("（12.00）", -1_200),
    ("¥1,234.56", 123_456), ("￥0.05", 5), ("-¥3.00", -300), ("+7", 700), ("0.00", 0)])
def test_amount_forms(text: str, fen: int) -> None:
    assert fen_of_text(text, frozenset(AmountForm)) == fen


@pytest.mark.parametrize(("text", "forms"), [
    ("1,23.00", AmountForm), ("12,345", {AmountForm.minus}), ("(-1.00)", AmountForm),
    ("-1.00", {AmountForm.thousands}), ("(1.00)", {AmountForm.minus}), ("1.234", AmountForm),
    ("¥1.00", {AmountForm.minus}), ("1.0e3", AmountForm)])
def test_amounts_outside_the_profiles_forms_are_refused(text: str, forms: Any) -> None:
    with pytest.raises(ValueError, match="amount"):
        fen_of_text(text, frozenset(forms))


@pytest.mark.parametrize("text", [
    "2026-12-07", "2026-12-7", "2026/12/07", "2026/12/7", "20261207", "2026年12月07日",
    "2026年12月7日", "2026-12-07 10:23:45", "2026/12/07 10:23", "20261207 102345",
    "2026年12月07日 10:23:45", "2026-12-07T10:23:45.123"])
def test_every_date_form_with_or_without_time(text: str) -> None:
    assert date_of_text(text, tuple(DateForm)) == date(2026, 12, 7)


def test_a_date_outside_the_profiles_forms_or_impossible_is_refused() -> None:
    for text, forms in [("2026/12/07", (DateForm.iso,)), ("07/12/2026", tuple(DateForm)),
                        ("2026-02-30", tuple(DateForm)), ("2026-12-07 下午", tuple(DateForm))]:
        with pytest.raises(ValueError):
            date_of_text(text, forms)


@pytest.mark.parametrize("form", ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日",
                                  "%Y-%m-%d %H:%M:%S"])
def test_a_file_in_each_date_form_reads_the_same(form: str) -> None:
    data = to_csv(generic_rows(ACCOUNT, 0, LINES, day=lambda d: d.strftime(form)))
    s = only(read_file(data, profiles=ALL))
    assert [e.booking_date for e in s.entries] == [DAY, DAY, DAY + timedelta(1)]


def test_a_bad_date_in_a_row_is_refused_naming_row_and_column() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[5][0] = "2026-13-01"
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows),
            field="row 6, 交易日期", says="is not a date")


def test_a_single_signed_column_with_direction_flags_one_statement_per_account() -> None:
    for flags in [("贷", "借"), ("C", "D"), ("2", "1")]:
        data = to_csv(signed_rows({"A-1": (0, LINES), "B-2": (700, LINES[:2])}, flags))
        a, b = read_file(data, profiles=ALL).statements
        assert (a.account, a.closing_booked_fen) == ("A-1", 123_464_239)
        assert (b.account, b.opening_booked_fen, b.closing_booked_fen) == ("B-2", 700, 8_150)
        assert [e.direction for e in b.entries] == [Direction.credit, Direction.debit]
        assert b.entries[0].value_date == DAY and b.format == "cn-signed"


def test_an_unknown_direction_flag_is_refused() -> None:
    rows = signed_rows({"A-1": (0, LINES)})
    rows[1][4] = "X"
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows),
            field="row 2, 借贷标志", says="'X' is not a direction (贷/C/2/借/D/1)")


def test_a_signed_column_without_flags_reads_minus_and_parentheses_as_debits() -> None:
    profile = profile_from_mapping({
        "name": "signed", "bank": "test", "format": "csv", "encoding": "utf-8",
        "header_row": 2, "title_labels": {"account": "账户"},
        "columns": {"booking_date": "日期", "amount": "金额", "summary": "摘要"}})
    data = "账户：99\n日期,金额,摘要\n2026-12-01,\"1,000.00\",a\n2026-12-01,(10.00),b\n" \
           "2026-12-01,-5.00,c\n2026-12-01,,d\n".encode()
    s = only(read_file(data, profile=profile))
    assert [(e.direction, e.amount_fen, e.status) for e in s.entries] == [
        (Direction.credit, 100_000, EntryStatus.booked),
        (Direction.debit, 1_000, EntryStatus.booked),
        (Direction.debit, 500, EntryStatus.booked),
        (Direction.credit, 0, EntryStatus.info)]  # blank is zero: information only
    assert (s.opening_booked_fen, s.closing_booked_fen) == (None, None)  # no 余额 column


def test_a_red_ink_reversal_in_a_debit_column_is_money_in() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES[:1])
    rows[5][2:5] = ["-100.00", "", "0.00"]  # 借方 -100: the credit of 100 reversed
    rows[6][2:4] = ["-100.00", ""]  # 合计: the debit column sums to -100
    s = only(read_file(to_csv(rows), profiles=ALL))
    assert (s.entries[0].direction, s.entries[0].reversal) == (Direction.credit, True)


def test_the_account_must_be_in_a_title_line_or_a_column() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[1] = ["户名：北京某健身有限公司"]
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows), field="row 6",
            says="no account")


def test_a_title_cell_may_hold_the_label_and_the_next_cell_the_value() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[1] = ["账号", ACCOUNT, "账户名称", "某公司"]
    rows[2] = ["币种:", "美元"]
    s = only(read_file(to_csv(rows), profiles=ALL))
    assert (s.account, s.currency) == (ACCOUNT, "USD")


def test_a_header_two_profiles_match_must_be_named() -> None:
    twin = profile_from_mapping({**json.loads((PROFILES_DIR / "cn-generic.json").read_text(
        "utf-8")), "name": "cn-twin"})
    data = to_csv(generic_rows(ACCOUNT, 0, LINES))
    refused(lambda d: read_file(d, profiles=(*ALL, twin)).strict(), data, field="profile",
            says="the header matches the profiles cn-generic, cn-twin: name one")
    assert only(read_file(data, profile=twin)).format == "cn-twin"


def test_without_profiles_a_bank_export_is_not_a_statement_we_read() -> None:
    refused(detect_and_parse, to_csv(generic_rows(ACCOUNT, 0, LINES)), field="file",
            says="not a statement we read")


def test_optional_columns_may_be_absent_and_others_not() -> None:
    rows = [[c for i, c in enumerate(r) if i not in (1, 7, 9)]  # 交易时间, 对方开户行, 用途
            for r in generic_rows(ACCOUNT, 0, LINES)]
    s = only(read_file(to_csv(rows), profiles=ALL))
    assert s.entries[0].additional_info is None
    assert s.entries[0].details[0].remittance_unstructured == "货款"
    without_balance = [r[:3] + r[4:] for r in rows]  # 余额 is not optional in cn-generic
    refused(lambda d: read_file(d, profile=PROFILES["cn-generic"]).strict(),
            to_csv(without_balance), field="file", says="no header row of profile cn-generic")


def test_a_newest_first_export_is_chained_oldest_first() -> None:
    profile = profile_from_mapping({
        **json.loads((PROFILES_DIR / "cn-generic.json").read_text("utf-8")),
        "name": "newest", "row_order": "newest_first"})
    rows = generic_rows(ACCOUNT, 1_000, LINES)
    rows[5:8] = rows[5:8][::-1]
    s = only(read_file(to_csv(rows), profile=profile))
    assert [e.position for e in s.entries] == ["row 8", "row 7", "row 6"]
    assert (s.opening_booked_fen, s.closing_booked_fen) == (1_000, 1_000 + 123_464_239)
    assert s.statement_id == f"{ACCOUNT}:2026-12-01..2026-12-02"
    refused(lambda d: read_file(d, profile=PROFILES["cn-generic"]).strict(), to_csv(rows),
            field="row 7, 余额", says="lost or edited")


def test_cells_kept_as_text_with_an_equals_sign_are_read() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[1] = ["账号：", f'="{ACCOUNT}"']
    rows[5][6] = '="6222020000000001"'
    s = only(read_file(to_csv(rows), profiles=ALL))
    assert s.account == ACCOUNT
    assert s.entries[0].details[0].counterparty_account == "6222020000000001"


def test_a_row_with_a_cell_beyond_the_header_is_refused() -> None:
    rows = generic_rows(ACCOUNT, 0, LINES)
    rows[6][8:9] = ["转账", "手续费"]  # an unquoted comma in 摘要: every cell after it shifts
    refused(lambda d: read_file(d, profiles=ALL).strict(), to_csv(rows), field="row 7",
            says="a cell beyond the header's 11 columns")


def test_a_blank_amount_is_zero_only_where_the_profile_says() -> None:
    base = {"name": "strict", "bank": "t", "format": "csv", "header_row": 2,
            "title_labels": {"account": "账号"}, "amount_forms": ["minus"]}
    split = profile_from_mapping({**base, "columns": {
        "booking_date": "日期", "debit": "借", "credit": "贷"}})
    data = "账号：1\n日期,借,贷\n2026-12-01,,5.00\n2026-12-01,2.00,\n".encode()
    assert [e.signed_fen for e in only(read_file(data, profile=split)).entries] == [500, -200]
    signed = profile_from_mapping({**base, "columns": {"booking_date": "日期", "amount": "金额"}})
    refused(lambda d: read_file(d, profile=signed).strict(),
            "账号：1\n日期,金额\n2026-12-01,\n".encode(), field="row 3, 金额",
            says="金额 is required")


# --- Yufu's own CSV in any encoding ---------------------------------------------------------
def test_yufu_csv_in_gbk_and_with_a_bom() -> None:
    text = sample("statement.csv").decode("utf-8")
    assert "张三" in text  # Chinese in it, so the encoding matters
    expected = [replace(s, message_id=None) for s in parse_csv(sample("statement.csv"))]
    for data in [text.encode("gbk"), text.encode("gb18030"), b"\xef\xbb\xbf" + text.encode()]:
        assert detect_format(data) == "csv"
        assert [replace(s, message_id=None) for s in detect_and_parse(data)] == expected
        read = read_file(data, profile=PROFILES["yufu-csv"]).statements
        assert [replace(s, message_id=None) for s in read] == expected


def test_yufu_csv_in_latin1_reads_its_names() -> None:
    text = (f"{CSV_HEADER}\n"
            "DE89370400440532013000,EUR,2026-12-01,,CRDT,12.50,BOOK,,,,Jürgen Müller,,Öl,\n")
    [s] = parse_csv(text.encode("latin-1"))
    assert s.entries[0].details[0].counterparty_name == "Jürgen Müller"


def test_yufu_csv_in_an_encoding_it_is_not_is_refused_naming_the_line() -> None:
    profile = profile_from_mapping({"name": "yufu-utf8", "bank": "t", "format": "csv",
                                    "reader": "yufu-csv", "encoding": "utf-8"})
    data = sample("statement.csv").decode().encode("gbk")
    refused(lambda d: read_file(d, profile=profile).strict(), data, field="line 3",
            says="not utf-8 text")


# --- Excel -----------------------------------------------------------------------------------
def test_an_excel_export_is_read_with_numbers_and_dates_as_excel_stores_them() -> None:
    data = generic_xlsx(ACCOUNT, 10, (Line(DAY, 30, summary="YFS000000000007"),
                                      Line(DAY, -1, summary="0.1 + 0.2"),
                                      Line(DAY, 123_456_789_012, summary="big")))
    assert detect_format(data, "export.xls") == "xlsx"
    s = only(read_file(data, profiles=ALL))
    assert s.format == "cn-generic-xlsx"
    assert [e.signed_fen for e in s.entries] == [30, -1, 123_456_789_012]
    assert s.closing_booked_fen == 10 + 30 - 1 + 123_456_789_012
    assert s.entries[0].details[0].creditor_reference == "YFS000000000007"


def test_excel_float_noise_is_rounded_and_a_third_decimal_refused() -> None:
    import openpyxl

    def workbook(credit: float, balance: float) -> bytes:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        for row in generic_rows(ACCOUNT, 0, LINES[:1])[:5]:
            sheet.append(row)
        sheet.append([DAY, "", None, credit, balance])
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    s = only(read_file(workbook(0.1 + 0.2, 0.30000000000000004), profiles=ALL))
    assert s.entries[0].amount_fen == 30
    refused(lambda d: read_file(d, profiles=ALL).strict(), workbook(1.005, 1.005),
            field="row 6, 贷方发生额", says="not a whole number of fen")


def test_an_excel_workbook_without_a_profile_is_refused_by_name() -> None:
    data = generic_xlsx(ACCOUNT, 0, LINES)
    for profiles in [(), (PROFILES["cn-generic"],)]:
        refused(lambda d, p=profiles: read_file(d, profiles=p).strict(), data,
                field="profile", says="an Excel workbook needs a bank profile")


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


def test_an_xlsx_bomb_is_refused_before_it_is_opened() -> None:
    bomb = _zip({"xl/workbook.xml": b"<x/>", "xl/worksheets/sheet1.xml": bytes(10 << 20)})
    assert len(bomb) < 20_000
    refused(lambda d: read_file(d, profiles=ALL).strict(), bomb, field="file",
            says=f"over {xlsx_ratio_max} times (a zip bomb?)")
    many = _zip({"xl/workbook.xml": b"<x/>"} | {f"p{i}": b"" for i in range(1_001)})
    refused(lambda d: read_file(d, profiles=ALL).strict(), many, field="file",
            says="a zip of 1002 parts")
    # A zip that is no workbook is an archive: its members are read by the profile named.
    refused(lambda d: read_file(d, profile=PROFILES["cn-generic-xlsx"]).strict(),
            _zip({"other.xml": b"<x/>"}), field="other.xml: file",
            says="not an Excel workbook (.xlsx)")


def test_a_broken_workbook_is_refused_by_name() -> None:
    broken = _zip({"xl/workbook.xml": b"<not-a-workbook", "[Content_Types].xml": b"<x"})
    refused(lambda d: read_file(d, profiles=ALL).strict(), broken, field="file",
            says="not a readable Excel workbook")


def _resheeted(data: bytes, change: Callable[[bytes], bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    sheet = "xl/worksheets/sheet1.xml"
    return _zip({name: change(source.read(name)) if name == sheet else source.read(name)
                 for name in source.namelist()})


def test_a_workbook_wider_than_the_limit_is_refused_naming_the_row_or_its_dimension() -> None:
    """A cell past column 64 refuses its row by name (not dropped, not padded to it); a sheet
    that declares more columns is refused before a row is read."""
    data = generic_xlsx(ACCOUNT, 0, LINES)
    wide = _resheeted(data, lambda p: p.replace(
        b"</sheetData>", b'<row r="40"><c r="BM40" t="inlineStr"><is><t>x</t></is></c></row>'
                         b"</sheetData>"))
    refused(lambda d: read_file(d, profiles=ALL).strict(), wide, field="row 40",
            says=f"a cell in column 65, over the limit of {limits.xlsx_columns_max} columns")
    at_limit = _resheeted(data, lambda p: p.replace(
        b"</sheetData>", b'<row r="40"><c r="BL40" t="inlineStr"><is><t>x</t></is></c></row>'
                         b"</sheetData>"))
    assert xlsx_rows(at_limit)[39] == [""] * 63 + ["x"]
    declared = _resheeted(data, lambda p: re.sub(rb'<dimension ref="[^"]*"',
                                                 b'<dimension ref="A1:XFD7"', p))
    assert declared != data
    refused(lambda d: read_file(d, profiles=ALL).strict(), declared, field="file",
            says="declares 16384 columns, over the limit of 64")


# --- the profile language --------------------------------------------------------------------
GOOD = {"name": "p", "bank": "b", "format": "csv",
        "columns": {"booking_date": "日期", "amount": "金额"}}


@pytest.mark.parametrize(("change", "says"), [
    ({"name": "Has Space"}, "name 'Has Space'"),
    ({"format": "xls"}, "format: 'xls' is not one of csv, xlsx"),
    ({"encoding": "ebcdic"}, "encoding: encoding 'ebcdic' is not one we read"),
    ({"delimiter": "x"}, "delimiter"),
    ({"header_row": 0}, "header_row"),
    ({"columns": {"amount": "金额"}}, "booking_date is required"),
    ({"columns": {"booking_date": "日期", "debit": "借"}}, "either debit and credit"),
    ({"columns": {"booking_date": "日期", "amount": "金额", "debit": "借", "credit": "贷"}},
     "either debit and credit"),
    ({"columns": {"booking_date": "日期", "amount": "金额", "direction": "借贷"}},
     "direction_values"),
    ({"columns": {"booking_date": "日期", "amount": "日期"}}, "given to two fields"),
    ({"columns": {"booking_date": "日期", "amount": "金额", "colour": "色"}},
     "columns: 'colour' is not one of"),
    ({"date_forms": ["DD.MM.YYYY"]}, "date_forms"),
    ({"amount_forms": ["comma_decimal"]}, "amount_forms"),
    ({"reference_pattern": "YF("}, "reference_pattern"),
    ({"footer_labels": []}, "footer_labels"),
    ({"title_labels": {"iban": "IBAN"}}, "title_labels: 'iban'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"format": "xlsx", "encoding": "gbk"}, "encoding: only a CSV profile"),
    ({"optional_columns": ["amount"]}, "optional_columns"),
    ({"optional_columns": ["balance"]}, "optional_columns: fields of columns"),
    ({"row_order": "random"}, "row_order"),
])
def test_a_bad_profile_is_refused_naming_the_field(change: dict[str, Any], says: str) -> None:
    with pytest.raises(ProfileError, match=None) as caught:
        profile_from_mapping({**GOOD, **change})
    assert says in str(caught.value)


# --- written by a profile, read back ---------------------------------------------------------
amounts = st.integers(min_value=-10**11, max_value=10**11).filter(bool)
names = st.text(st.sampled_from("张王李赵北京上海有限公司 ABC"), min_size=1, max_size=12).map(
    str.strip).filter(bool)
lines_strategy = st.lists(st.builds(
    Line, day=st.dates(date(2020, 1, 1), date(2030, 12, 31)), signed_fen=amounts,
    counterparty=names, summary=names), min_size=1, max_size=15)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=lines_strategy, opening=st.integers(-10**11, 10**11),
       shape=st.sampled_from(["gb18030", "utf-8-sig", "xlsx"]),
       amount=st.sampled_from(["plain", "thousands"]))
def test_a_statement_written_by_a_profile_reads_back(lines: list[Line], opening: int,
                                                     shape: str, amount: str) -> None:
    if shape == "xlsx":
        data = generic_xlsx(ACCOUNT, opening, lines)
    else:
        writer = thousands if amount == "thousands" else None
        rows = (generic_rows(ACCOUNT, opening, lines, amount=writer) if writer
                else generic_rows(ACCOUNT, opening, lines))
        data = to_csv(rows, shape)
    s = only(read_file(data, profiles=ALL))
    assert [e.signed_fen for e in s.entries] == [x.signed_fen for x in lines]
    assert [e.booking_date for e in s.entries] == [x.day for x in lines]
    assert [e.details[0].counterparty_name for e in s.entries] == [x.counterparty
                                                                     for x in lines]
    assert s.opening_booked_fen == opening
    assert s.closing_booked_fen == balances(opening, lines)[-1]
    assert Decimal(s.closing_booked_fen) == Decimal(opening) + sum(x.signed_fen for x in lines)
