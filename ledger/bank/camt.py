"""ISO 20022 camt.053 (BankToCustomerStatement) and camt.054 (DebitCreditNotification).

Versions 001.02 to 001.14 are read by one code path: the elements we need kept their names and
places across versions, and where they changed we read both forms (entry status as plain code
up to v06 and as `Sts/Cd` from v07; a related party as `Dbtr/Nm` up to v06 and as `Dbtr/Pty/Nm`
from v07; a transaction amount as `AmtDtls/TxAmt/Amt` in v02 and as `TxDtls/Amt` from v03).

Every refusal names the element path, 1-based like XPath: `Stmt[1]/Ntry[3]/Amt`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from xml.etree import ElementTree
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden

from ledger.bank import limits
from ledger.bank.amounts import AmountFormatError, check_currency_code, fen_from_text
from ledger.bank.model import (
    Direction,
    EntryStatus,
    Statement,
    StatementEntry,
    StatementRejected,
    TxDetail,
    check_balances,
    check_statement_size,
)

_NAMESPACE_RE: Final = re.compile(
    r"urn:iso:std:iso:20022:tech:xsd:camt\.(?P<kind>05[34])\.001\.(?P<version>[0-9]{2})")
_VERSION_MIN: Final = 2
_VERSION_MAX: Final = 14
# Message kind -> (the element under Document, the repeated statement element under it).
_BODIES: Final = {"053": ("BkToCstmrStmt", "Stmt"), "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
_OPENING_CODES: Final = ("OPBD", "PRCD")  # opening booked; else previously closed booked
_CLOSING_CODE: Final = "CLBD"
# ISO 20022's placeholder for "the initiator gave no end-to-end id": matching on it would pair
# unrelated payments, so it reads as no id at all.
_NOT_PROVIDED: Final = "NOTPROVIDED"
_DATE_RE: Final = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_NO_ELEMENTS_CODE: Final = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]


def parse_xml(data: bytes) -> Element:
    """Parse untrusted XML with every DTD, entity and external reference refused.

    XXE and entity expansion (billion laughs) both need a DTD, so refusing the DTD refuses
    them before a single entity is expanded or a single URL resolved.
    """
    check_statement_size(data)
    try:
        # A bare expat pass refuses any DTD (so no entity can ever be declared or expanded)
        # at C speed; the tree is then built by the C ElementTree, which has nothing left to
        # expand. defusedxml's pure-Python tree builder was most of a big file's import time.
        _refuse_dtd(data)
        root: Element = ElementTree.fromstring(data)
    except DTDForbidden as exc:
        raise StatementRejected(
            "a DTD (<!DOCTYPE ...>) is not accepted: entity declarations and external "
            "references are refused", field=_line_of(data, b"<!DOCTYPE")) from exc
    except DefusedXmlException as exc:  # entities or external references without a DTD
        raise StatementRejected(f"refused XML construct: {exc!r}", field="file") from exc
    except (ParseError, expat.ExpatError) as exc:
        line, column = exc.position if isinstance(exc, ParseError) else (exc.lineno, exc.offset)
        reason = expat.ErrorString(exc.code)
        if exc.code == _NO_ELEMENTS_CODE:
            reason += ": the file ends before the document does (truncated?)"
        raise StatementRejected(f"not well-formed XML: {reason}",
                                field=f"line {line}, column {column}") from exc
    return root


def _refuse_dtd(data: bytes) -> None:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def doctype(*_: object) -> None:
        raise DTDForbidden(None, None, None)

    def entity(*_: object) -> None:
        raise EntitiesForbidden(None, None, None, None, None, None)

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.ExternalEntityRefHandler = lambda *_: False
    parser.Parse(data, True)


def parse_camt(data: bytes, kinds: frozenset[str]) -> list[Statement]:
    """Parse camt.053 and/or camt.054 (`kinds` is a subset of {"053", "054"})."""
    return statements_from_tree(parse_xml(data), kinds)


def statements_from_tree(root: Element, kinds: frozenset[str]) -> list[Statement]:
    """Read an already defused-parsed document; the namespace decides 053 or 054."""
    kind, version, doc = _identify(root, kinds)
    body_name, item_name = _BODIES[kind]
    body = doc.find(root, body_name)
    if body is None:
        raise StatementRejected(f"missing {body_name}", field="Document")
    _check_counts(doc, body, item_name)
    header = _Header(
        format=f"camt.{kind}.001.{version:02d}",
        message_id=doc.required(body, "GrpHdr/MsgId", ""),
        created_at=_datetime(doc.text(body, "GrpHdr/CreDtTm", ""), "GrpHdr/CreDtTm"))
    items = doc.findall(body, item_name)
    if not items:
        raise StatementRejected(f"no {item_name} in the file", field=body_name)
    return [_statement(doc, item, f"{item_name}[{i}]", header, with_balances=kind == "053")
            for i, item in enumerate(items, 1)]


# --- the document --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Doc:
    """Finds elements in the document's one namespace, and reads their text with a bound."""

    ns: str

    def tag(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    def find(self, el: Element, path: str) -> Element | None:
        return el.find(self._path(path))

    def findall(self, el: Element, path: str) -> list[Element]:
        return el.findall(self._path(path))

    def text(self, el: Element, path: str, where: str) -> str | None:
        node = el.find(self._path(path))
        return None if node is None else _bounded(node.text, _join(where, path))

    def required(self, el: Element, path: str, where: str) -> str:
        value = self.text(el, path, where)
        if value is None:
            raise StatementRejected(f"missing {path}", field=_join(where, path))
        return value

    def _path(self, path: str) -> str:
        return _qualified(self.ns, path)


@functools.lru_cache(maxsize=512)
def _qualified(ns: str, path: str) -> str:
    """`Ntry/Amt` in namespace ns, spelled for ElementPath; a statement asks the same few
    dozen paths hundreds of thousands of times."""
    return "/".join(f"{{{ns}}}{part}" for part in path.split("/"))


@dataclass(frozen=True, slots=True)
class _Header:
    format: str
    message_id: str
    created_at: datetime | None


def _identify(root: Element, kinds: frozenset[str]) -> tuple[str, int, _Doc]:
    ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    expected = " or ".join(f"camt.{k}" for k in sorted(kinds))
    match = _NAMESPACE_RE.fullmatch(ns)
    if match is None or match["kind"] not in kinds:
        found = f"namespace {ns!r}" if ns else "no namespace"
        raise StatementRejected(f"root element has {found}; expected {expected} "
                                f"(urn:iso:std:iso:20022:tech:xsd:camt.05N.001.NN)",
                                field=f"<{local}>")
    version = int(match["version"])
    if not _VERSION_MIN <= version <= _VERSION_MAX:
        raise StatementRejected(
            f"camt.{match['kind']}.001.{match['version']} is not supported: versions "
            f"001.{_VERSION_MIN:02d} to 001.{_VERSION_MAX:02d} are", field=f"<{local}>")
    if local != "Document":
        raise StatementRejected(f"root element is <{local}>, expected <Document>",
                                field=f"<{local}>")
    return match["kind"], version, _Doc(ns)


def _check_counts(doc: _Doc, body: Element, item_name: str) -> None:
    entries = len(doc.findall(body, f"{item_name}/Ntry"))
    if entries > limits.statement_entries_max:
        raise StatementRejected(
            f"{entries} entries, over the limit of {limits.statement_entries_max} per file",
            field="Ntry")
    details = sum(1 for _ in body.iter(doc.tag("TxDtls")))
    if details > limits.statement_details_max:
        raise StatementRejected(
            f"{details} transaction details, over the limit of "
            f"{limits.statement_details_max} per file", field="TxDtls")


# --- one statement -------------------------------------------------------------------------
def _statement(doc: _Doc, item: Element, where: str, header: _Header,
               *, with_balances: bool) -> Statement:
    balances = _balances(doc, item, where) if with_balances else {}
    currency = _account_currency(doc, item, where, balances)
    for code, balance in balances.items():
        if balance.currency != currency:
            raise StatementRejected(
                f"{code} balance is in {balance.currency}, the account in {currency}",
                field=f"{balance.path}/Amt")
    opening = next((balances[c] for c in _OPENING_CODES if c in balances), None)
    closing = balances.get(_CLOSING_CODE)
    entries = tuple(_entry(doc, ntry, f"{where}/Ntry[{i}]", currency)
                    for i, ntry in enumerate(doc.findall(item, "Ntry"), 1))
    statement = Statement(
        format=header.format,
        message_id=header.message_id,
        statement_id=doc.required(item, "Id", where),
        account=_account_id(doc, item, "Acct", where, required=True) or "",
        currency=currency,
        opening_booked_fen=opening.signed_fen if opening else None,
        closing_booked_fen=closing.signed_fen if closing else None,
        closing_date=closing.date if closing else None,
        created_at=_datetime(doc.text(item, "CreDtTm", where), f"{where}/CreDtTm")
        or header.created_at,
        entries=entries)
    check_balances(statement, field=f"{where}/Bal")
    return statement


@dataclass(frozen=True, slots=True)
class _Balance:
    path: str
    signed_fen: int
    currency: str
    date: date


def _balances(doc: _Doc, item: Element, where: str) -> dict[str, _Balance]:
    """The opening and closing booked balances by type code; other types are not needed."""
    found: dict[str, _Balance] = {}
    for i, bal in enumerate(doc.findall(item, "Bal"), 1):
        path = f"{where}/Bal[{i}]"
        code = doc.text(bal, "Tp/CdOrPrtry/Cd", path)  # None for a proprietary type
        if code not in (*_OPENING_CODES, _CLOSING_CODE):
            continue
        if code in found:
            raise StatementRejected(f"a second {code} balance", field=f"{path}/Tp")
        fen, currency = _amount(doc, bal, "Amt", path, allow_zero=True)
        sign = _direction(doc.required(bal, "CdtDbtInd", path), f"{path}/CdtDbtInd")
        when = _date_choice(doc, bal, "Dt", path)
        if when is None:
            raise StatementRejected("missing Dt", field=f"{path}/Dt")
        found[code] = _Balance(path, fen if sign is Direction.credit else -fen, currency, when)
    return found


def _account_currency(doc: _Doc, item: Element, where: str,
                      balances: dict[str, _Balance]) -> str:
    """Acct/Ccy when the bank gives it (it is optional); else the balances' or first entry's."""
    given = doc.text(item, "Acct/Ccy", where)
    if given is not None:
        return _currency(given, f"{where}/Acct/Ccy")
    for balance in balances.values():
        return balance.currency
    first = doc.find(item, "Ntry/Amt")
    if first is not None:
        return _currency(first.get("Ccy", ""), f"{where}/Ntry[1]/Amt/@Ccy")
    raise StatementRejected("cannot tell the account currency: give Acct/Ccy",
                            field=f"{where}/Acct/Ccy")


def _account_id(doc: _Doc, el: Element, path: str, where: str, *,
                required: bool = False) -> str | None:
    """An account's IBAN, or else its other identification (Othr/Id)."""
    value = doc.text(el, f"{path}/Id/IBAN", where) or doc.text(el, f"{path}/Id/Othr/Id", where)
    if value is None and required:
        raise StatementRejected("missing account identification (Id/IBAN or Id/Othr/Id)",
                                field=_join(where, f"{path}/Id"))
    return value


# --- entries and their details -------------------------------------------------------------
def _entry(doc: _Doc, ntry: Element, where: str, currency: str) -> StatementEntry:
    fen, entry_currency = _amount(doc, ntry, "Amt", where)
    _same_currency(entry_currency, currency, f"{where}/Amt")
    direction = _direction(doc.required(ntry, "CdtDbtInd", where), f"{where}/CdtDbtInd")
    reversal = _reversal(doc.text(ntry, "RvslInd", where), f"{where}/RvslInd")
    return StatementEntry(
        position=where,
        amount_fen=fen,
        direction=direction,
        status=_status(doc, ntry, where),
        booking_date=_date_choice(doc, ntry, "BookgDt", where),
        value_date=_date_choice(doc, ntry, "ValDt", where),
        reversal=reversal,
        bank_reference=doc.text(ntry, "AcctSvcrRef", where),
        details=_details(doc, ntry, where, currency, fen, direction, reversal))


def _details(doc: _Doc, ntry: Element, where: str, currency: str, entry_fen: int,
             direction: Direction, reversal: bool) -> tuple[TxDetail, ...]:
    """The entry's TxDtls, across every NtryDtls. A batch's details must add up to the entry:
    one that does not has lost a transaction, or nets charges or mixed directions that we
    cannot attribute, and is refused rather than half-matched."""
    located = [(f"{where}/NtryDtls[{i}]/TxDtls[{j}]", tx)
               for i, block in enumerate(doc.findall(ntry, "NtryDtls"), 1)
               for j, tx in enumerate(doc.findall(block, "TxDtls"), 1)]
    lone_fen = entry_fen if len(located) == 1 else None
    details = tuple(
        _detail(doc, tx, path, currency, lone_fen, direction, reversal) for path, tx in located)
    total_fen = sum(d.amount_fen for d in details)
    if details and total_fen != entry_fen:
        raise StatementRejected(
            f"the {len(details)} transaction details add up to {total_fen} fen, the entry is "
            f"{entry_fen} fen", field=f"{where}/NtryDtls")
    return details


def _detail(doc: _Doc, tx: Element, where: str, currency: str, lone_fen: int | None,
            direction: Direction, reversal: bool) -> TxDetail:
    fen = _detail_amount(doc, tx, where, currency, lone_fen)
    detail_direction = doc.text(tx, "CdtDbtInd", where)
    if detail_direction is not None and \
            _direction(detail_direction, f"{where}/CdtDbtInd") is not direction:
        raise StatementRejected("a transaction detail against its entry's direction (a netted "
                                "batch) is not supported", field=f"{where}/CdtDbtInd")
    # The counterparty is the other side of the original payment: its debtor for money in,
    # its creditor for money out, and the reverse for a reversal of either.
    original_credit = (direction is Direction.credit) != reversal
    side = "Dbtr" if original_credit else "Cdtr"
    end_to_end_id = doc.text(tx, "Refs/EndToEndId", where)
    return TxDetail(
        amount_fen=fen,
        end_to_end_id=None if end_to_end_id == _NOT_PROVIDED else end_to_end_id,
        creditor_reference=_first_text(doc, tx, "RmtInf/Strd/CdtrRefInf/Ref", where),
        remittance_unstructured=_joined_text(doc, tx, "RmtInf/Ustrd", where),
        counterparty_name=doc.text(tx, f"RltdPties/{side}/Nm", where)
        or doc.text(tx, f"RltdPties/{side}/Pty/Nm", where),
        counterparty_account=_account_id(doc, tx, f"RltdPties/{side}Acct", where),
        bank_reference=doc.text(tx, "Refs/AcctSvcrRef", where))


def _detail_amount(doc: _Doc, tx: Element, where: str, currency: str,
                   lone_fen: int | None) -> int:
    for path in ("Amt", "AmtDtls/TxAmt/Amt"):
        if doc.find(tx, path) is not None:
            fen, detail_currency = _amount(doc, tx, path, where)
            _same_currency(detail_currency, currency, f"{where}/{path}")
            return fen
    if lone_fen is None:
        raise StatementRejected("each transaction detail of a batched entry must give its "
                                "amount (Amt or AmtDtls/TxAmt/Amt)", field=f"{where}/Amt")
    return lone_fen


def _status(doc: _Doc, ntry: Element, where: str) -> EntryStatus:
    """`<Sts>BOOK</Sts>` up to v06, `<Sts><Cd>BOOK</Cd></Sts>` from v07; either is read."""
    sts = doc.find(ntry, "Sts")
    if sts is None:
        raise StatementRejected("missing Sts", field=f"{where}/Sts")
    if doc.find(sts, "Prtry") is not None:
        raise StatementRejected("a proprietary entry status is not supported",
                                field=f"{where}/Sts/Prtry")
    nested = doc.find(sts, "Cd")
    code = _bounded((nested if nested is not None else sts).text, f"{where}/Sts") or ""
    try:
        return EntryStatus(code)
    except ValueError:
        raise StatementRejected(f"entry status {code!r} is not BOOK, PDNG or INFO",
                                field=f"{where}/Sts") from None


# --- leaf values ---------------------------------------------------------------------------
def _amount(doc: _Doc, el: Element, path: str, where: str,
            *, allow_zero: bool = False) -> tuple[int, str]:
    """An amount in fen with its currency (the Ccy attribute); only a balance may be zero."""
    node = doc.find(el, path)
    field = _join(where, path)
    if node is None:
        raise StatementRejected(f"missing {path}", field=field)
    try:
        fen = fen_from_text((node.text or "").strip())
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=field) from None
    if fen == 0 and not allow_zero:
        raise StatementRejected("amount must not be zero", field=field)
    return fen, _currency(node.get("Ccy", ""), f"{field}/@Ccy")


