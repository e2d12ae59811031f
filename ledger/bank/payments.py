"""Payment files to the partner bank: ISO 20022 pain.001.001.09 and a plain CSV.

Release and refund instructions (DOMAIN.md flows 5 to 7) go to the bank as one of these; the
bank's statement later confirms each by its EndToEndId. Pure: instructions in, bytes out; the
message id and creation time come from the caller, so the same input gives the same bytes.

Built with xml.etree rather than the `pyiso20022` bindings: those pull in xsdata (which their
package does not even declare), and the subset we write is twenty elements whose order is
fixed below, checked by parsing the output back in tests.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from xml.etree import ElementTree as ET

from ledger.bank import limits
from ledger.bank.amounts import AmountFormatError, check_currency_code, text_from_fen
from ledger.errors import InvalidInput
from ledger.money import check_amount, check_currency

PAIN001_NAMESPACE: Final = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
# ISO 20022 text types: Max35Text for identifiers, Max140Text for names and remittance,
# Max34Text for an account's other identification (an IBAN is at most 34 too).
iso_id_chars_max: Final = 35
iso_text_chars_max: Final = 140
iso_account_chars_max: Final = 34
# DecimalNumber (CtrlSum) has at most 18 digits: 16 before the point and 2 after, in fen terms.
control_sum_fen_max: Final = 10**18 - 1
# What ISO 20022 writes when an id is missing; statement parsing reads it as "no id", so a
# payment carrying it could never be matched.
_NOT_PROVIDED: Final = "NOTPROVIDED"
_ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9]{1,34}")
_IBAN_RE: Final = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC_RE: Final = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
# Characters XML 1.0 cannot carry, and C0 controls that have no place in a name or reference.
_ILLEGAL_TEXT_RE: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# A CSV cell starting with one of these is a formula to a spreadsheet: refused, not escaped,
# because quietly changing a payee name in a payment file is worse than asking.
_FORMULA_STARTS: Final = ("=", "+", "-", "@")
_XML_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'

PAYMENT_CSV_COLUMNS: Final = (
    "end_to_end_id", "requested_date", "debtor_account", "debtor_name", "debtor_agent_bic",
    "creditor_account", "creditor_name", "creditor_agent_bic", "currency", "amount",
    "remittance")


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One credit transfer out of custody. The agents' BICs are optional: without one the
    debtor agent is written as `Othr/Id NOTPROVIDED` and the creditor agent is left out."""

    end_to_end_id: str
    amount_fen: int
    currency: str
    debtor_account: str
    debtor_name: str
    creditor_name: str
    creditor_account: str
    remittance: str
    requested_date: date
    debtor_agent_bic: str | None = None
    creditor_agent_bic: str | None = None


def check_instructions(instructions: Sequence[PaymentInstruction]) -> None:
    """Refuse, naming `instructions[i].field`, anything the bank would reject or we could
    not match back: long or duplicate end-to-end ids, mixed currencies, bad accounts."""
    if not 1 <= len(instructions) <= limits.payment_instructions_max:
        raise InvalidInput(f"must hold 1 to {limits.payment_instructions_max} instructions",
                           field="instructions")
    first_seen: dict[str, int] = {}
    for i, instruction in enumerate(instructions):
        where = f"instructions[{i}]"
        _check_instruction(instruction, where)
        if instruction.currency != instructions[0].currency:
            raise InvalidInput(f"{instruction.currency} differs from instructions[0]'s "
                               f"{instructions[0].currency}: one currency per file",
                               field=f"{where}.currency")
        earlier = first_seen.setdefault(instruction.end_to_end_id, i)
        if earlier != i:
            raise InvalidInput(f"duplicates instructions[{earlier}].end_to_end_id",
                               field=f"{where}.end_to_end_id")
    if control_sum_fen(instructions) > control_sum_fen_max:
        raise InvalidInput("the control sum exceeds 18 digits: split the file",
                           field="instructions")


def control_sum_fen(instructions: Sequence[PaymentInstruction]) -> int:
    return sum(instruction.amount_fen for instruction in instructions)


