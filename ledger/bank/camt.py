"""ISO 20022 camt.053 (BankToCustomerStatement), camt.054 (DebitCreditNotification) and
camt.052 (BankToCustomerAccountReport, an interim report during the day).

Versions 001.02 to 001.14 are read by one code path: the elements we need kept their names and
places across versions, and where they changed we read both forms (entry status as plain code
up to v06 and as `Sts/Cd` from v07; a related party as `Dbtr/Nm` up to v06 and as `Dbtr/Pty/Nm`
from v07; a transaction amount as `AmtDtls/TxAmt/Amt` in v02 and as `TxDtls/Amt` from v03).

What banks write beyond the common form, and how it is read (docs/bank-formats.md lists the
banks): amounts with up to five decimals when they are whole fen; balances of any type, of
which the opening (OPBD, else PRCD) and closing (CLBD; an interim report's ITBD) booked ones
are used; a zero-amount entry as information; a batched entry whose details give no amounts
as one line of the entry's amount; the UETR, the entry's additional information, and a
detail's additional information as its remittance text when it has no Ustrd.

Every refusal names the element path, 1-based like XPath: `Stmt[1]/Ntry[3]/Amt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from xml.etree.ElementTree import Element

from ledger.bank import limits
from ledger.bank.camt_doc import Doc, Kids
from ledger.bank.camt_values import (
    amount_of,
    bounded,
    currency_of,
    datetime_of,
    day_of,
    direction_of,
    path_join,
    reversal_of,
    same_currency,
)
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
    refused,
)
from ledger.bank.xmlfile import parse_xml
from ledger.collector import collector_paused

_NAMESPACE_RE: Final = re.compile(
    r"urn:iso:std:iso:20022:tech:xsd:camt\.(?P<kind>05[234])\.001\.(?P<version>[0-9]{2})")
_VERSION_MIN: Final = 2
_VERSION_MAX: Final = 14


@dataclass(frozen=True, slots=True)
class _Message:
    body: str  # the element under Document
    item: str  # the repeated statement element under it
    closing_codes: tuple[str, ...]  # the closing balance's type codes by preference; () = none
    kind: StatementKind


_MESSAGES: Final = {
    "052": _Message("BkToCstmrAcctRpt", "Rpt", ("CLBD", "ITBD"), StatementKind.interim),
    "053": _Message("BkToCstmrStmt", "Stmt", ("CLBD",), StatementKind.final),
    "054": _Message("BkToCstmrDbtCdtNtfctn", "Ntfctn", (), StatementKind.final),
}
_OPENING_CODES: Final = ("OPBD", "PRCD")  # opening booked; else previously closed booked
# ISO 20022's placeholder for "the initiator gave no end-to-end id": matching on it would pair
# unrelated payments, so it reads as no id at all.
_NOT_PROVIDED: Final = "NOTPROVIDED"
# By value, without the Enum call's cost: a big statement reads 300,000 of these.
_STATUSES: Final = {s.value: s for s in EntryStatus}


def parse_camt(data: bytes, kinds: frozenset[str]) -> list[Statement]:
    """Parse camt.053 and/or camt.054 (`kinds` is a subset of {"053", "054"}): every
    statement, or the first fault raised."""
    return statements_from_tree(parse_xml(data), kinds).strict()


def statements_from_tree(root: Element, kinds: frozenset[str]) -> ParsedFile:
    """Read an already defused-parsed document; the namespace decides 053 or 054. Each
    statement is read or refused with its reason; a fault in the document refuses it whole."""
    with collector_paused():  # the tree's millions of elements: see ledger/collector.py
        return _statements(root, kinds)


def _statements(root: Element, kinds: frozenset[str]) -> ParsedFile:
    kind, version, doc = _identify(root, kinds)
    message = _MESSAGES[kind]
    body_name, item_name = message.body, message.item
    body = doc.find(doc.kids(root), body_name)
    if body is None:
        raise StatementRejected(f"missing {body_name}", field="Document")
    in_body = doc.kids(body)
    _check_counts(doc, body, in_body, item_name)
    header = _Header(
        format=f"camt.{kind}.001.{version:02d}",
        message_id=doc.required(in_body, "GrpHdr/MsgId", ""),
        created_at=datetime_of(doc.text(in_body, "GrpHdr/CreDtTm", ""), "GrpHdr/CreDtTm"))
    items = doc.findall(in_body, item_name)
    if not items:
        raise StatementRejected(f"no {item_name} in the file", field=body_name)
    return ParsedFile(header.format, tuple(
        _read(doc, item, f"{item_name}[{i}]", header, message)
        for i, item in enumerate(items, 1)))


def _read(doc: Doc, item: Element, where: str, header: _Header,
          message: _Message) -> Statement | RefusedStatement:
    try:
        return _statement(doc, item, where, header, message)
    except StatementRejected as exc:
        kids = doc.kids(item)
        account = doc.text(kids, "Acct/Id/IBAN", where) or doc.text(kids, "Acct/Id/Othr/Id",
                                                                     where)
        return refused(where, exc, account, doc.text(kids, "Id", where))


@dataclass(frozen=True, slots=True)
class _Header:
    format: str
    message_id: str
    created_at: datetime | None


def _identify(root: Element, kinds: frozenset[str]) -> tuple[str, int, Doc]:
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
    return match["kind"], version, Doc(ns)


def _check_counts(doc: Doc, body: Element, in_body: Kids, item_name: str) -> None:
    entries = len(doc.findall(in_body, f"{item_name}/Ntry"))
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
def _statement(doc: Doc, item: Element, where: str, header: _Header,
               message: _Message) -> Statement:
    kids = doc.kids(item)
    wanted = (*_OPENING_CODES, *message.closing_codes) if message.closing_codes else ()
    balances = _balances(doc, kids, where, wanted)
    currency = _account_currency(doc, kids, where, balances)
    for code, balance in balances.items():
        if balance.currency != currency:
            raise StatementRejected(
                f"{code} balance is in {balance.currency}, the account in {currency}",
                field=f"{balance.path}/Amt")
    opening = next((balances[c] for c in _OPENING_CODES if c in balances), None)
    closing = next((balances[c] for c in message.closing_codes if c in balances), None)
    reader = _EntryReader(doc, currency)
    entries = tuple(reader.entry(doc.kids(ntry), f"{where}/Ntry[{i}]")
                    for i, ntry in enumerate(doc.findall(kids, "Ntry"), 1))
    statement = Statement(
        format=header.format,
        message_id=header.message_id,
        statement_id=doc.required(kids, "Id", where),
        account=_account_id(doc, kids, "Acct", where, required=True) or "",
        currency=currency,
        opening_booked_fen=opening.signed_fen if opening else None,
        closing_booked_fen=closing.signed_fen if closing else None,
        closing_date=closing.date if closing else None,
        created_at=datetime_of(doc.text(kids, "CreDtTm", where), f"{where}/CreDtTm")
        or header.created_at,
        entries=entries, kind=message.kind, opening_date=opening.date if opening else None,
        position=where)
    check_balances(statement, field=f"{where}/Bal")
    return statement


@dataclass(frozen=True, slots=True)
class _Balance:
    path: str
    signed_fen: int
    currency: str
    date: date


def _balances(doc: Doc, kids: Kids, where: str, wanted: tuple[str, ...]
              ) -> dict[str, _Balance]:
    """The balances of the `wanted` type codes (opening and closing booked), by code; the
    others (available, forward, information, a proprietary type) are not needed."""
    found: dict[str, _Balance] = {}
    for i, element in enumerate(doc.findall(kids, "Bal"), 1):
        path = f"{where}/Bal[{i}]"
        bal = doc.kids(element)
        code = doc.text(bal, "Tp/CdOrPrtry/Cd", path)  # None for a proprietary type
        if code not in wanted:
            continue
        if code in found:
            raise StatementRejected(f"a second {code} balance", field=f"{path}/Tp")
        fen, currency = _amount(doc, bal, "Amt", path, allow_zero=True)
        sign = direction_of(doc.required(bal, "CdtDbtInd", path), path)
        when = _date_choice(doc, bal, "Dt", path)
        if when is None:
            raise StatementRejected("missing Dt", field=f"{path}/Dt")
        found[code] = _Balance(path, fen if sign is Direction.credit else -fen, currency, when)
    return found


def _account_currency(doc: Doc, kids: Kids, where: str,
                      balances: dict[str, _Balance]) -> str:
    """Acct/Ccy when the bank gives it (it is optional); else the balances' or first entry's."""
    given = doc.text(kids, "Acct/Ccy", where)
    if given is not None:
        return currency_of(given, f"{where}/Acct/Ccy")
    for balance in balances.values():
        return balance.currency
    first = doc.find(kids, "Ntry/Amt")
    if first is not None:
        return currency_of(first.get("Ccy", ""), f"{where}/Ntry[1]/Amt/@Ccy")
    raise StatementRejected("cannot tell the account currency: give Acct/Ccy",
                            field=f"{where}/Acct/Ccy")


def _account_id(doc: Doc, kids: Kids, path: str, where: str, *,
                required: bool = False) -> str | None:
    """An account's IBAN, or else its other identification (Othr/Id)."""
    value = doc.text(kids, f"{path}/Id/IBAN", where) \
        or doc.text(kids, f"{path}/Id/Othr/Id", where)
    if value is None and required:
        raise StatementRejected("missing account identification (Id/IBAN or Id/Othr/Id)",
                                field=path_join(where, f"{path}/Id"))
    return value


