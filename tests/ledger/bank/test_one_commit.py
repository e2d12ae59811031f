"""An import, or a bank's answer, in the same group commit as the writes it reads: it sees
them all (its filtered reads are queries, run before its first change), never an answer from
before them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from ledger.auth import Principal, Role
from ledger.db.writer import Outcome
from ledger.flows.instructions import RejectInstruction
from ledger.flows.refunds import RefundCard
from ledger.flows.sales import SellCard
from ledger.flows.statements import ImportStatementFile
from tests.support.bank import deposit, instruction
from tests.support.db import head_seq, run_together
from tests.support.driver import Banking
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 2)
BANK = "BANK-ONE"
OPERATOR = Principal(key_id=0, role=Role.operator)


def answers(results: list[Outcome | BaseException]) -> list[dict[str, object]]:
    assert all(isinstance(r, Outcome) for r in results), results
    return [r.body for r in results if isinstance(r, Outcome)]


def test_a_sale_and_the_statement_that_shows_it_in_one_group_commit(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    earlier = banking.sell_at(m, 10_000)
    reference = f"YFS{head_seq(banking.client) + 1:012d}"  # the next sale's, in the batch
    data = camt053([Stmt(m.account, "ONE-1", 0, DAY, (
        entry("CRDT", 10_000, DAY, cref=earlier["reference"]),
        entry("CRDT", 10_000, DAY, cref=reference)))])

    sale, imported = answers(run_together(
        engine, SellCard(OPERATOR, m.products[10_000], "consumer-one", False, DAY),
        ImportStatementFile(OPERATOR, BANK, "one.xml", data, DAY)))

    assert f"YFS{sale['journal_seq']:012d}" == reference
    [statement] = imported["statements"]  # type: ignore[index]
    assert statement["outcome"] == {"deposit": 2}
    assert statement["cross_verification"]["result"] == "match"
    assert imported["overdue_breaks"] == []
    assert deposit(engine, reference) == ("cleared", 0)
    assert deposit(engine, earlier["reference"]) == ("cleared", 0)
    assert banking.open_breaks(m) == []


def test_a_refund_and_the_banks_rejection_in_one_group_commit(banking: Banking,
                                                              engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    card = banking.sell_at(m, 30_000)["card_id"]
    e2e = f"YFF{head_seq(banking.client) + 1:012d}"  # the refund's, in the batch

    refund, rejected = answers(run_together(
        engine, RefundCard(OPERATOR, card, "balance", DAY),
        RejectInstruction(OPERATOR, BANK, e2e, "account closed")))

    assert refund["end_to_end_id"] == e2e
    assert rejected["bank_status"] == "rejected"
    assert rejected["instruction"]["status"] == "failed"  # type: ignore[index]
    assert instruction(engine, e2e) == ("failed", "rejected")