def _currency(code: str, field: str) -> str:
    try:
        return check_currency_code(code)
    except AmountFormatError as exc:
        raise StatementRejected(str(exc), field=field) from None


def _same_currency(found: str, account: str, field: str) -> None:
    if found != account:
        raise StatementRejected(
            f"amount in {found} on an account in {account}: entries in another currency than "
            f"the account's are not accepted", field=field)


def _direction(code: str, field: str) -> Direction:
    try:
        return Direction(code)
    except ValueError:
        raise StatementRejected(f"{code!r} is not CRDT or DBIT", field=field) from None


def _reversal(text: str | None, field: str) -> bool:
    if text is None or text in ("false", "0"):
        return False
    if text in ("true", "1"):
        return True
    raise StatementRejected(f"{text!r} is not a boolean (true or false)", field=field)


def _date_choice(doc: _Doc, el: Element, path: str, where: str) -> date | None:
    """A DateAndDateTimeChoice: `<X><Dt>` or `<X><DtTm>`; None when `<X>` is absent."""
    if doc.find(el, path) is None:
        return None
    day = doc.text(el, f"{path}/Dt", where)
    if day is not None:
        match = _DATE_RE.fullmatch(day)
        try:
            return date.fromisoformat(match[1] if match else "not a date")
        except ValueError:
            raise StatementRejected(f"{day!r} is not a date (YYYY-MM-DD)",
                                    field=_join(where, f"{path}/Dt")) from None
    moment = _datetime(doc.text(el, f"{path}/DtTm", where), _join(where, f"{path}/DtTm"))
    if moment is None:
        raise StatementRejected("needs Dt or DtTm", field=_join(where, path))
    return moment.date()


def _datetime(text: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time; naive when the bank gave no offset (the schema allows that)."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise StatementRejected(f"{text[:40]!r} is not an ISO 8601 date-time",
                                field=field) from None


def _first_text(doc: _Doc, el: Element, path: str, where: str) -> str | None:
    for node in doc.findall(el, path):
        value = _bounded(node.text, _join(where, path))
        if value:
            return value
    return None


def _joined_text(doc: _Doc, el: Element, path: str, where: str) -> str | None:
    """Repeated text elements (Ustrd) joined with a space, under the same bound as one."""
    field = _join(where, path)
    parts = [part for node in doc.findall(el, path) if (part := _bounded(node.text, field))]
    return _bounded(" ".join(parts), field) if parts else None


def _bounded(text: str | None, field: str) -> str | None:
    value = (text or "").strip()
    if len(value) > limits.statement_text_chars_max:
        raise StatementRejected(
            f"text of {len(value)} characters, over the limit of "
            f"{limits.statement_text_chars_max}", field=field)
    return value or None


def _join(where: str, path: str) -> str:
    return f"{where}/{path}" if where else path


def _line_of(data: bytes, needle: bytes) -> str:
    offset = data.find(needle)
    if offset < 0:
        return "file"
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}"
