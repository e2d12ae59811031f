"""SWIFT MT940 (customer statement), read strictly from the field list.

A message is `:20: [:21:] :25: :28C: :60F:|:60M: (:61: [:86:])* :62F:|:62M: [:64:] [:65:]* [:86:]`,
ended by a `-` line or by the next `:20:`; a file may hold several, bare or in SWIFT blocks
(`{1:...}{2:...}{4:` ... `-}`). Any other field, order or shape is refused with its line number.

Why not the `mt-940` package: it merges every statement of a file into one collection (the
second statement's balances overwrite the first's), reports a bad line as a bare RuntimeError
with no line number, and accepts fields we must refuse. The grammar is small enough to own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
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
    StatementRejected,
    TxDetail,
    check_balances,
    check_statement_size,
    refused,
)

_TAG_RE: Final = re.compile(r":(?P<tag>[0-9]{2}[A-Z]?):(?P<value>.*)")
_BLOCK_START_RE: Final = re.compile(r"\{1:[^{}]*\}(?:\{2:[^{}]*\})?(?:\{3:(?:\{[^{}]*\})*\})?\{4:")
_BLOCK_END_RE: Final = re.compile(r"-\}(?:\{5:(?:\{[^{}]*\})*\})?")
# Fields that may run over several lines: :61: (its supplementary details) and :86:.
_MULTILINE_TAGS: Final = {"61": 2, "86": None}
_KNOWN_TAGS: Final = frozenset(
    {"20", "21", "25", "28", "28C", "60F", "60M", "61", "86", "62F", "62M", "64", "65"})
_BALANCE_RE: Final = re.compile(
    r"(?P<mark>[CD])(?P<date>[0-9]{6})(?P<currency>[A-Z]{3})(?P<amount>[0-9,]{1,15})")
# :61: 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x], the customer reference holding no "//".
_LINE_RE: Final = re.compile(
    r"(?P<value_date>[0-9]{6})(?P<entry_date>[0-9]{4})?(?P<mark>RC|RD|C|D)(?P<funds_code>[A-Z])?"
    r"(?P<amount>[0-9,]{1,15})(?P<type>[SNF][A-Z0-9]{3})"
    r"(?P<customer_ref>(?:(?!//).){1,16})(?://(?P<bank_ref>.{1,16}))?")
_STATEMENT_NUMBER_RE: Final = re.compile(r"[0-9]{1,5}(?:/[0-9]{1,5})?")
_MARKS: Final = {"C": (Direction.credit, False), "D": (Direction.debit, False),
                 # RD reverses a debit, so the money comes back in: a credit booking.
                 "RD": (Direction.credit, True), "RC": (Direction.debit, True)}
_NO_REFERENCE: Final = "NONREF"
_NOT_PROVIDED: Final = "NOTPROVIDED"


@dataclass(slots=True)
class _Field:
    tag: str
    line_no: int
    lines: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line_no}"

    @property
    def value(self) -> str:
        return self.lines[0]


def parse_mt940(data: bytes) -> list[Statement]:
    """Every statement of the file, or the first fault raised."""
    return read_mt940(data).strict()


def read_mt940(data: bytes) -> ParsedFile:
    """Every message of the file, each read or refused with its reason; a fault in the file's
    text (its encoding, a field outside any message) refuses the file."""
    check_statement_size(data)
    messages = _messages(_text_lines(data))
    if not messages:
        raise StatementRejected("no MT940 statement (:20:) in the file", field="line 1")
    return ParsedFile("mt940", tuple(_read(fields) for fields in messages))


def _read(fields: list[_Field]) -> Statement | RefusedStatement:
    try:
        return _statement(fields)
    except StatementRejected as exc:
        known = {f.tag: f.value.strip() for f in fields if f.tag in ("25", "28C", "28")}
        return refused(fields[0].where, exc, known.get("25"),
                       known.get("28C") or known.get("28"))


# --- lines into fields into messages -------------------------------------------------------
def _text_lines(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StatementRejected(f"not UTF-8 text (byte {exc.start})", field=f"line {line}") \
            from None
    return re.split(r"\r\n|\n|\r", text.removeprefix("\ufeff"))


def _messages(lines: list[str]) -> list[list[_Field]]:
    """Group the lines into fields and the fields into messages, checking only the lexis; the
    order of the fields is `_statement`'s business."""
    messages: list[list[_Field]] = []
    current: list[_Field] = []
    entries = 0
    for line_no, raw in enumerate(lines, 1):
        line = raw.rstrip()
        tag = _TAG_RE.fullmatch(line)
        if tag is not None:
            if tag["tag"] == "20" and current:
                messages.append(current)
                current = []
            current.append(_new_field(tag["tag"], tag["value"], line_no))
            entries += tag["tag"] == "61"
            if entries > limits.statement_entries_max:
                raise StatementRejected(f"over the limit of {limits.statement_entries_max} "
                                        f"entries per file", field=f"line {line_no}")
        elif not line or _BLOCK_START_RE.fullmatch(line):
            continue
        elif line == "-" or _BLOCK_END_RE.fullmatch(line):
            if current:
                messages.append(current)
            current = []
        else:
            _continue_field(current, line, line_no)
    if current:
        messages.append(current)
    return messages


