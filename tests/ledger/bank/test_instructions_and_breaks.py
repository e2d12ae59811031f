"""A bank's instruction file (pain.001.001.09, CSV), its answers to each instruction, and an
operator's resolution of a break: each journaled, none twice."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import Engine

from tests.support.bank import instruction
from tests.support.custody import check_custody_identity
from tests.support.db import nothing_imported, row, rows
from tests.support.driver import Banking, Merchant
from tests.support.http import assert_problem
from tests.support.statements import Stmt, camt053, entry

BANK = "BANK-PAY"
SALE_DAY = date(2026, 11, 1)  # a Sunday
DAY = date(2026, 11, 2)  # the Monday that ends the weekly release period
PAIN = "{urn:iso:std:iso:20022:tech:xsd:pain.001.001.09}"


@dataclass(frozen=True)
class Pending:
    m: Merchant
    sale: dict[str, Any]
    release: dict[str, Any]
    refund: dict[str, Any]


@pytest.fixture(scope="module")
def pending(banking: Banking) -> Pending:
    """A release (of a consumed card) and a refund (a cooling-off card), both pending."""
    banking.set_today(SALE_DAY)
    m = banking.merchant(BANK, industry="美容美发")
    sale = banking.sell_at(m, 100_000)
    banking.consume(sale["card_id"], m.key, amount_fen=50_000)
    [release] = banking.run_releases(DAY, m.id)
    refund = banking.refund(m, banking.sell_at(m, 30_000)["card_id"])
    banking.set_today(DAY)
    return Pending(m, sale, release, refund)


def journal_entry(engine: Engine, seq: int) -> tuple[str, dict[str, Any]]:
    """The entry's kind and payload; its actor (checked to be named) left out."""
    found = row(engine, "SELECT kind, body FROM journal_entries WHERE seq = :s", s=seq)
    payload = json.loads(bytes(found["body"]))["payload"]
    assert payload.pop("actor")["role"] in ("operator", "bank", "system"), payload
    return found["kind"], payload


def test_the_bank_downloads_its_pending_instructions_as_pain001_and_csv(
        banking: Banking, pending: Pending) -> None:
    release, refund = pending.release, pending.refund
    expected = {release["end_to_end_id"]: release["amount_fen"],
                refund["end_to_end_id"]: refund["amount_fen"]}
    assert (release["amount_fen"], refund["amount_fen"]) == (18_000, 12_000)

    response = banking.client.get(f"/v1/banks/{BANK}/instructions",
                                  headers=banking.bank(BANK))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    document = ET.fromstring(response.content)
    assert document.tag == f"{PAIN}Document"
    header = document.find(f"{PAIN}CstmrCdtTrfInitn/{PAIN}GrpHdr")
    assert header is not None
    assert (header.findtext(f"{PAIN}NbOfTxs"), header.findtext(f"{PAIN}CtrlSum")) == (
        "2", "300.00")
    transfers = document.iter(f"{PAIN}CdtTrfTxInf")
    found = {t.findtext(f"{PAIN}PmtId/{PAIN}EndToEndId"):
             t.findtext(f"{PAIN}Amt/{PAIN}InstdAmt") for t in transfers}
    assert found == {e2e: f"{fen // 100}.{fen % 100:02d}" for e2e, fen in expected.items()}
    debtors = {a.findtext(f"{PAIN}Id/{PAIN}Othr/{PAIN}Id")
               for a in document.iter(f"{PAIN}DbtrAcct")}
    assert debtors == {pending.m.account}

    listed = banking.client.get(f"/v1/banks/{BANK}/instructions",
                                headers=banking.bank(BANK), params={"format": "csv"})
    assert listed.status_code == 200
    table = list(csv.DictReader(io.StringIO(listed.text)))
    assert {r["end_to_end_id"]: r["amount"] for r in table} == found
    assert {r["debtor_account"] for r in table} == {pending.m.account}