# --- pain.001.001.09 -----------------------------------------------------------------------
def build_pain001(instructions: Sequence[PaymentInstruction], *, message_id: str,
                  created_at: datetime, initiating_party: str) -> bytes:
    """CustomerCreditTransferInitiationV09: one PmtInf per debtor account and requested date,
    in order of first appearance, each with its CdtTrfTxInf in input order."""
    check_instructions(instructions)
    _check_text(message_id, "message_id", limits.payment_message_id_chars_max)
    _check_text(initiating_party, "initiating_party", iso_text_chars_max)
    if created_at.utcoffset() is None:
        raise InvalidInput("must carry a UTC offset: the bank reads it in its own zone "
                           "otherwise", field="created_at")
    # Unqualified names under a default namespace declared by hand: ElementTree's
    # default_namespace option refuses the unqualified Ccy attribute that pain.001 needs.
    document = ET.Element("Document", xmlns=PAIN001_NAMESPACE)
    initiation = _sub(document, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", message_id)
    _sub(header, "CreDtTm", created_at.isoformat(timespec="seconds"))
    _sub(header, "NbOfTxs", str(len(instructions)))
    _sub(header, "CtrlSum", text_from_fen(control_sum_fen(instructions)))
    _sub(_sub(header, "InitgPty"), "Nm", initiating_party)
    for n, group in enumerate(_payment_groups(instructions), 1):
        _payment_information(initiation, f"{message_id}-{n}", group)
    ET.indent(document)
    # The declaration by hand: ElementTree's own uses single quotes, which some bank
    # gateways' hand-rolled checks do not accept.
    return _XML_DECLARATION + ET.tostring(document, encoding="unicode").encode("utf-8")


def _payment_groups(
        instructions: Sequence[PaymentInstruction]) -> list[list[PaymentInstruction]]:
    groups: dict[tuple[str, str, str | None, date], list[PaymentInstruction]] = {}
    for instruction in instructions:
        key = (instruction.debtor_account, instruction.debtor_name,
               instruction.debtor_agent_bic, instruction.requested_date)
        groups.setdefault(key, []).append(instruction)
    return list(groups.values())


def _payment_information(parent: ET.Element, payment_id: str,
                         group: list[PaymentInstruction]) -> None:
    first = group[0]
    info = _sub(parent, "PmtInf")
    _sub(info, "PmtInfId", payment_id)
    _sub(info, "PmtMtd", "TRF")
    # One statement entry per transfer rather than one for the batch, so each release or refund
    # is confirmed by its own line on the statement.
    _sub(info, "BtchBookg", "false")
    _sub(info, "NbOfTxs", str(len(group)))
    _sub(info, "CtrlSum", text_from_fen(control_sum_fen(group)))
    _sub(_sub(info, "ReqdExctnDt"), "Dt", first.requested_date.isoformat())
    _sub(_sub(info, "Dbtr"), "Nm", first.debtor_name)
    _account(_sub(info, "DbtrAcct"), first.debtor_account)
    _agent(_sub(info, "DbtrAgt"), first.debtor_agent_bic)
    for instruction in group:
        _transfer(info, instruction)


def _transfer(parent: ET.Element, instruction: PaymentInstruction) -> None:
    transfer = _sub(parent, "CdtTrfTxInf")
    _sub(_sub(transfer, "PmtId"), "EndToEndId", instruction.end_to_end_id)
    amount = _sub(_sub(transfer, "Amt"), "InstdAmt", text_from_fen(instruction.amount_fen))
    amount.set("Ccy", instruction.currency)
    if instruction.creditor_agent_bic is not None:
        _agent(_sub(transfer, "CdtrAgt"), instruction.creditor_agent_bic)
    _sub(_sub(transfer, "Cdtr"), "Nm", instruction.creditor_name)
    _account(_sub(transfer, "CdtrAcct"), instruction.creditor_account)
    if instruction.remittance:
        _sub(_sub(transfer, "RmtInf"), "Ustrd", instruction.remittance)


def _account(parent: ET.Element, account: str) -> None:
    identification = _sub(parent, "Id")
    if is_iban(account):
        _sub(identification, "IBAN", account)
    else:
        _sub(_sub(identification, "Othr"), "Id", account)


def _agent(parent: ET.Element, bic: str | None) -> None:
    institution = _sub(parent, "FinInstnId")
    if bic is None:
        _sub(_sub(institution, "Othr"), "Id", _NOT_PROVIDED)
    else:
        _sub(institution, "BICFI", bic)


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, name)
    element.text = text
    return element


