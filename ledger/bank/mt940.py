"""SWIFT MT940 (customer statement) and MT942 (interim report), as banks really write them.

A message is `[:20:] [:21:] :25: :28C: :60F:|:60M: [:86:]* (:61: [:86:])* :62F:|:62M:` then
`:64:`, `:65:` and `:86:` as banks put them; an MT942 has `:34F:` (floor limits) and `:13D:`
(its time) instead of an opening balance, and `:90D:`/`:90C:` (the debits' and credits' count
and sum) after its lines. How messages are framed (SWIFT blocks, bank headers, SOH/ETX) is
mt940_lex's business; `:86:` is mt940_info's. docs/bank-formats.md lists every variant read.

Each message is its own statement, read or refused on its own: a fault in one (an unknown
field, balances that do not add up) refuses that one only. Only the file's text itself (its
encoding, text outside any message) refuses the whole file.

Why not the `mt-940` package: it merges every statement of a file into one collection (the
second statement's balances overwrite the first's), reports a bad line as a bare RuntimeError
with no line number, and accepts fields we must refuse. It is a test oracle only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Final

from ledger.bank import limits
from ledger.bank.amounts import AmountFormatError, check_currency_code, fen_from_text
from ledger.bank.model import (
    Direction,
    EntryStatus,
    ParsedFile,
    RefusedStatement,
    Statement,
    StatementEntry,
    StatementKind,
    StatementRejected,
    TxDetail,
    check_balances,
    check_statement_size,
    refused,
)
from ledger.bank.mt940_info import NO_REFERENCE, NOT_PROVIDED, Info, parse_info
from ledger.bank.mt940_lex import Field, looks_like_mt940, messages
from ledger.bank.text import TextEncoding, decode_text

__all__ = ["looks_like_mt940", "parse_mt940", "read_mt940"]

_KNOWN_TAGS: Final = frozenset({"20", "21", "25", "28", "28C", "60F", "60M", "61", "86", "62F",
                                "62M", "64", "65", "34F", "13D", "90D", "90C", "NS"})
# A bank's private fields (Sberbank's `:NS:`), read past: they hold nothing MT940 defines.
_PRIVATE_TAGS: Final = frozenset({"NS"})
_AFTER_CLOSING_TAGS: Final = ("64", "65", "86", "90D", "90C")
_BALANCE_RE: Final = re.compile(
    r"(?P<mark>[CD])(?P<date>[0-9]{6})(?P<currency>[A-Z]{3})(?P<amount>[0-9,]{1,15})")
# :61: 6!n[4!n]2a[1!a]15d1!a3!c[16x][//16x]. As banks write it: the entry date blank (four
# spaces, Citi), a space before the transaction type (Commerzbank), the type's code blank
# (Sberbank `S   `), the customer reference longer than 16 or missing.
_LINE_RE: Final = re.compile(
    r"(?P<value_date>[0-9]{6})(?P<entry_date>[0-9]{4}| {4})?(?P<mark>RC|RD|C|D)"
    r"(?P<funds_code>[A-Z])?(?P<amount>[0-9,]{1,15}) ?(?P<type>[A-Z][A-Z0-9 ]{3})"
    rf"(?P<customer_ref>(?:(?!//).){{0,{limits.mt940_reference_chars_max}}})"
    rf"(?://(?P<bank_ref>.{{0,{limits.mt940_reference_chars_max}}}))?")
_STATEMENT_NUMBER_RE: Final = re.compile(r"[0-9]{1,5}(?:/[0-9]{1,5})?")
_FLOOR_RE: Final = re.compile(r"(?P<currency>[A-Z]{3})(?P<mark>[CD]?)(?P<amount>[0-9,]{1,15})")
_DATETIME_RE: Final = re.compile(
    r"(?P<stamp>[0-9]{10})(?P<sign>[+-])(?P<hh>[0-9]{2})(?P<mm>[0-9]{2})")
_SUM_RE: Final = re.compile(
    r"(?P<count>[0-9]{1,5})(?P<currency>[A-Z]{3})(?P<amount>[0-9,]{1,15})")
_MARKS: Final = {"C": (Direction.credit, False), "D": (Direction.debit, False),
                 # RD reverses a debit, so the money comes back in: a credit booking.
                 "RD": (Direction.credit, True), "RC": (Direction.debit, True)}
_BARE_TAG_RE: Final = re.compile(r"[A-Z]{4}\+")  # `KREF+`: the value is in :86:
_FLOOR_LIMITS_MAX: Final = 2  # :34F: once for both directions, or once for debits, once credits


def parse_mt940(data: bytes, encoding: TextEncoding | None = None) -> list[Statement]:
    """Every statement of the file, or the first fault raised."""
    return read_mt940(data, encoding).strict()


def read_mt940(data: bytes, encoding: TextEncoding | None = None) -> ParsedFile:
    """Every message of the file, each read or refused with its reason; a fault in the file's
    text (an encoding it is not in, text outside any message) refuses the file. `encoding` is
    the one the bank's profile names; without it, it is detected (ledger/bank/text.py)."""
    check_statement_size(data)
    text, _ = decode_text(data, encoding)
    found = messages(re.split(r"\r\n|\n|\r", text))
    if not found:
        raise StatementRejected("no MT940 statement (:20: or :25:) in the file", field="line 1")
    return ParsedFile("mt940", tuple(_read(fields) for fields in found))


