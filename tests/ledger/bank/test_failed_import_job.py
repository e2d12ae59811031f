"""An import job that fails on resume (its file no longer reads: a profile since
removed) has already written its statements' rows at staging; the same file sent again, once
it reads, must import the lines the job never did, not name the statement already imported
with none of its lines stored."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.profiles import load_profiles
from ledger.auth import Principal, Role
from ledger.bank.statements import read_file
from ledger.flows.imports import StageImport, import_steps
from tests.support.bank_exports import Line, generic_rows, to_csv
from tests.support.db import row, run_one
from tests.support.driver import Banking
from tests.support.http import wait_done

DAY = date(2026, 12, 7)
BANK = "BANK-R2-FAILED"
OPERATOR = Principal(key_id=0, role=Role.operator)


def test_a_statement_of_a_failed_import_job_is_not_lost(banking: Banking,
                                                        engine: Engine) -> None:
    banking.set_today(DAY)
    m = banking.merchant(BANK)
    data = to_csv(generic_rows(m.account, 0, [Line(DAY, 100, serial=f"F-{m.id}")]))
    profiles = load_profiles()
    parsed = read_file(data, "a.csv", profiles["cn-generic"], tuple(profiles.values()))
    steps = import_steps(StageImport(OPERATOR, BANK, "a.csv", data, DAY, parsed,
                                     profile="cn-generic"), 1)
    job_id = run_one(engine)(next(steps))["job"]["job_id"]  # staged; the service stops
    kept = {k: v for k, v in profiles.items() if k != "cn-generic"}
    with TestClient(create_app(engine, bank_profiles=kept)) as restarted:
        failed = wait_done(restarted, f"/v1/jobs/{job_id}", banking.operator)
    assert failed["status"] == "failed", failed

    # The profile is back; the bank sends the same file again, as the failure told it to.
    again = banking.client.post(f"/v1/banks/{BANK}/statements", content=data,
                                headers=banking.bank(BANK),
                                params={"filename": "a.csv", "profile": "cn-generic"})
    assert again.status_code < 500, again.text
    if again.status_code == 202:
        wait_done(banking.client, again.headers["location"], banking.bank(BANK))
    assert row(engine, "SELECT count(*) AS n FROM statement_lines WHERE account = :a",
               a=m.account)["n"] == 1, again.text
