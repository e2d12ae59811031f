"""Who may do what with partner-bank data: a bank works only on its own custody accounts, a
regulator reads and writes nothing, a merchant sees none of it (but its own cross-checks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine

from ledger.auth import Role
from tests.support.bank import instruction
from tests.support.db import issue_key, nothing_imported
from tests.support.driver import Banking, Merchant
from tests.support.http import Headers, assert_problem, bearer
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 2)


@dataclass(frozen=True)
class World:
    m1: Merchant
    m2: Merchant
    refund: dict[str, Any]
    opened: dict[str, Any]  # the break of B1's statement
    regulator: Headers


@pytest.fixture(scope="module")
def world(banking: Banking, engine: Engine) -> World:
    """B1 holds m1's account: a pending refund, an imported statement, a break. B2 holds
    m2's account and has imported nothing."""
    banking.set_today(DAY)
    m1, m2 = banking.merchant("B1"), banking.merchant("B2")
    sale = banking.sell_at(m1, 30_000)
    refund = banking.refund(m1, banking.sell_at(m1, 20_000)["card_id"])
    statement = camt053([Stmt(m1.account, "B1-S1", 0, DAY, (
        entry("CRDT", 30_000, DAY, cref=sale["reference"]),
        entry("CRDT", 777, DAY, cref="PAYER-OWN-REF")))])
    banking.import_file("B1", statement)
    [opened] = banking.open_breaks(m1)
    return World(m1, m2, refund, opened, bearer(issue_key(engine, Role.regulator)))


def test_a_bank_cannot_import_for_another_bank_nor_another_banks_account(
        banking: Banking, engine: Engine, world: World) -> None:
    m1 = world.m1
    statement = camt053([Stmt(m1.account, "B2-TRY", 0, DAY,
                              (entry("CRDT", 100, DAY, cref="X"),))])
    with nothing_imported(banking.client, engine):
        as_other = banking.post_statement("B1", statement, headers=banking.bank("B2"))
        at_own = banking.post_statement("B2", statement, headers=banking.bank("B2"))
    assert_problem(as_other, 403, code="forbidden")
    assert_problem(at_own, 422, field="Stmt[1]", code="statement_rejected",
                   detail_has=f"account {m1.account} is not a custody account held at B2")


def test_a_bank_reads_and_answers_only_its_own_instructions(
        banking: Banking, engine: Engine, world: World) -> None:
    e2e = world.refund["end_to_end_id"]
    b2 = banking.bank("B2")
    for fmt in ("pain001", "csv", "json"):
        assert_problem(banking.client.get("/v1/banks/B1/instructions", headers=b2,
                                          params={"format": fmt}), 403, code="forbidden")
    assert banking.client.get("/v1/banks/B2/instructions", headers=b2).status_code == 204
    with nothing_imported(banking.client, engine):
        for verb in ("accept", "reject"):
            assert_problem(banking.client.post(f"/v1/banks/B1/instructions/{e2e}/{verb}",
                                               headers=b2), 403, code="forbidden")
            # Under its own bank, another bank's instruction answers as a missing one.
            for wanted in (e2e, "YFF999999999999"):
                assert_problem(banking.client.post(
                    f"/v1/banks/B2/instructions/{wanted}/{verb}", headers=b2), 404,
                    field="end_to_end_id", code="not_found",
                    detail_has=f"bank B2 has no instruction with end-to-end id {wanted}")
    assert instruction(engine, e2e) == ("pending", "pending")


def test_a_bank_sees_only_its_own_breaks_and_cross_verifications(
        banking: Banking, world: World) -> None:
    b2 = banking.bank("B2")
    assert_problem(banking.client.get("/v1/breaks", headers=b2, params={"bank_id": "B1"}),
                   403, code="forbidden")
    assert banking.breaks(b2) == {"items": [], "next_after": None, "open": 0,
                                  "by_bank_merchant": []}
    assert banking.ok("GET", "/v1/cross-verifications", b2) == {"items": [], "next_after": None}
    assert_problem(banking.client.get("/v1/cross-verifications", headers=b2,
                                      params={"bank_id": "B1"}), 403, code="forbidden")
    opened = world.opened
    assert [b["id"] for b in banking.breaks(banking.bank("B1"))["items"]] == [opened["id"]]
    assert_problem(banking.client.post(f"/v1/breaks/{opened['id']}/resolve", headers=b2,
                                       json={"resolution": "not mine"}), 403, code="forbidden")


def test_a_regulator_reads_breaks_and_cross_verifications_but_writes_nothing(
        banking: Banking, engine: Engine, world: World) -> None:
    regulator, m1, opened, refund = world.regulator, world.m1, world.opened, world.refund
    breaks = banking.breaks(regulator, bank_id="B1")
    assert ([b["id"] for b in breaks["items"]], breaks["open"]) == ([opened["id"]], 1)
    assert breaks["by_bank_merchant"] == [{"bank_id": "B1", "merchant_id": m1.id, "open": 1,
                                           "amount_fen": 777, "oldest_age_days": 0}]
    [verified] = banking.ok("GET", "/v1/cross-verifications", regulator,
                            params={"merchant_id": m1.id})["items"]
    assert (verified["account"], verified["bank_balance_fen"], verified["ledger_balance_fen"],
            verified["difference_fen"], verified["result"]) == (
        m1.account, 30_777, 30_000, 777, "difference")
    assert banking.client.get("/v1/banks/B1/instructions", headers=regulator,
                              params={"format": "json"}).status_code == 200
    statement = camt053([Stmt(m1.account, "REG-TRY", 0, DAY,
                              (entry("CRDT", 100, DAY, cref="X"),))])
    with nothing_imported(banking.client, engine):
        assert_problem(banking.post_statement("B1", statement, headers=regulator), 403,
                       code="forbidden")
        assert_problem(banking.client.post(
            f"/v1/banks/B1/instructions/{refund['end_to_end_id']}/accept",
            headers=regulator), 403, code="forbidden")
        assert_problem(banking.client.post(f"/v1/breaks/{opened['id']}/resolve",
                                           headers=regulator, json={"resolution": "x"}),
                       403, code="forbidden")


def test_a_merchant_gets_403_on_everything_of_the_bank(
        banking: Banking, engine: Engine, world: World) -> None:
    m1, m2, opened, refund = world.m1, world.m2, world.opened, world.refund
    merchant = m1.key
    statement = camt053([Stmt(m1.account, "M-TRY", 0, DAY,
                              (entry("CRDT", 100, DAY, cref="X"),))])
    e2e = refund["end_to_end_id"]
    with nothing_imported(banking.client, engine):
        refused = [
            banking.post_statement("B1", statement, headers=merchant),
            banking.client.get("/v1/banks/B1/instructions", headers=merchant),
            banking.client.post(f"/v1/banks/B1/instructions/{e2e}/accept", headers=merchant),
            banking.client.post(f"/v1/banks/B1/instructions/{e2e}/reject", headers=merchant),
            banking.client.get("/v1/breaks", headers=merchant),
            banking.client.post(f"/v1/breaks/{opened['id']}/resolve", headers=merchant,
                                json={"resolution": "x"})]
    for response in refused:
        assert_problem(response, 403, code="forbidden")
    # Its own custody account's cross-check is its own data; another merchant's is not.
    [own] = banking.ok("GET", "/v1/cross-verifications", merchant)["items"]
    assert own["merchant_id"] == m1.id
    assert banking.ok("GET", "/v1/cross-verifications", merchant,
                      params={"merchant_id": m2.id}) == {"items": [], "next_after": None}