# --- entries and their details -------------------------------------------------------------
class _EntryReader:
    """Reads one statement's entries: through its document, every amount held to the
    account's currency. One per statement, not a value per entry: an entry's own facts go
    from method to method as arguments, so reading one allocates nothing more."""

    __slots__ = ("currency", "doc")

    def __init__(self, doc: Doc, currency: str) -> None:
        self.doc, self.currency = doc, currency

    def entry(self, ntry: Kids, where: str) -> StatementEntry:
        doc = self.doc
        fen, entry_currency = _amount(doc, ntry, "Amt", where, allow_zero=True)
        same_currency(entry_currency, self.currency, where, "Amt")
        direction = direction_of(doc.required(ntry, "CdtDbtInd", where), where)
        reversal = reversal_of(doc.text(ntry, "RvslInd", where), where)
        # A zero-amount entry (a fee waived, a returned nothing) moves no money: it is kept
        # as information rather than refusing its statement.
        status = _status(doc, ntry, where) if fen else EntryStatus.info
        booked_on = _date_choice(doc, ntry, "BookgDt", where)
        valued_on = _date_choice(doc, ntry, "ValDt", where)
        bank_reference = doc.text(ntry, "AcctSvcrRef", where)
        return StatementEntry(where, fen, direction, status, booked_on, valued_on, reversal,
                              bank_reference,
                              self.details(ntry, where, fen, direction, reversal),
                              doc.text(ntry, "AddtlNtryInf", where))

    def details(self, ntry: Kids, where: str, entry_fen: int, direction: Direction,
                reversal: bool) -> tuple[TxDetail, ...]:
        """The entry's TxDtls, across every NtryDtls. A batch's details must add up to the
        entry: one that does not has lost a transaction, or nets charges or mixed directions
        that we cannot attribute, and is refused rather than half-matched. A batch none of
        whose details gives an amount (banks that list a batch's payers without splitting
        it) is one detail of the entry's amount: see `_merged`."""
        doc = self.doc
        blocks = ntry.get(doc.tag("NtryDtls"))
        if blocks is None:
            return ()
        tx_tag = doc.tag("TxDtls")
        located = [(f"{where}/NtryDtls[{i}]/TxDtls[{j}]", doc.kids(tx))
                   for i, block in enumerate(blocks, 1)
                   for j, tx in enumerate(block.findall(tx_tag), 1)]
        given = [_detail_amount(doc, tx, path, self.currency) for path, tx in located]
        amounts = [fen for fen in given if fen is not None]
        if len(amounts) < len(given):
            if len(given) == 1:  # a lone detail is the whole entry
                amounts = [entry_fen]
            elif not amounts:
                return (_merged([self.detail(tx, path, 0, direction, reversal)
                                 for path, tx in located], entry_fen),)
            else:
                raise StatementRejected(
                    "each transaction detail of a batched entry must give its amount (Amt "
                    "or AmtDtls/TxAmt/Amt) when any of them does",
                    field=f"{located[given.index(None)][0]}/Amt")
        details = tuple([self.detail(tx, path, fen, direction, reversal)
                         for (path, tx), fen in zip(located, amounts, strict=True)])
        total_fen = sum([d.amount_fen for d in details])
        if details and total_fen != entry_fen:
            raise StatementRejected(
                f"the {len(details)} transaction details add up to {total_fen} fen, the entry "
                f"is {entry_fen} fen", field=f"{where}/NtryDtls")
        return details

    def detail(self, tx: Kids, where: str, fen: int, direction: Direction,
               reversal: bool) -> TxDetail:
        doc = self.doc
        detail_direction = doc.text(tx, "CdtDbtInd", where)
        if detail_direction is not None and \
                direction_of(detail_direction, where) is not direction:
            raise StatementRejected("a transaction detail against its entry's direction (a "
                                    "netted batch) is not supported",
                                    field=f"{where}/CdtDbtInd")
        # The counterparty is the other side of the original payment: its debtor for money
        # in, its creditor for money out, and the reverse for a reversal of either.
        original_credit = (direction is Direction.credit) != reversal
        # One Refs (the schema allows no more): its children looked up once, not per path.
        refs_found = tx.get(doc.tag("Refs"))
        refs = doc.kids(refs_found[0]) if refs_found else {}
        end_to_end_id = doc.text(refs, "EndToEndId", where)
        creditor_reference = _first_text(doc, tx, "RmtInf/Strd/CdtrRefInf/Ref", where)
        # Banks that give no Ustrd often put the payment's description in AddtlTxInf (ABN
        # AMRO, the Swiss banks): it is the remittance text then. With a Ustrd it is the
        # bank's own note, mostly a copy, and not kept.
        remittance = _joined_text(doc, tx, "RmtInf/Ustrd", where) \
            or doc.text(tx, "AddtlTxInf", where)
        name, account = _counterparty(doc, tx, where, "Dbtr" if original_credit else "Cdtr")
        return TxDetail(fen, None if end_to_end_id == _NOT_PROVIDED else end_to_end_id,
                        creditor_reference, remittance, name, account,
                        doc.text(refs, "AcctSvcrRef", where), doc.text(refs, "UETR", where))


