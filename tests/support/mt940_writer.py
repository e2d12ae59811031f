"""Statements written out as MT940 the ways banks frame it, for tests that read them back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ledger.bank.model import Direction, Statement, StatementEntry

LINE_CHARS_MAX: Final = 65  # SWIFT's line length


def _blocks(lines: list[str]) -> list[str]:
    return ["{1:F01BANKCNBJAXXX0000000000}{2:O940BANKCNBJAXXXXN}{3:}{4:", *lines, "-}{5:}"]


def _blocks_split(lines: list[str]) -> list[str]:
    return ["{1:F01INGBNL2ABXXX0000000000}", "{2:I940INGBNL2AXXXN}", "{4:", *lines, "-}",
            "{5:{CHK:ABCDEF123456}}"]


# Each takes a message's field lines and frames them as one bank does.
ENVELOPES: Final[dict[str, Callable[[list[str]], list[str]]]] = {
    "bare": lambda lines: [*lines, "-"],
    "blocks": _blocks,
    "blocks on lines of their own": _blocks_split,
    "ABN AMRO header": lambda lines: ["ABNANL2A", "940", "ABNANL2A", *lines, "-"],
    "BIC/940 header": lambda lines: ["ABNANL2A/940", *lines, "-"],
    "ING header": lambda lines: ["0000 01INGBNL2AXXXX00001", "940 00", *lines, "-XXX"],
    "SOH and ETX": lambda lines: ["\x01", *lines, "-\x03"],
    "Rabobank, no end line": lambda lines: lines,
    "a title line": lambda lines: ["Kontoauszug / statement", *lines, "-"],
}
_FILE_HEADERS: Final = {"Rabobank, no end line": [":940:"]}


def write_mt940(statements: list[Statement], envelope: str, newline: str = "\r\n") -> str:
    """The statements as MT940 text, each message framed by `envelope` (ENVELOPES)."""
    lines = list(_FILE_HEADERS.get(envelope, []))
    for statement in statements:
        lines += ENVELOPES[envelope](_message(statement))
    return newline.join(lines) + newline


def _message(s: Statement) -> list[str]:
    assert s.opening_booked_fen is not None and s.closing_booked_fen is not None
    assert s.opening_date is not None and s.closing_date is not None
    lines = [f":20:{s.message_id}" if s.message_id else ":20:", f":25:{s.account}",
             f":28C:{s.statement_id}",
             f":60F:{_balance(s.opening_booked_fen, s.opening_date.strftime('%y%m%d'), s)}"]
    for entry in s.entries:
        lines += _entry(entry)
    closing = _balance(s.closing_booked_fen, s.closing_date.strftime("%y%m%d"), s)
    return [*lines, f":62F:{closing}"]


def _balance(fen: int, yymmdd: str, s: Statement) -> str:
    return f"{'D' if fen < 0 else 'C'}{yymmdd}{s.currency}{amount(abs(fen))}"


def amount(fen: int, whole_without_comma: bool = False) -> str:
    units, cents = divmod(fen, 100)
    if cents == 0 and whole_without_comma:
        return str(units)
    return f"{units},{cents:02d}"


def _entry(e: StatementEntry) -> list[str]:
    [detail] = e.details
    assert e.value_date is not None and e.booking_date is not None
    mark = {(Direction.credit, False): "C", (Direction.debit, False): "D",
            (Direction.credit, True): "RD", (Direction.debit, True): "RC"}[
        (e.direction, e.reversal)]
    own_ref = detail.end_to_end_id or "NONREF"
    bank_ref = f"//{e.bank_reference}" if e.bank_reference else ""
    line = (f":61:{e.value_date:%y%m%d}{e.booking_date:%m%d}{mark}"
            f"{amount(e.amount_fen, whole_without_comma=e.amount_fen % 200 == 0)}"
            f"NTRF{own_ref}{bank_ref}")
    info = "".join(f"/{code}/{value}" for code, value in (
        ("EREF", detail.end_to_end_id), ("NAME", detail.counterparty_name),
        ("REMI", detail.remittance_unstructured)) if value)
    return [line, *wrap(f":86:{info}")] if info else [line]


def wrap(text: str) -> list[str]:
    """Lines of at most 65 characters, cut where neither side of the cut is a space: a reader
    drops the spaces at the ends of lines, as banks pad them."""
    lines = []
    while len(text) > LINE_CHARS_MAX:
        cut = LINE_CHARS_MAX
        while cut > 1 and (text[cut - 1] == " " or text[cut] == " "):
            cut -= 1
        lines.append(text[:cut])
        text = text[cut:]
    return [*lines, text]
