"""Chinese banks' own statement exports, written by the tests from plain values, in the
layouts of the shipped profiles (ledger/bank/profiles/): cn-generic (CSV and Excel) and
cn-signed. Written here by hand, not by the reader's code, so the two do not share a mistake."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

GENERIC_HEADER = ("交易日期", "交易时间", "借方发生额", "贷方发生额", "余额", "对方户名",
                  "对方账号", "对方开户行", "摘要", "用途", "交易流水号")
SIGNED_HEADER = ("本方账号", "币种", "记账日期", "起息日", "借贷标志", "金额", "余额",
                 "对方户名", "对方账号", "摘要", "附言", "凭证号")


@dataclass(frozen=True)
class Line:
    day: date
    signed_fen: int  # money in positive, out negative
    counterparty: str = "张三"
    summary: str = "转账"
    purpose: str = ""
    serial: str = ""


def plain(fen: int) -> str:
    """1234.56, -0.05"""
    units, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{units}.{cents:02d}"


def thousands(fen: int) -> str:
    """1,234.56; a debit in parentheses: (1,234.56)"""
    units, cents = divmod(abs(fen), 100)
    text = f"{units:,}.{cents:02d}"
    return f"({text})" if fen < 0 else text


def balances(opening_fen: int, lines: Sequence[Line]) -> list[int]:
    running, out = opening_fen, []
    for line in lines:
        running += line.signed_fen
        out.append(running)
    return out


def generic_rows(account: str, opening_fen: int, lines: Sequence[Line],
                 amount: Callable[[int], str] = plain,
                 day: Callable[[date], str] = date.isoformat) -> list[list[str]]:
    """Title lines, the header, the rows and a 合计 footer of the debit and credit sums."""
    first, last = lines[0].day, lines[-1].day
    rows = [["中国工商银行企业网上银行账户明细"],
            [f"账号：{account}", "", "户名：北京某健身有限公司"],
            ["币种：人民币", "", f"查询期间：{first} 至 {last}"],
            [],
            list(GENERIC_HEADER)]
    for n, (line, balance) in enumerate(zip(lines, balances(opening_fen, lines), strict=True)):
        debit = amount(-line.signed_fen) if line.signed_fen < 0 else ""
        credit = amount(line.signed_fen) if line.signed_fen > 0 else ""
        rows.append([day(line.day), f"10:{n % 60:02d}:00", debit, credit, amount(balance),
                     line.counterparty, "6222020000000001", "中国工商银行北京分行",
                     line.summary, line.purpose, line.serial or f"SN{n:08d}"])
    debits = sum(-x.signed_fen for x in lines if x.signed_fen < 0)
    credits = sum(x.signed_fen for x in lines if x.signed_fen > 0)
    rows.append(["合计", "", amount(debits), amount(credits)])
    rows.append(["总笔数：" + str(len(lines))])
    return rows


def signed_rows(accounts: dict[str, tuple[int, Sequence[Line]]], flags: tuple[str, str] = (
        "贷", "借")) -> list[list[str]]:
    """cn-signed: a header first, one 金额 column with 借贷标志, accounts in a column."""
    rows = [list(SIGNED_HEADER)]
    for account, (opening_fen, lines) in accounts.items():
        for n, (line, balance) in enumerate(zip(lines, balances(opening_fen, lines),
                                                strict=True)):
            flag = flags[0] if line.signed_fen >= 0 else flags[1]
            rows.append([account, "人民币", line.day.strftime("%Y%m%d"),
                         line.day.strftime("%Y%m%d"), flag, plain(abs(line.signed_fen)),
                         plain(balance), line.counterparty, "6222020000000001",
                         line.summary, line.purpose, line.serial or f"V{n:06d}"])
    return rows


def to_csv(rows: Sequence[Sequence[str]], encoding: str = "gb18030") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def generic_xlsx(account: str, opening_fen: int, lines: Sequence[Line]) -> bytes:
    """cn-generic as Excel writes it: amounts as numbers (floats), dates as Excel dates."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in generic_rows(account, opening_fen, lines):
        sheet.append(row)
    for cells in sheet.iter_rows(min_row=6):
        if isinstance(cells[0].value, str) and cells[0].value[:1].isdigit():
            cells[0].value = datetime.fromisoformat(cells[0].value)
        for cell in cells[2:5]:
            if isinstance(cell.value, str) and cell.value:
                cell.value = float(cell.value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
