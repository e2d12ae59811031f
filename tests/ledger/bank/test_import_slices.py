"""A statement import in slices (ledger/flows/imports.py): the same reconciliation as one
command, whatever the slice; a till's write served between two slices; an import abandoned
between slices, then resumed, applies every line exactly once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from api.app import create_app
from api.jobs import import_slices
from ledger.auth import Principal, Role
from ledger.bank.matching import lines_of
from ledger.bank.model import ParsedFile
from ledger.bank.statements import read_file
from ledger.commands import Command
from ledger.errors import Conflict
from ledger.flows.imports import StageImport, import_steps
from ledger.flows.statements import ImportStatementFile
from ledger.jobs import SliceSizes, run_steps
from tests.support.db import row, rows, run_one
from tests.support.driver import Banking, Merchant
from tests.support.http import wait_done
from tests.support.statements import Stmt, camt053, entry

DAY = date(2026, 11, 2)
BANK = "BANK-SLICES"
OPERATOR = Principal(key_id=0, role=Role.operator)
Importer = Callable[[Engine, bytes], dict[str, Any]]


def one_command(engine: Engine, data: bytes) -> dict[str, Any]:
    return run_one(engine)(ImportStatementFile(OPERATOR, BANK, "s.xml", data, DAY))


def in_slices(slice_lines_max: int) -> Importer:
    def importer(engine: Engine, data: bytes) -> dict[str, Any]:
        stage = StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                            read_file(data, "s.xml"))
        return run_steps(import_steps(stage, slice_lines_max), run_one(engine))
    return importer


def statement_file(banking: Banking) -> tuple[list[Merchant], bytes]:
    """Two merchants' statements of every kind of line: sales credited by reference and by
    amount alone, a refund paid, a reversal of a credit earlier in the file, a line not
    booked, credits and debits nobody expects; and a sale the bank has not shown (overdue)."""
    banking.set_today(DAY)
    m, other = banking.merchant(BANK), banking.merchant(BANK)
    sales = [banking.sell_at(m, price) for price in (10_000, 20_000, 30_000, 40_000, 12_345)]
    refunded = banking.sell_at(m, 50_000)
    refund = banking.refund(m, refunded["card_id"])
    theirs = [banking.sell_at(other, price) for price in (15_000, 25_000)]
    lines = (
        entry("CRDT", 10_000, DAY, cref=sales[0]["reference"]),
        entry("CRDT", 20_000, DAY, cref=sales[1]["reference"]),
        entry("CRDT", 99_999, DAY, cref="YFS999999999999"),
        entry("CRDT", 12_345, DAY),  # no reference: the one sale of its amount
        entry("DBIT", 10_000, DAY, cref=sales[0]["reference"], reversal=True),
        entry("CRDT", 30_000, DAY, cref=sales[2]["reference"], status="PDNG"),
        entry("DBIT", 777, DAY, e2e="NOBODY-EXPECTS-THIS"),
        entry("CRDT", 40_000, DAY, cref=sales[3]["reference"]),
        entry("CRDT", 50_000, DAY, cref=refunded["reference"]),
        # in booking order: the bank pays the refund out of money it holds
        entry("DBIT", refund["amount_fen"], DAY, e2e=refund["end_to_end_id"]))
    later = DAY + timedelta(days=10)  # the sales not credited by then are overdue
    data = camt053([Stmt(m.account, f"S-{m.id}", 0, later, lines),
                    Stmt(other.account, f"S-{other.id}", 0, later, (
                        entry("CRDT", 15_000, DAY, cref=theirs[0]["reference"]),
                        entry("CRDT", 1, DAY)))],
                   message_id=f"SLICES-{m.id}")
    return [m, other], data


def reconciled(engine: Engine, merchants: list[Merchant], answer: dict[str, Any]
               ) -> dict[str, Any]:
    """What an import did, without its ids and sequence numbers (which differ run to run)."""
    ids = [m.id for m in merchants]
    statements = [{key: s[key] for key in ("lines", "deposits_cleared_fen", "outcome")}
                  | {"verified": {key: s["cross_verification"][key] for key in (
                      "bank_balance_fen", "ledger_balance_fen", "difference_fen", "result")}}
                  for s in answer["statements"]]
    return {
        "statements": statements, "overdue": len(answer["overdue_breaks"]),
        "lines": [(r["position"], r["matched_kind"]) for r in rows(
            engine, "SELECT position, matched_kind FROM statement_lines WHERE file_id = :f "
            "ORDER BY id", f=answer["file_id"])],
        "breaks": sorted((r["kind"], r["amount_fen"]) for r in rows(
            engine, "SELECT kind, amount_fen FROM reconciliation_breaks "
            "WHERE merchant_id = ANY(:ids)", ids=ids)),
        "deposits": [(r["status"], r["open_fen"]) for r in rows(
            engine, "SELECT status, open_fen FROM expected_deposits WHERE merchant_id = ANY(:ids) "
            "ORDER BY id", ids=ids)],
    }


def test_an_import_in_slices_reconciles_as_one_command_does(banking: Banking,
                                                            engine: Engine) -> None:
    merchants, data = statement_file(banking)
    expected = reconciled(engine, merchants, one_command(engine, data))
    assert expected["statements"][0]["outcome"] == {
        "deposit": 5, "break": 2, "payment_settled": 1, "reversal": 1, "not_booked": 1}
    assert expected["statements"][0]["lines"] == 10
    assert expected["overdue"] >= 1
    for slice_lines_max in (1, 3, 4, 1000):
        merchants, data = statement_file(banking)
        answer = in_slices(slice_lines_max)(engine, data)
        assert answer["duplicate"] is False
        assert reconciled(engine, merchants, answer) == expected, slice_lines_max


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slice_lines_max=st.integers(min_value=1, max_value=12))
def test_any_slice_size_gives_the_same_reconciliation(banking: Banking, engine: Engine,
                                                      slice_lines_max: int) -> None:
    merchants, data = statement_file(banking)
    expected = reconciled(engine, merchants, one_command(engine, data))
    merchants, data = statement_file(banking)
    assert reconciled(engine, merchants, in_slices(slice_lines_max)(engine, data)) == expected


class Abandoned(Exception):
    """The process that ran the import stopped here (a crash between two slices)."""


def test_an_import_abandoned_between_slices_resumes_and_applies_each_line_once(
        banking: Banking, engine: Engine) -> None:
    merchants, data = statement_file(banking)
    expected = reconciled(engine, merchants, one_command(engine, data))
    merchants, data = statement_file(banking)
    commands = 0

    def crashing(command: Command) -> dict[str, Any]:
        nonlocal commands
        commands += 1
        if commands == 4:  # the stage and two slices are committed
            raise Abandoned
        return run_one(engine)(command)

    with pytest.raises(Abandoned):
        run_steps(
            import_steps(StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                                     read_file(data, "s.xml")), 3), crashing)
    job = row(engine, "SELECT id, status, done, total, slices FROM jobs "
                      "ORDER BY created_at DESC LIMIT 1")
    assert (job["status"], job["done"], job["total"], job["slices"]) == ("running", 6, 12, 2)

    answer = in_slices(3)(engine, data)  # the same file again: it goes on

    assert reconciled(engine, merchants, answer) == expected
    assert row(engine, "SELECT status, done, slices FROM jobs WHERE id = :i", i=job["id"]) == \
        {"status": "done", "done": 12, "slices": 5}
    again = in_slices(3)(engine, data)
    assert again["duplicate"] is True and again["file_id"] == answer["file_id"]


def test_a_slice_sent_twice_applies_once(banking: Banking, engine: Engine) -> None:
    _, data = statement_file(banking)
    run = run_one(engine)
    seen: list[dict[str, Any]] = []

    def twice(command: Command) -> dict[str, Any]:
        first = run(command)
        seen.append(run(command))  # a retry of the very same slice
        return first

    answer = run_steps(import_steps(StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                                                read_file(data, "s.xml")), 5),
                       twice)
    assert [s["lines"] for s in answer["statements"]] == [10, 2]
    assert row(engine, "SELECT count(*) AS n FROM statement_lines WHERE file_id = :f",
               f=answer["file_id"])["n"] == 12
    slices = [s for s in seen if "cursor" in s]
    # The stage again finds its job; each slice again finds itself applied; the finish
    # again gives the same answer.
    assert [s["job"]["progress"]["slices"] for s in slices] == [0, 1, 2, 3]
    assert seen[-1] == answer


def test_a_big_file_answers_202_and_a_sale_is_served_between_two_slices(
        banking: Banking, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(banking.client.app.state.ctx, "import_slice_lines_max", 20)  # type: ignore[attr-defined]
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    sale_product = banking.sell_at(m, 10_000)  # makes the product
    data = camt053([Stmt(m.account, f"BIG-{m.id}", 0, DAY, tuple(
        entry("CRDT", 1 + i, DAY, bank_reference=f"B{i}") for i in range(2_000)))],
        message_id=f"BIG-{m.id}")
    bank = banking.bank(BANK)

    posted = banking.post_statement(BANK, data, headers={**bank, "Idempotency-Key": "big-1"})
    sale = banking.sell_at(m, 10_000)  # a till's write while the import runs

    assert posted.status_code == 202, posted.text
    location = posted.headers["location"]
    assert location == f"/v1/jobs/{posted.json()['job_id']}"
    assert posted.json()["kind"] == "statement_import"
    job = wait_done(banking.client, location, bank)
    assert job["status"] == "done"
    assert job["progress"] == {"done": 2_000, "total": 2_000, "slices": 100}
    result = job["result"]
    assert result["statements"][0]["outcome"] == {"break": 2_000}
    seqs = [r["opened_seq"] for r in rows(
        engine, "SELECT opened_seq FROM reconciliation_breaks WHERE merchant_id = :m "
        "ORDER BY opened_seq", m=m.id)]
    assert len(seqs) == 2_000 and sale_product["journal_seq"] < seqs[0]
    assert seqs[0] < sale["journal_seq"] < seqs[-1]  # served between two slices
    # The same request again: the first answer; another bank may not read the job.
    again = banking.post_statement(BANK, data, headers={**bank, "Idempotency-Key": "big-1"})
    assert (again.status_code, again.json()) == (202, posted.json())
    stranger = banking.client.get(location, headers=banking.bank("BANK-OTHER"))
    assert stranger.status_code == 404


def test_the_service_resumes_an_interrupted_import_when_it_starts(
        banking: Banking, engine: Engine) -> None:
    merchants, data = statement_file(banking)
    expected = reconciled(engine, merchants, one_command(engine, data))
    merchants, data = statement_file(banking)
    steps = import_steps(StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                                     read_file(data, "s.xml")), 4)
    run = run_one(engine)
    staged = run(next(steps))
    steps.send(run(steps.send(staged)))  # the stage and one slice, then the service stops
    job_id = staged["job"]["job_id"]

    with TestClient(create_app(engine)) as restarted:  # its start resumes the job
        job = wait_done(restarted, f"/v1/jobs/{job_id}", banking.operator)

    assert job["status"] == "done"
    # One slice of 4 lines before the stop; after it, slices of the service's size: the rest
    # of the first statement, then the second.
    assert job["progress"] == {"done": 12, "total": 12, "slices": 3}
    assert reconciled(engine, merchants, job["result"]) == expected


def test_slices_grow_while_nobody_waits_and_drop_back_when_a_write_does() -> None:
    waiting = iter([False, False, False, True, False, False, False, False, False])
    sizes = SliceSizes(50, 300, lambda: next(waiting))
    assert [sizes.next() for _ in range(9)] == [50, 100, 200, 50, 100, 200, 300, 300, 300]
    assert [SliceSizes.fixed(7).next() for _ in range(3)] == [7, 7, 7]
    assert SliceSizes(50, 20).least == 20  # the most bounds the least too


def test_an_import_alone_on_the_writer_goes_in_growing_slices(
        banking: Banking, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = banking.client.app.state.ctx  # type: ignore[attr-defined]
    monkeypatch.setattr(ctx, "import_slice_lines_min", 20)
    monkeypatch.setattr(ctx, "import_slice_lines_max", 500)
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    data = camt053([Stmt(m.account, f"GROW-{m.id}", 0, DAY, tuple(
        entry("CRDT", 1 + i, DAY, bank_reference=f"G{i}") for i in range(2_000)))],
        message_id=f"GROW-{m.id}")
    bank = banking.bank(BANK)
    posted = banking.post_statement(BANK, data, headers=bank)
    assert posted.status_code == 202, posted.text
    job = wait_done(banking.client, posted.headers["location"], bank)
    # 20, 40, 80, 160 and 320 lines (620 in five slices), then 500 a slice: three more. One
    # more when the request's own answer, written as the job starts, comes during a slice.
    assert (job["progress"]["done"], job["progress"]["total"]) == (2_000, 2_000)
    assert job["progress"]["slices"] in (8, 9)
    assert job["result"]["statements"][0]["outcome"] == {"break": 2_000}


def test_growing_slices_reconcile_as_one_command_does(banking: Banking,
                                                      engine: Engine) -> None:
    merchants, data = statement_file(banking)
    expected = reconciled(engine, merchants, one_command(engine, data))
    merchants, data = statement_file(banking)
    waiting = iter([False, True] * 10)
    stage = StageImport(OPERATOR, BANK, "s.xml", data, DAY, read_file(data, "s.xml"))
    answer = run_steps(import_steps(stage, SliceSizes(1, 8, lambda: next(waiting))),
                       run_one(engine))
    assert reconciled(engine, merchants, answer) == expected


def test_a_write_of_someone_else_between_two_slices_brings_the_least_back(
        banking: Banking) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    banking.sell_at(m, 10_000)  # the product, made before
    sizes = import_slices(banking.client.app.state.ctx.writer, 10, 1_000)  # type: ignore[attr-defined]
    assert sizes.next() == 10
    banking.sell_at(m, 10_000)  # stands for the job's own slice: the one write between two
    assert sizes.next() == 20
    banking.sell_at(m, 10_000)  # the job's slice...
    banking.sell_at(m, 10_000)  # ...and a till's sale during it
    assert sizes.next() == 10
    banking.sell_at(m, 10_000)
    assert sizes.next() == 20


def test_a_running_import_goes_on_only_with_its_file_read_as_it_began(
        banking: Banking, engine: Engine) -> None:
    """The same bytes read otherwise (by another profile, say) would slice other lines into
    the job's plan: refused, and the job left as it was."""
    merchants, data = statement_file(banking)
    parsed = read_file(data, "s.xml")
    run = run_one(engine)
    staged = run(StageImport(OPERATOR, BANK, "s.xml", data, DAY, parsed))
    job_id = staged["job"]["job_id"]
    first = parsed.statements[0]
    otherwise = ParsedFile(parsed.format, (replace(first, entries=first.entries[:-1]),
                                           *parsed.items[1:]))

    with pytest.raises(Conflict, match=f"job {job_id}\\) began with it read otherwise"):
        run(StageImport(OPERATOR, BANK, "s.xml", data, DAY, otherwise))
    again = run(StageImport(OPERATOR, BANK, "s.xml", data, DAY, read_file(data, "s.xml")))
    assert (again["job"]["job_id"], again["cursor"]) == (job_id, [0, 0])
    answer = run_steps(import_steps(StageImport(OPERATOR, BANK, "s.xml", data, DAY,
                                                read_file(data, "s.xml")), 7), run)
    assert sum(s.get("lines", 0) for s in answer["statements"]) == sum(
        len(lines_of(s.entries)) for s in parsed.statements)
    assert len(merchants) == 2