def _new_field(tag: str, value: str, line_no: int) -> _Field:
    if tag not in _KNOWN_TAGS:
        raise StatementRejected(f"field :{tag}: is not part of MT940", field=f"line {line_no}")
    return _Field(tag, line_no, [value])


def _continue_field(current: list[_Field], line: str, line_no: int) -> None:
    if not current:
        raise StatementRejected(f"text outside any field: {line[:40]!r}; an MT940 file "
                                f"starts with :20:", field=f"line {line_no}")
    last = current[-1]
    if last.tag not in _MULTILINE_TAGS:
        raise StatementRejected(f"field :{last.tag}: (line {last.line_no}) has one line; "
                                f"unexpected {line[:40]!r}", field=f"line {line_no}")
    lines_max = _MULTILINE_TAGS[last.tag]
    if lines_max is not None and len(last.lines) >= lines_max:
        raise StatementRejected(f"field :{last.tag}: (line {last.line_no}) has at most "
                                f"{lines_max} lines", field=f"line {line_no}")
    last.lines.append(line)


# --- one message ---------------------------------------------------------------------------
class _Cursor:
    """Walks a message's fields in the order MT940 prescribes."""

    def __init__(self, fields: list[_Field]) -> None:
        self._fields = fields
        self._next = 0

    def peek(self) -> str | None:
        return self._fields[self._next].tag if self._next < len(self._fields) else None

    def take(self, *tags: str) -> _Field:
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

    def optional(self, *tags: str) -> _Field | None:
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


def _statement(fields: list[_Field]) -> Statement:
    cursor = _Cursor(fields)
    reference = _single(cursor.take("20"))
    cursor.optional("21")
    account = _single(cursor.take("25"))
    number = cursor.take("28C", "28")
    if not _STATEMENT_NUMBER_RE.fullmatch(number.value):
        raise StatementRejected(f"statement number {number.value!r} is not 5n[/5n]",
                                field=number.where)
    opening_field = cursor.take("60F", "60M")
    opening = _balance(opening_field)
    entries = tuple(_lines_and_info(cursor, opening.currency))
    closing_field = cursor.take("62F", "62M")
    closing = _balance(closing_field, opening.currency)
    available = cursor.optional("64")
    if available is not None:
        _balance(available, opening.currency)  # checked, not kept: reconciliation uses booked
    while (forward := cursor.optional("65")) is not None:
        _balance(forward, opening.currency)
    cursor.optional("86")
    cursor.end()
    statement = Statement(
        format="mt940", message_id=reference, statement_id=number.value, account=account,
        currency=opening.currency, opening_booked_fen=opening.signed_fen,
        closing_booked_fen=closing.signed_fen, closing_date=closing.date, created_at=None,
        entries=entries, opening_date=opening.date, position=fields[0].where)
    check_balances(statement, field=closing_field.where)
    return statement