def _read(fields: list[Field]) -> Statement | RefusedStatement:
    try:
        return _statement([f for f in fields if f.tag not in _PRIVATE_TAGS] or fields)
    except StatementRejected as exc:
        known = {f.tag: f.value.strip() for f in fields if f.tag in ("25", "28C", "28")}
        return refused(fields[0].where, exc, known.get("25"),
                       known.get("28C") or known.get("28"))


# --- one message ---------------------------------------------------------------------------
class _Cursor:
    """Walks a message's fields in the order MT940 prescribes."""

    def __init__(self, fields: list[Field]) -> None:
        self._fields = fields
        self._next = 0

    def peek(self) -> str | None:
        return self._fields[self._next].tag if self._next < len(self._fields) else None

    def take(self, *tags: str) -> Field:
        found = self.optional(*tags)
        if found is None:
            wanted = " or ".join(f":{t}:" for t in tags)
            if self._next < len(self._fields):
                got = self._fields[self._next]
                raise StatementRejected(f"expected {wanted}, found :{got.tag}:", field=got.where)
            last = self._fields[-1]
            raise StatementRejected(f"expected {wanted} after this field; the statement ends "
                                    f"(truncated?)", field=last.where)
        return found

    def optional(self, *tags: str) -> Field | None:
        if self.peek() in tags:
            self._next += 1
            return self._fields[self._next - 1]
        return None

    def end(self) -> None:
        if self._next < len(self._fields):
            extra = self._fields[self._next]
            raise StatementRejected(f"field :{extra.tag}: is out of place after the closing "
                                    f"balance", field=extra.where)


@dataclass(frozen=True, slots=True)
class _Balance:
    signed_fen: int
    currency: str
    date: date


@dataclass(frozen=True, slots=True)
class _Header:
    reference: str | None
    account: str
    number: str
    kind: StatementKind
    created_at: datetime | None


def _statement(fields: list[Field]) -> Statement:
    _check_tags(fields)
    cursor = _Cursor(fields)
    header = _header(cursor)
    interim = header.kind is StatementKind.interim  # its balances are optional
    opening_field = cursor.optional("60F", "60M") if interim else cursor.take("60F", "60M")
    opening = _balance(opening_field) if opening_field is not None else None
    currency = opening.currency if opening is not None else _floor_currency(fields)
    while cursor.optional("86") is not None:
        pass  # information about the statement, before its lines: not about any line
    entries = tuple(_lines_and_info(cursor, currency))
    closing_field = cursor.optional("62F", "62M") if interim else cursor.take("62F", "62M")
    closing = _balance(closing_field, currency) if closing_field is not None else None
    _after_closing(cursor, currency, entries)
    statement = Statement(
        format="mt940", message_id=header.reference, statement_id=header.number,
        account=header.account, currency=currency,
        opening_booked_fen=opening.signed_fen if opening else None,
        closing_booked_fen=closing.signed_fen if closing else None,
        closing_date=closing.date if closing else None, created_at=header.created_at,
        entries=entries, kind=header.kind, opening_date=opening.date if opening else None,
        position=fields[0].where)
    check_balances(statement, field=(closing_field or fields[-1]).where)
    return statement


def _check_tags(fields: list[Field]) -> None:
    for f in fields:
        if f.tag not in _KNOWN_TAGS:
            raise StatementRejected(f"field :{f.tag}: is not part of MT940 or MT942",
                                    field=f.where)