# --- CSV -----------------------------------------------------------------------------------
def build_payment_csv(instructions: Sequence[PaymentInstruction]) -> bytes:
    """UTF-8, CRLF, a header row of `PAYMENT_CSV_COLUMNS`, amounts as "1234.56"."""
    check_instructions(instructions)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PAYMENT_CSV_COLUMNS)
    for i, instruction in enumerate(instructions):
        row = _csv_row(instruction)
        for column, cell in zip(PAYMENT_CSV_COLUMNS, row, strict=True):
            if cell.startswith(_FORMULA_STARTS):
                raise InvalidInput("must not start with =, +, - or @ in a CSV payment file",
                                   field=f"instructions[{i}].{column}")
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def _csv_row(instruction: PaymentInstruction) -> list[str]:
    return [
        instruction.end_to_end_id, instruction.requested_date.isoformat(),
        instruction.debtor_account, instruction.debtor_name, instruction.debtor_agent_bic or "",
        instruction.creditor_account, instruction.creditor_name,
        instruction.creditor_agent_bic or "", instruction.currency,
        text_from_fen(instruction.amount_fen), instruction.remittance]


# --- checks --------------------------------------------------------------------------------
def is_iban(account: str) -> bool:
    """ISO 13616: the shape, and the mod-97 check over the rearranged digits."""
    if not _IBAN_RE.fullmatch(account):
        return False
    rearranged = account[4:] + account[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _check_instruction(instruction: PaymentInstruction, where: str) -> None:
    _check_text(instruction.end_to_end_id, f"{where}.end_to_end_id", iso_id_chars_max)
    if instruction.end_to_end_id == _NOT_PROVIDED:
        raise InvalidInput("NOTPROVIDED cannot be matched on a statement: give a real id",
                           field=f"{where}.end_to_end_id")
    check_amount(instruction.amount_fen, f"{where}.amount_fen")
    if type(instruction.requested_date) is not date:  # a datetime would print its time
        raise InvalidInput("must be a date", field=f"{where}.requested_date")
    check_currency(instruction.currency, f"{where}.currency")
    try:
        check_currency_code(instruction.currency)
    except AmountFormatError as exc:
        raise InvalidInput(str(exc), field=f"{where}.currency") from None
    for name in ("debtor_name", "creditor_name"):
        _check_text(getattr(instruction, name), f"{where}.{name}", iso_text_chars_max)
    if instruction.remittance:
        _check_text(instruction.remittance, f"{where}.remittance", iso_text_chars_max)
    for name in ("debtor_account", "creditor_account"):
        if not _ACCOUNT_RE.fullmatch(getattr(instruction, name)):
            raise InvalidInput(f"must be 1 to {iso_account_chars_max} letters and digits "
                               f"(an IBAN or the bank's account number, no spaces)",
                               field=f"{where}.{name}")
    for name in ("debtor_agent_bic", "creditor_agent_bic"):
        bic = getattr(instruction, name)
        if bic is not None and not _BIC_RE.fullmatch(bic):
            raise InvalidInput("must be a BIC (8 or 11 characters)", field=f"{where}.{name}")


def _check_text(value: object, field: str, chars_max: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("must be non-empty text", field=field)
    if len(value) > chars_max:
        raise InvalidInput(f"must be at most {chars_max} characters (ISO 20022)", field=field)
    if value != value.strip():
        raise InvalidInput("must not start or end with whitespace", field=field)
    if _ILLEGAL_TEXT_RE.search(value):
        raise InvalidInput("must not contain control characters", field=field)