def _lines_and_info(cursor: _Cursor, currency: str) -> Iterator[StatementEntry]:
    while cursor.peek() == "61":
        line = cursor.take("61")
        yield _entry(line, cursor.optional("86"), currency)


def _single(f: _Field) -> str:
    value = f.value.strip()
    if not value:
        raise StatementRejected(f"field :{f.tag}: is empty", field=f.where)
    return value


def _balance(f: _Field, currency: str | None = None) -> _Balance:
    match = _BALANCE_RE.fullmatch(f.value)
    if match is None:
        raise StatementRejected(f"balance :{f.tag}: {f.value[:40]!r} is not "
                                f"1!a6!n3!a15d (C or D, YYMMDD, currency, amount)", field=f.where)
    if currency is not None and match["currency"] != currency:
        raise StatementRejected(f"balance in {match['currency']}, the statement opened in "
                                f"{currency}", field=f.where)
    fen = _amount(match["amount"], f.where)
    return _Balance(fen if match["mark"] == "C" else -fen, _currency(match["currency"], f.where),
                    _yymmdd(match["date"], f.where))


def _entry(line: _Field, info: _Field | None, currency: str) -> StatementEntry:
    match = _LINE_RE.fullmatch(line.value)
    if match is None:
        raise StatementRejected(
            f"statement line {line.value[:60]!r} is not 6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]",
            field=line.where)
    if match["funds_code"] and match["funds_code"] != currency[2]:
        raise StatementRejected(f"funds code {match['funds_code']} is not the third letter of "
                                f"{currency}", field=line.where)
    fen = _amount(match["amount"], line.where)
    if fen == 0:
        raise StatementRejected("amount must not be zero", field=line.where)
    direction, reversal = _MARKS[match["mark"]]
    value_date = _yymmdd(match["value_date"], line.where)
    bank_ref = (match["bank_ref"] or "").strip() or None
    return StatementEntry(
        position=line.where, amount_fen=fen, direction=direction, status=EntryStatus.booked,
        booking_date=_entry_date(match["entry_date"], value_date, line.where) or value_date,
        value_date=value_date, reversal=reversal, bank_reference=bank_ref,
        details=(_detail(fen, match["customer_ref"].strip(), bank_ref, info),))


def _detail(fen: int, customer_ref: str, bank_ref: str | None, info: _Field | None) -> TxDetail:
    """:86: gives the references when tagged. Failing an EREF, the :61: customer reference is
    taken as the end-to-end id: it is the account owner's own reference, where banks put the
    EndToEndId of the payments we initiate."""
    parsed = _parse_info(info) if info is not None else _Info()
    own_ref = None if customer_ref in (_NO_REFERENCE, _NOT_PROVIDED) else customer_ref
    return TxDetail(
        amount_fen=fen, end_to_end_id=parsed.end_to_end_id or own_ref,
        creditor_reference=parsed.creditor_reference, remittance_unstructured=parsed.remittance,
        counterparty_name=parsed.counterparty_name,
        counterparty_account=parsed.counterparty_account, bank_reference=bank_ref)


# --- :86: information to the account owner -------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Info:
    end_to_end_id: str | None = None
    creditor_reference: str | None = None
    remittance: str | None = None
    counterparty_name: str | None = None
    counterparty_account: str | None = None


# `/CODE/value` pairs (SWIFT-style structured :86:). Only these codes delimit values, so a slash
# inside a value (dates, "a/b" references) does not cut it short.
_SLASH_CODES: Final = (
    "EREF", "CREF", "REMI", "PREF", "MARF", "CSID", "NAME", "CNTP", "ORDP", "BENM", "IBAN", "ADDR",
    "TRTP", "RTRN", "PURP", "SVCL", "ISDT", "ULTC", "ULTD", "OCMT", "CHGS", "EXCH", "CDTRREFTP",
    "CDTRREF")
