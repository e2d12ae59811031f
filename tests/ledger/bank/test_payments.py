"""pain.001.001.09 and the payment CSV: structure read back, counts and sums, refusals."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml import ElementTree as DefusedElementTree

from ledger import limits as core_limits
from ledger.bank import limits
from ledger.bank.amounts import fen_from_text
from ledger.bank.payments import (
    PAIN001_NAMESPACE,
    PAYMENT_CSV_COLUMNS,
    PaymentInstruction,
    build_pain001,
    build_payment_csv,
    is_iban,
)
from ledger.errors import InvalidInput

NS = {"p": PAIN001_NAMESPACE}
CREATED = datetime(2024, 3, 8, 9, 30, tzinfo=timezone(timedelta(hours=8)))
CUSTODY = "6226090000000048"


def _instruction(n: int, **changes: Any) -> PaymentInstruction:
    base = PaymentInstruction(
        end_to_end_id=f"REL-{n:04d}", amount_fen=10_000 * n + 1, currency="CNY",
        debtor_account=CUSTODY, debtor_name="朝阳预付资金存管专户", creditor_name=f"商户{n}",
        creditor_account=f"622202000000{n:04d}", remittance=f"Release week 10 merchant {n}",
        requested_date=date(2024, 3, 11))
    return dataclasses.replace(base, **changes)


def _pain(instructions: list[PaymentInstruction]) -> Element:
    xml = build_pain001(instructions, message_id="YF-20240308-01", created_at=CREATED,
                        initiating_party="Yufu custody platform")
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root: Element = DefusedElementTree.fromstring(xml, forbid_dtd=True, forbid_entities=True,
                                                  forbid_external=True)
    return root


def _text(el: Element, path: str) -> str:
    value = el.findtext(path, namespaces=NS)
    assert value is not None, path
    return value


def test_the_message_parses_back_with_header_counts_and_sums() -> None:
    instructions = [_instruction(n) for n in (1, 2, 3)]
    root = _pain(instructions)
    assert root.tag == f"{{{PAIN001_NAMESPACE}}}Document"
    header = "p:CstmrCdtTrfInitn/p:GrpHdr"
    assert _text(root, f"{header}/p:MsgId") == "YF-20240308-01"
    assert _text(root, f"{header}/p:CreDtTm") == "2024-03-08T09:30:00+08:00"
    assert _text(root, f"{header}/p:NbOfTxs") == "3"
    assert _text(root, f"{header}/p:CtrlSum") == "600.03"
    assert _text(root, f"{header}/p:InitgPty/p:Nm") == "Yufu custody platform"
    [info] = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert _text(info, "p:PmtInfId") == "YF-20240308-01-1"
    assert _text(info, "p:PmtMtd") == "TRF"
    assert (_text(info, "p:NbOfTxs"), _text(info, "p:CtrlSum")) == ("3", "600.03")
    assert _text(info, "p:ReqdExctnDt/p:Dt") == "2024-03-11"
    assert _text(info, "p:Dbtr/p:Nm") == "朝阳预付资金存管专户"
    assert _text(info, "p:DbtrAcct/p:Id/p:Othr/p:Id") == CUSTODY
    assert _text(info, "p:DbtrAgt/p:FinInstnId/p:Othr/p:Id") == "NOTPROVIDED"
    transfers = info.findall("p:CdtTrfTxInf", NS)
    ids = [_text(t, "p:PmtId/p:EndToEndId") for t in transfers]
    assert ids == ["REL-0001", "REL-0002", "REL-0003"] and len(set(ids)) == len(ids)
    first = transfers[0]
    amount = first.find("p:Amt/p:InstdAmt", NS)
    assert amount is not None and (amount.text, amount.get("Ccy")) == ("100.01", "CNY")
    assert _text(first, "p:Cdtr/p:Nm") == "商户1"
    assert _text(first, "p:CdtrAcct/p:Id/p:Othr/p:Id") == "6222020000000001"
    assert _text(first, "p:RmtInf/p:Ustrd") == "Release week 10 merchant 1"


def test_elements_come_in_the_schema_order() -> None:
    info = _pain([_instruction(1, creditor_agent_bic="ICBKCNBJBJM")]).find(
        "p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert info is not None
    local = [child.tag.split("}")[1] for child in info]
    assert local == ["PmtInfId", "PmtMtd", "BtchBookg", "NbOfTxs", "CtrlSum", "ReqdExctnDt",
                     "Dbtr", "DbtrAcct", "DbtrAgt", "CdtTrfTxInf"]
    transfer = info.find("p:CdtTrfTxInf", NS)
    assert transfer is not None
    assert [c.tag.split("}")[1] for c in transfer] == ["PmtId", "Amt", "CdtrAgt", "Cdtr",
                                                       "CdtrAcct", "RmtInf"]


def test_one_payment_information_per_debtor_and_date() -> None:
    instructions = [
        _instruction(1), _instruction(2, requested_date=date(2024, 3, 12)),
        _instruction(3), _instruction(4, debtor_account="6226090000000055"),
    ]
    infos = _pain(instructions).findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert [_text(i, "p:PmtInfId") for i in infos] == [
        "YF-20240308-01-1", "YF-20240308-01-2", "YF-20240308-01-3"]
    assert [_text(i, "p:NbOfTxs") for i in infos] == ["2", "1", "1"]
    assert [fen_from_text(_text(i, "p:CtrlSum")) for i in infos] == [40002, 20001, 40001]


def test_an_iban_and_bics_are_written_as_such() -> None:
    root = _pain([_instruction(1, creditor_account="DE89370400440532013000",
                               creditor_agent_bic="COBADEFFXXX", debtor_agent_bic="CMBCCNBS",
                               remittance="")])
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert info is not None
    assert _text(info, "p:DbtrAgt/p:FinInstnId/p:BICFI") == "CMBCCNBS"
    assert _text(info, "p:CdtTrfTxInf/p:CdtrAgt/p:FinInstnId/p:BICFI") == "COBADEFFXXX"
    assert _text(info, "p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN") == "DE89370400440532013000"
    assert info.find("p:CdtTrfTxInf/p:RmtInf", NS) is None  # no remittance, no element


def test_the_same_input_gives_the_same_bytes() -> None:
    instructions = [_instruction(1), _instruction(2)]
    assert build_pain001(instructions, message_id="M", created_at=CREATED,
                         initiating_party="Y") == build_pain001(
        instructions, message_id="M", created_at=CREATED, initiating_party="Y")


def test_markup_in_names_is_escaped_not_interpreted() -> None:
    root = _pain([_instruction(1, creditor_name='<x>&"Co"</x>', remittance="a & b < c")])
    assert _text(root, ".//p:Cdtr/p:Nm") == '<x>&"Co"</x>'
    assert _text(root, ".//p:RmtInf/p:Ustrd") == "a & b < c"


@pytest.mark.parametrize(("changes", "field", "says"), [
    ({"end_to_end_id": "E" * 36}, "instructions[1].end_to_end_id", "at most 35"),
    ({"end_to_end_id": ""}, "instructions[1].end_to_end_id", "non-empty"),
    ({"end_to_end_id": " REL-1"}, "instructions[1].end_to_end_id", "whitespace"),
    ({"end_to_end_id": "NOTPROVIDED"}, "instructions[1].end_to_end_id", "real id"),
    ({"end_to_end_id": "REL-0001"}, "instructions[1].end_to_end_id", "duplicates instructions[0]"),
    ({"amount_fen": 0}, "instructions[1].amount_fen", "must not be zero"),
    ({"amount_fen": -5}, "instructions[1].amount_fen", "must be positive"),
    ({"amount_fen": core_limits.amount_fen_max + 1}, "instructions[1].amount_fen", "at most"),
    ({"currency": "USD"}, "instructions[1].currency", "one currency per file"),
    ({"currency": "JPY"}, "instructions[1].currency", "two minor digits"),
    ({"currency": "cny"}, "instructions[1].currency", "ISO 4217"),
    ({"creditor_name": "x" * 141}, "instructions[1].creditor_name", "at most 140"),
    ({"creditor_name": "a\x00b"}, "instructions[1].creditor_name", "control characters"),
    ({"remittance": "r" * 141}, "instructions[1].remittance", "at most 140"),
    ({"creditor_account": "6222 0200"}, "instructions[1].creditor_account", "no spaces"),
    ({"creditor_account": "1" * 35}, "instructions[1].creditor_account", "1 to 34"),
    ({"creditor_agent_bic": "ICBK"}, "instructions[1].creditor_agent_bic", "BIC"),
    ({"requested_date": datetime(2024, 3, 11)}, "instructions[1].requested_date", "a date"),
])
def test_a_bad_instruction_is_refused_naming_its_field(changes: dict[str, Any], field: str,
                                                       says: str) -> None:
    instructions = [_instruction(1), _instruction(2, **changes)]
    for build in (lambda: _pain(instructions), lambda: build_payment_csv(instructions)):
        with pytest.raises(InvalidInput) as caught:
            build()
        assert caught.value.field == field
        assert says in caught.value.detail


def test_message_level_refusals() -> None:
    with pytest.raises(InvalidInput) as caught:
        _pain([])
    assert caught.value.field == "instructions"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"message_id": "M" * 30}, "message_id"), ({"initiating_party": ""}, "initiating_party"),
        ({"created_at": datetime(2024, 3, 8)}, "created_at")]  # naive: no UTC offset
    for kwargs, field in cases:
        arguments: dict[str, Any] = {"message_id": "M", "created_at": CREATED,
                                     "initiating_party": "Y"} | kwargs
        with pytest.raises(InvalidInput) as caught:
            build_pain001([_instruction(1)], **arguments)
        assert caught.value.field == field


def test_too_many_instructions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "payment_instructions_max", 2)
    with pytest.raises(InvalidInput, match="1 to 2 instructions"):
        build_payment_csv([_instruction(n) for n in (1, 2, 3)])


def test_the_csv_has_a_header_and_one_row_per_instruction() -> None:
    data = build_payment_csv([_instruction(1), _instruction(2, remittance='say "hi", ok')])
    assert data.startswith(b"end_to_end_id,")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert rows[0] == list(PAYMENT_CSV_COLUMNS)
    assert [dict(zip(rows[0], row, strict=True))["amount"] for row in rows[1:]] == [
        "100.01", "200.01"]
    assert rows[2][-1] == 'say "hi", ok'
    assert rows[1][3] == "朝阳预付资金存管专户"


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_a_csv_cell_that_a_spreadsheet_would_run_is_refused(start: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_payment_csv([_instruction(1, creditor_name=f"{start}HYPERLINK(\"x\")")])
    assert caught.value.field == "instructions[0].creditor_name"


def test_iban_check_digits() -> None:
    assert is_iban("DE89370400440532013000")
    assert is_iban("GB82WEST12345698765432")
    assert not is_iban("DE89370400440532013001")
    assert not is_iban("6226090000000048")