def _counterparty(doc: Doc, tx: Kids, where: str, side: str) -> tuple[str | None, str | None]:
    """The name and account of the party on `side` (Dbtr or Cdtr), as far as given."""
    if not doc.has(tx, "RltdPties"):
        return None, None
    name = doc.text(tx, f"RltdPties/{side}/Nm", where) \
        or doc.text(tx, f"RltdPties/{side}/Pty/Nm", where)
    return name, _account_id(doc, tx, f"RltdPties/{side}Acct", where)


def _detail_amount(doc: Doc, tx: Kids, where: str, currency: str) -> int | None:
    """The detail's amount in the account's currency, or None where it gives none."""
    for path in ("Amt", "AmtDtls/TxAmt/Amt"):
        node = doc.find(tx, path)
        if node is not None:
            fen, detail_currency = amount_of(node, where, path, allow_zero=True)
            same_currency(detail_currency, currency, where, path)
            return fen
    return None


def _merged(details: list[TxDetail], amount_fen: int) -> TxDetail:
    """The details of a batch that gives no amounts, as one detail of the entry's amount.

    A reference all of them share is kept (it still matches); references that differ
    cannot each be matched to an amount, so they are not kept as references but listed in
    the remittance text, with every detail's own text, so nothing the bank said is lost.
    """
    def one(values: list[str | None]) -> str | None:
        distinct = list(dict.fromkeys(v for v in values if v))
        return distinct[0] if len(distinct) == 1 else None

    def listed(values: list[str | None]) -> list[str]:
        distinct = list(dict.fromkeys(v for v in values if v))
        return distinct if len(distinct) > 1 else []

    e2e = [d.end_to_end_id for d in details]
    cref = [d.creditor_reference for d in details]
    texts = [*dict.fromkeys(d.remittance_unstructured for d in details
                            if d.remittance_unstructured)]
    references = [*listed(e2e), *listed(cref)]
    if references:
        texts.append("references: " + ", ".join(references))
    return TxDetail(amount_fen, one(e2e), one(cref), _clipped("; ".join(texts)),
                    one([d.counterparty_name for d in details]),
                    one([d.counterparty_account for d in details]),
                    one([d.bank_reference for d in details]),
                    one([d.uetr for d in details]))


