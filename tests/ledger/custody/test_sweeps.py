"""The release run and the auto-confirmation sweep in slices (ledger/flows/sweeps.py): each
slice its own group commit; the whole the same as one command; run again (or resumed after
a stop), nothing is done twice."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from ledger.auth import Principal, Role
from ledger.commands import Command
from ledger.db import job_queries
from ledger.flows import sweeps
from ledger.flows.sweeps import auto_confirm_steps, release_steps
from ledger.jobs import JobKind, JobStatus, run_steps
from tests.support.db import run_one
from tests.support.driver import Banking, Merchant
from tests.support.http import wait_done

BANK = "SWEEP-BANK"
SALE_DAY = date(2026, 11, 1)  # a Sunday
DAY = date(2026, 11, 2)  # the Monday that ends the weekly release period
OPERATOR = Principal(key_id=0, role=Role.operator)


def earning(banking: Banking, count: int) -> list[Merchant]:
    """Merchants with money earned in the period that ends on DAY."""
    banking.set_today(SALE_DAY)
    merchants = [banking.merchant(BANK, industry="美容美发") for _ in range(count)]
    for m in merchants:
        sale = banking.sell_at(m, 100_000)
        banking.consume(sale["card_id"], m.key, amount_fen=50_000)
    banking.set_today(DAY)
    return merchants


class Stopped(Exception):
    """The process running the run stopped here, between two slices."""


def test_a_release_run_in_slices_releases_each_merchant_once_and_resumes(
        banking: Banking, engine: Engine) -> None:
    merchants = earning(banking, 5)
    mine = {m.id for m in merchants}
    steps = release_steps(OPERATOR, DAY, merchants_max=2)
    seen: list[dict[str, Any]] = []
    commands = 0

    def stopping(command: Command) -> dict[str, Any]:
        nonlocal commands
        commands += 1
        if commands == 3:  # the job started, its first slice done
            raise Stopped
        return run_one(engine)(command)

    with pytest.raises(Stopped):
        run_steps(steps, stopping, seen.append)
    assert [answer["progress"]["slices"] for answer in seen] == [0, 1]
    with engine.connect() as conn:
        job = job_queries.job(conn, seen[0]["job"]["job_id"])
    assert job is not None and job.kind is JobKind.release_run and job.key == DAY.isoformat()
    assert (job.status, job.done, job.slices) == (JobStatus.running, 2, 1)
    assert job.total >= len(mine)

    answer = run_steps(release_steps(OPERATOR, DAY, merchants_max=2), run_one(engine))

    # The job's answer holds the slices before the stop too: every merchant once.
    ours = [r for r in answer["releases"] if r["merchant_id"] in mine]
    assert sorted(r["merchant_id"] for r in ours) == sorted(mine)
    assert all(r["amount_fen"] > 0 for r in ours)
    with engine.connect() as conn:
        job = job_queries.job(conn, job.id)
    assert job is not None and job.status is JobStatus.done and job.result == answer
    assert job.done == job.total
    again = run_steps(release_steps(OPERATOR, DAY, merchants_max=2), run_one(engine))
    assert again == {"as_of": DAY.isoformat(), "releases": [], "held": []}  # begun again


def test_the_auto_confirmation_sweep_in_slices_confirms_each_consumption_once(
        banking: Banking, engine: Engine) -> None:
    banking.set_today(SALE_DAY)
    m = banking.merchant(BANK)
    consumed = [banking.consume(banking.sell_at(m, 10_000)["card_id"], m.key, amount_fen=1_000)
                for _ in range(5)]
    assert {c["status"] for c in consumed} == {"pending"}
    due = max(date.fromisoformat(c["confirm_by"]) for c in consumed)
    ids = sorted(c["consumption_id"] for c in consumed)
    seen: list[dict[str, Any]] = []

    answer = run_steps(auto_confirm_steps(OPERATOR, due, consumptions_max=2), run_one(engine),
                       seen.append)

    assert set(ids) <= set(answer["confirmed"])
    assert len(answer["confirmed"]) == len(set(answer["confirmed"]))
    assert [a["progress"]["done"] for a in seen][:3] == [0, 2, 4]
    assert seen[0]["progress"]["total"] >= len(ids)
    again = run_steps(auto_confirm_steps(OPERATOR, due, consumptions_max=2), run_one(engine))
    assert again == {"as_of": due.isoformat(), "confirmed": []}


def test_a_release_run_over_more_merchants_than_a_slice_answers_202_with_its_job(
        banking: Banking, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeps, "release_slice_merchants_max", 2)
    mine = {m.id for m in earning(banking, 5)}
    key = {**banking.operator, "Idempotency-Key": "run-202"}
    r = banking.client.post("/v1/releases/run", headers=key, json={"as_of": DAY.isoformat()})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert r.headers["Location"] == f"/v1/jobs/{accepted['job_id']}"
    assert (accepted["kind"], accepted["status"]) == ("release_run", "running")

    job = wait_done(banking.client, r.headers["Location"], banking.operator)

    assert job["status"] == "done"
    assert job["progress"]["done"] == job["progress"]["total"] >= len(mine)
    assert job["progress"]["slices"] >= 3  # 5 merchants at least, 2 a slice
    result = job["result"]
    assert result["as_of"] == DAY.isoformat()
    ours = [r["merchant_id"] for r in result["releases"] if r["merchant_id"] in mine]
    assert sorted(ours) == sorted(mine)  # each once
    again = banking.client.post("/v1/releases/run", headers=key, json={"as_of": DAY.isoformat()})
    assert (again.status_code, again.json()) == (202, accepted)  # the first answer
    assert again.headers["Location"] == r.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_run_that_fits_in_a_slice_answers_200_at_once_with_a_job_behind_it(
        banking: Banking, engine: Engine) -> None:
    (m,) = earning(banking, 1)
    body = banking.ok("POST", "/v1/releases/run", banking.operator,
                      {"as_of": DAY.isoformat(), "merchant_id": m.id})
    assert [r["merchant_id"] for r in body["releases"]] == [m.id]
    assert set(body) == {"as_of", "releases", "held"}
    with engine.connect() as conn:
        job = [j for j in job_queries.running(conn) if j.key.endswith(m.id)]
    assert job == []  # over: done, with this answer
    with engine.connect() as conn:
        keyed = conn.execute(text("SELECT status, done, total, result FROM jobs WHERE kind = "
                                  "'release_run' AND key = :k"),
                             {"k": f"{DAY.isoformat()}/{m.id}"}).one()
    assert tuple(keyed) == ("done", 1, 1, body)


def test_a_sweep_of_more_consumptions_than_a_slice_answers_202_with_its_job(
        banking: Banking, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeps, "auto_confirm_slice_consumptions_max", 2)
    banking.set_today(SALE_DAY)
    m = banking.merchant(BANK)
    consumed = [banking.consume(banking.sell_at(m, 10_000)["card_id"], m.key, amount_fen=1_000)
                for _ in range(5)]
    due = max(date.fromisoformat(c["confirm_by"]) for c in consumed)
    banking.set_today(due)
    r = banking.client.post("/v1/consumptions/auto-confirm", headers=banking.operator,
                            json={"as_of": due.isoformat()})
    assert r.status_code == 202, r.text

    job = wait_done(banking.client, r.headers["Location"], banking.operator)

    assert (job["kind"], job["status"]) == ("auto_confirm", "done")
    assert job["progress"]["done"] == job["progress"]["total"] >= 5
    assert {c["consumption_id"] for c in consumed} <= set(job["result"]["confirmed"])
    assert job["result"]["as_of"] == due.isoformat()
    with banking.engine.connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status FROM consumptions WHERE id = "
                                     "ANY(:ids)"),
                                {"ids": [c["consumption_id"] for c in consumed]}).scalars()
        assert list(statuses) == ["confirmed"]


def test_the_service_resumes_an_interrupted_release_run_when_it_starts(
        banking: Banking, engine: Engine) -> None:
    mine = {m.id for m in earning(banking, 4)}
    steps = release_steps(OPERATOR, DAY, merchants_max=1)  # the day's job begun again
    run = run_one(engine)
    started = run(next(steps))
    steps.send(run(steps.send(started)))  # the start and one slice, then the service stops
    job_id = started["job"]["job_id"]

    with TestClient(create_app(engine)) as restarted:  # its start resumes the job
        job = wait_done(restarted, f"/v1/jobs/{job_id}", banking.operator)

    assert job["status"] == "done" and job["kind"] == "release_run"
    assert job["progress"]["done"] == job["progress"]["total"]
    assert job["result"]["as_of"] == DAY.isoformat()
    with engine.connect() as conn:
        released = conn.execute(text(
            "SELECT merchant_id FROM release_instructions WHERE period_end = :d"),
            {"d": DAY}).scalars().all()
    assert len(released) == len(set(released))  # each merchant's period once
    assert mine <= set(released)