def test_accepting_is_journaled_once_and_rejecting_fails_the_instruction(
        banking: Banking, engine: Engine, pending: Pending) -> None:
    release_e2e, refund_e2e = (pending.release["end_to_end_id"],
                               pending.refund["end_to_end_id"])

    accepted = banking.answer(BANK, release_e2e, "accept", reason="queued for 11-02")

    assert (accepted["end_to_end_id"], accepted["bank_status"]) == (release_e2e, "accepted")
    assert journal_entry(engine, accepted["journal_seq"]) == ("instruction.accepted", {
        "end_to_end_id": release_e2e, "bank_id": BANK, "reason": "queued for 11-02"})
    assert instruction(engine, release_e2e) == ("pending", "accepted")
    with nothing_imported(banking.client, engine):
        again = banking.client.post(f"/v1/banks/{BANK}/instructions/{release_e2e}/accept",
                                    headers=banking.bank(BANK))
        reject_after = banking.client.post(
            f"/v1/banks/{BANK}/instructions/{release_e2e}/reject", headers=banking.bank(BANK))
        unknown = banking.client.post(f"/v1/banks/{BANK}/instructions/YFR999999999999/accept",
                                      headers=banking.bank(BANK))
    assert_problem(again, 409, field="end_to_end_id", code="conflict",
                   detail_has="(accepted by the bank)")
    assert_problem(reject_after, 409, field="end_to_end_id", code="conflict")
    assert_problem(unknown, 404, field="end_to_end_id", code="not_found")

    rejected = banking.answer(BANK, refund_e2e, "reject", reason="account closed")

    assert (rejected["bank_status"], rejected["instruction"]["status"]) == (
        "rejected", "failed")
    assert journal_entry(engine, rejected["journal_seq"])[0] == "instruction.rejected"
    assert journal_entry(engine, rejected["instruction"]["journal_seq"])[0] == "refund.failed"
    assert instruction(engine, refund_e2e) == ("failed", "rejected")
    assert row(engine, "SELECT status FROM cards WHERE id = :c",
               c=pending.refund["card_id"])["status"] == "active"
    assert_problem(banking.client.post(f"/v1/banks/{BANK}/instructions/{refund_e2e}/reject",
                                       headers=banking.bank(BANK)),
                   409, field="end_to_end_id", code="conflict",
                   detail_has="already failed (rejected by the bank)")
    listed = banking.ok("GET", f"/v1/banks/{BANK}/instructions", banking.bank(BANK),
                        params={"format": "json"})["items"]
    assert [i["end_to_end_id"] for i in listed] == [release_e2e]  # accepted, still unpaid
    with engine.connect() as conn:
        assert check_custody_identity(conn, pending.m.id)["refunds_payable"] == 0


def test_a_statement_pays_the_accepted_release_and_a_debit_for_the_rejected_refund_breaks(
        banking: Banking, engine: Engine, pending: Pending) -> None:
    m, release, refund = pending.m, pending.release, pending.refund
    statement = Stmt(m.account, "PAY-1", 0, DAY, (
        entry("CRDT", 40_000, DAY, cref=pending.sale["reference"]),
        entry("DBIT", release["amount_fen"], DAY, e2e=release["end_to_end_id"]),
        entry("DBIT", refund["amount_fen"], DAY, e2e=refund["end_to_end_id"])))

    body = banking.import_file(BANK, camt053([statement]))

    [result] = body["statements"]
    assert result["outcome"] == {"deposit": 1, "payment_settled": 1, "break": 1}
    assert instruction(engine, release["end_to_end_id"]) == ("settled", "accepted")
    [opened] = banking.open_breaks(m)
    assert (opened["kind"], opened["amount_fen"], opened["reason"]) == (
        "unmatched_line", 12_000, "no pending release or refund has this end-to-end id")
    assert result["cross_verification"]["difference_fen"] == -12_000


def test_an_operator_resolves_a_break_once_and_the_resolution_is_journaled(
        banking: Banking, engine: Engine, pending: Pending) -> None:
    [opened] = banking.open_breaks(pending.m)
    banking.set_today(DAY + timedelta(days=5))
    assert [b["age_days"] for b in banking.open_breaks(pending.m)] == [5]
    path = f"/v1/breaks/{opened['id']}/resolve"
    with nothing_imported(banking.client, engine):
        assert_problem(banking.client.post(path, headers=banking.operator,
                                           json={"resolution": "   "}),
                       422, field="resolution", code="invalid_input")
        assert_problem(banking.client.post("/v1/breaks/999999/resolve",
                                           headers=banking.operator,
                                           json={"resolution": "x"}),
                       404, field="break_id", code="not_found")

    resolved = banking.ok("POST", path, banking.operator,
                          {"resolution": "bank recalled the debit on 11-03"})

    assert resolved["status"] == "resolved"
    assert journal_entry(engine, resolved["journal_seq"]) == ("reconciliation.break_resolved", {
        "break_id": opened["id"], "bank_id": BANK,
        "resolution": "bank recalled the debit on 11-03"})
    assert banking.open_breaks(pending.m) == []
    [done] = banking.breaks(merchant_id=pending.m.id, status="resolved")["items"]
    assert (done["status"], done["resolution"], done["resolved_seq"], done["age_days"]) == (
        "resolved", "bank recalled the debit on 11-03", resolved["journal_seq"], 5)
    with nothing_imported(banking.client, engine):
        assert_problem(banking.client.post(path, headers=banking.operator,
                                           json={"resolution": "again"}),
                       409, field="break_id", code="conflict")
    kinds = [r["kind"] for r in rows(engine, "SELECT kind FROM journal_entries "
                                             "WHERE kind LIKE 'reconciliation.%' ORDER BY seq")]
    assert kinds == ["reconciliation.break_opened", "reconciliation.break_resolved"]