def _clipped(text: str) -> str | None:
    """Joined text within the bound on one text: a batch of hundreds of payers' notes is
    cut, saying so, rather than refusing the statement."""
    if not text:
        return None
    limit = limits.statement_text_chars_max
    marker = " ... (cut)"
    return text if len(text) <= limit else text[:limit - len(marker)] + marker


def _status(doc: Doc, ntry: Kids, where: str) -> EntryStatus:
    """`<Sts>BOOK</Sts>` up to v06, `<Sts><Cd>BOOK</Cd></Sts>` from v07; either is read."""
    sts = doc.find(ntry, "Sts")
    if sts is None:
        raise StatementRejected("missing Sts", field=f"{where}/Sts")
    if sts.find(doc.tag("Prtry")) is not None:
        raise StatementRejected("a proprietary entry status is not supported",
                                field=f"{where}/Sts/Prtry")
    nested = sts.find(doc.tag("Cd"))
    code = bounded((nested if nested is not None else sts).text, where, "Sts") or ""
    status = _STATUSES.get(code)
    if status is None:
        raise StatementRejected(f"entry status {code!r} is not BOOK, PDNG or INFO",
                                field=f"{where}/Sts")
    return status


# --- leaf values ---------------------------------------------------------------------------
def _amount(doc: Doc, kids: Kids, path: str, where: str,
             *, allow_zero: bool = False) -> tuple[int, str]:
    """An amount in fen with its currency (the Ccy attribute); only a balance may be zero."""
    node = doc.find(kids, path)
    if node is None:
        raise StatementRejected(f"missing {path}", field=path_join(where, path))
    return amount_of(node, where, path, allow_zero=allow_zero)