def _header(cursor: _Cursor) -> _Header:
    reference_field = cursor.optional("20")
    reference = (reference_field.value.strip() or None) if reference_field else None
    cursor.optional("21")
    account = _single(cursor.take("25"))
    number = cursor.take("28C", "28")
    statement_number = number.value.strip()
    if statement_number and not _STATEMENT_NUMBER_RE.fullmatch(statement_number):
        raise StatementRejected(f"statement number {statement_number!r} is not 5n[/5n]",
                                field=number.where)
    floors = 0
    while (floor := cursor.optional("34F")) is not None:
        floors += 1
        if floors > _FLOOR_LIMITS_MAX or _FLOOR_RE.fullmatch(floor.value) is None:
            raise StatementRejected(f"floor limit :34F: {floor.value[:40]!r} is not "
                                    f"3!a[1!a]15d, at most twice", field=floor.where)
    stamp = cursor.optional("13D")
    interim = floors > 0 or stamp is not None
    return _Header(reference, account, statement_number,
                   StatementKind.interim if interim else StatementKind.final,
                   _datetime(stamp) if stamp is not None else None)


def _floor_currency(fields: list[Field]) -> str:
    """An MT942 without an opening balance: the currency of its floor limit."""
    for f in fields:
        if f.tag == "34F" and (match := _FLOOR_RE.fullmatch(f.value)) is not None:
            return _currency(match["currency"], f.where)
    raise StatementRejected("an interim report needs :34F: or :60F: to give its currency",
                            field=fields[0].where)


def _after_closing(cursor: _Cursor, currency: str, entries: tuple[StatementEntry, ...]) -> None:
    """:64: (available), :65: (forward available), :86: (about the statement) and an MT942's
    :90D:/:90C: sums, in the order banks put them."""
    while (f := cursor.optional(*_AFTER_CLOSING_TAGS)) is not None:
        if f.tag in ("64", "65"):
            _balance(f, currency)  # checked, not kept: reconciliation uses booked
        elif f.tag in ("90D", "90C"):
            _check_sum(f, currency, entries)
    cursor.end()


def _check_sum(f: Field, currency: str, entries: tuple[StatementEntry, ...]) -> None:
    """An MT942's count and sum of its debits (:90D:) or credits (:90C:) must be its lines'."""
    match = _SUM_RE.fullmatch(f.value)
    if match is None:
        raise StatementRejected(f":{f.tag}: {f.value[:40]!r} is not 5n3!a15d", field=f.where)
    if match["currency"] != currency:
        raise StatementRejected(f":{f.tag}: in {match['currency']}, the report is in {currency}",
                                field=f.where)
    direction = Direction.debit if f.tag == "90D" else Direction.credit
    lines = [e.amount_fen for e in entries if e.direction is direction]
    count, fen = int(match["count"]), _amount(match["amount"], f.where)
    if (count, fen) != (len(lines), sum(lines)):
        raise StatementRejected(
            f":{f.tag}: gives {count} {direction.name}s of {fen} fen, the lines hold "
            f"{len(lines)} of {sum(lines)} fen", field=f.where)


def _lines_and_info(cursor: _Cursor, currency: str) -> Iterator[StatementEntry]:
    while cursor.peek() == "61":
        line = cursor.take("61")
        yield _entry(line, cursor.optional("86"), currency)


def _single(f: Field) -> str:
    value = f.value.strip()
    if not value:
        raise StatementRejected(f"field :{f.tag}: is empty", field=f.where)
    return value


def _balance(f: Field, currency: str | None = None) -> _Balance:
    match = _BALANCE_RE.fullmatch(f.value.strip())
    if match is None:
        raise StatementRejected(f"balance :{f.tag}: {f.value[:40]!r} is not "
                                f"1!a6!n3!a15d (C or D, YYMMDD, currency, amount)", field=f.where)
    if currency is not None and match["currency"] != currency:
        raise StatementRejected(f"balance in {match['currency']}, the statement opened in "
                                f"{currency}", field=f.where)
    fen = _amount(match["amount"], f.where)
    return _Balance(fen if match["mark"] == "C" else -fen, _currency(match["currency"], f.where),
                    _yymmdd(match["date"], f.where))