_SLASH_RE: Final = re.compile(r"/(" + "|".join(_SLASH_CODES) + r")/")
# German DK format: `?NN` subfields, with `EREF+`-style tags in the purpose subfields ?20-?29
# and ?60-?63. The same tags are read in plain text too.
_DK_SUBFIELD_RE: Final = re.compile(r"\?([0-9]{2})((?:(?!\?[0-9]{2}).)*)")
_PLUS_CODES: Final = ("EREF", "KREF", "MREF", "CRED", "DEBT", "COAM", "OAMT", "SVWZ", "ABWA",
                      "ABWE", "IBAN", "BIC")
_PLUS_RE: Final = re.compile(r"(?<![A-Z])(" + "|".join(_PLUS_CODES) + r")\+")


def _parse_info(info: _Field) -> _Info:
    joined = "".join(part.strip() for part in info.lines)  # lines wrap at 65: not words
    if len(joined) > limits.statement_text_chars_max:
        raise StatementRejected(f":86: of {len(joined)} characters, over the limit of "
                                f"{limits.statement_text_chars_max}", field=info.where)
    plain = " ".join(part.strip() for part in info.lines).strip() or None
    if _DK_SUBFIELD_RE.search(joined):
        return _dk_info(joined, plain)
    slash = _tagged(_SLASH_RE, joined)
    if slash:
        return _Info(
            end_to_end_id=_provided(slash.get("EREF")),
            creditor_reference=slash.get("CREF") or slash.get("CDTRREF"),
            remittance=slash.get("REMI") or plain, counterparty_name=slash.get("NAME"),
            counterparty_account=slash.get("IBAN"))
    plus = _tagged(_PLUS_RE, joined)
    return _Info(end_to_end_id=_provided(plus.get("EREF")), remittance=plus.get("SVWZ") or plain,
                 counterparty_account=plus.get("IBAN"))


def _dk_info(joined: str, plain: str | None) -> _Info:
    subfields: dict[str, str] = {}
    for number, value in _DK_SUBFIELD_RE.findall(joined):
        subfields[number] = subfields.get(number, "") + value
    purpose = "".join(subfields.get(f"{n:02d}", "") for n in (*range(20, 30), *range(60, 64)))
    plus = _tagged(_PLUS_RE, purpose)
    name = (subfields.get("32", "") + subfields.get("33", "")).strip() or None
    return _Info(end_to_end_id=_provided(plus.get("EREF")),
                 remittance=plus.get("SVWZ") or purpose.strip() or plain,
                 counterparty_name=name,
                 counterparty_account=subfields.get("31", "").strip() or None)


def _tagged(pattern: re.Pattern[str], text: str) -> dict[str, str]:
    """`{code: value}` for each code the pattern finds, the value running to the next code."""
    marks = list(pattern.finditer(text))
    found: dict[str, str] = {}
    ends = [following.start() for following in marks[1:]] + [len(text)] if marks else []
    for mark, end in zip(marks, ends, strict=True):
        value = text[mark.end():end].strip().strip("/").strip()
        if value and mark[1] not in found:
            found[mark[1]] = value
    return found


def _provided(value: str | None) -> str | None:
    return None if value in (None, _NOT_PROVIDED, _NO_REFERENCE) else value


# --- leaf values ---------------------------------------------------------------------------
def _amount(text: str, where: str) -> int:
    try:
        return fen_from_text(text, mark=",")
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


def _entry_date(mmdd: str | None, value_date: date, where: str) -> date | None:
    """The entry date has no year: take the one nearest the value date, so a booking on
    31 December valued 2 January lands in the old year."""
    if mmdd is None:
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