def _date_choice(doc: Doc, kids: Kids, path: str, where: str) -> date | None:
    """A DateAndDateTimeChoice: `<X><Dt>` or `<X><DtTm>`; None when `<X>` is absent."""
    if not doc.has(kids, path):
        return None
    day = doc.text(kids, f"{path}/Dt", where)
    if day is not None:
        found = day_of(day)
        if found is None:
            raise StatementRejected(f"{day!r} is not a date (YYYY-MM-DD)",
                                    field=path_join(where, f"{path}/Dt"))
        return found
    moment = datetime_of(doc.text(kids, f"{path}/DtTm", where), path_join(where, f"{path}/DtTm"))
    if moment is None:
        raise StatementRejected("needs Dt or DtTm", field=path_join(where, path))
    return moment.date()


def _first_text(doc: Doc, kids: Kids, path: str, where: str) -> str | None:
    first = doc.find(kids, path)
    if first is None:
        return None
    value = bounded(first.text, where, path)
    if value:  # the first match in document order is what the loop below would return
        return value
    for node in doc.findall(kids, path):
        value = bounded(node.text, where, path)
        if value:
            return value
    return None


def _joined_text(doc: Doc, kids: Kids, path: str, where: str) -> str | None:
    """Repeated text elements (Ustrd) joined with a space, under the same bound as one."""
    parts = [part for node in doc.findall(kids, path)
             if (part := bounded(node.text, where, path))]
    return bounded(" ".join(parts), where, path) if parts else None