def _entry(line: Field, info: Field | None, currency: str) -> StatementEntry:
    first, *supplementary = line.lines
    match = _LINE_RE.fullmatch(first.rstrip())
    if match is None:
        raise StatementRejected(
            f"statement line {first[:60]!r} is not 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]",
            field=line.where)
    if match["funds_code"] and match["funds_code"] != currency[2]:
        raise StatementRejected(f"funds code {match['funds_code']} is not the third letter of "
                                f"{currency}", field=line.where)
    fen = _amount(match["amount"], line.where)
    direction, reversal = _MARKS[match["mark"]]
    value_date = _yymmdd(match["value_date"], line.where)
    bank_ref = (match["bank_ref"] or "").strip() or None
    parsed = parse_info(info) if info is not None else Info()
    notes = [" ".join(s.strip() for s in supplementary).strip(), parsed.booking_text or ""]
    return StatementEntry(
        position=line.where, amount_fen=fen, direction=direction,
        # A zero amount moves nothing: a bank's notice (Citi's balance lines, SNS's messages).
        status=EntryStatus.booked if fen else EntryStatus.info,
        booking_date=_entry_date(match["entry_date"], value_date, line.where) or value_date,
        value_date=value_date, reversal=reversal, bank_reference=bank_ref,
        details=(_detail(fen, match["customer_ref"].strip(), bank_ref, parsed),),
        additional_info=" | ".join(n for n in notes if n) or None)


def _detail(fen: int, customer_ref: str, bank_ref: str | None, parsed: Info) -> TxDetail:
    """:86: gives the references when tagged. Failing an EREF, the :61: customer reference is
    taken as the end-to-end id: it is the account owner's own reference, where banks put the
    EndToEndId of the payments we initiate."""
    return TxDetail(
        amount_fen=fen,
        end_to_end_id=parsed.end_to_end_id or _own_reference(customer_ref, parsed),
        creditor_reference=parsed.creditor_reference, remittance_unstructured=parsed.remittance,
        counterparty_name=parsed.counterparty_name,
        counterparty_account=parsed.counterparty_account, bank_reference=bank_ref)


def _own_reference(customer_ref: str, parsed: Info) -> str | None:
    """The :61: customer reference; where :86: gives it whole (KREF+) and the line only its
    first 16 characters or a bare `KREF+`, the whole one."""
    kref = parsed.customer_reference
    if customer_ref in ("", NO_REFERENCE, NOT_PROVIDED):
        return kref
    if kref is not None and kref.startswith(customer_ref.removeprefix("KREF+")):
        return kref
    return None if _BARE_TAG_RE.fullmatch(customer_ref) else customer_ref


# --- leaf values ---------------------------------------------------------------------------
def _amount(text: str, where: str) -> int:
    # MT940 requires the decimal comma; banks write whole amounts without it (`500`).
    try:
        return fen_from_text(text if "," in text else text + ",", mark=",")
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=where) from None


def _currency(code: str, where: str) -> str:
    try:
        return check_currency_code(code)
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=where) from None


def _yymmdd(text: str, where: str) -> date:
    # Two-digit years are this century's: MT940 has no century, and no statement is older.
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        raise StatementRejected(f"{text!r} is not a date (YYMMDD)", field=where) from None


def _datetime(f: Field) -> datetime:
    """:13D: YYMMDDhhmm+hhmm, the report's time with its offset from UTC."""
    shape = f":13D: {f.value[:40]!r} is not YYMMDDhhmm+hhmm"
    match = _DATETIME_RE.fullmatch(f.value.strip())
    if match is None:
        raise StatementRejected(shape, field=f.where)
    day, clock = _yymmdd(match["stamp"][:6], f.where), match["stamp"][6:]
    try:
        offset = timedelta(hours=int(match["hh"]), minutes=int(match["mm"]))
        zone = timezone(-offset if match["sign"] == "-" else offset)
        return datetime(day.year, day.month, day.day, int(clock[:2]), int(clock[2:]),
                        tzinfo=zone)
    except ValueError:
        raise StatementRejected(shape, field=f.where) from None


def _entry_date(mmdd: str | None, value_date: date, where: str) -> date | None:
    """The entry date has no year: take the one nearest the value date, so a booking on
    31 December valued 2 January lands in the old year. Blank (Citi) is no entry date."""
    if mmdd is None or not mmdd.strip():
        return None
    candidates = []
    for year in (value_date.year - 1, value_date.year, value_date.year + 1):
        try:
            candidates.append(date(year, int(mmdd[:2]), int(mmdd[2:])))
        except ValueError:
            continue  # 29 February exists in some years only
    if not candidates:
        raise StatementRejected(f"entry date {mmdd!r} is not MMDD", field=where)
    return min(candidates, key=lambda d: abs(d - value_date) // timedelta(days=1))
