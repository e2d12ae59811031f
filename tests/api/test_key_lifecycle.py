"""Keys over their life: listed without secrets, expiring, revoked (in every worker at
once), never for something that does not exist; and every write names the key behind it."""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.cli import main as yufu
from ledger.auth import Role
from tests.support.db import file_merchant, head_seq, issue_key, nothing_written
from tests.support.http import Headers, assert_problem, bearer, every_page, key_id_of

notice_wait_s = 5.0


@pytest.fixture(scope="module")
def second_worker(engine: Engine) -> Iterator[TestClient]:
    """Another app on the same database, as a second `yufu serve` worker process has."""
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        yield client


def test_a_revoked_key_is_refused_at_once_in_every_worker(
        app_client: TestClient, second_worker: TestClient, engine: Engine,
        operator: Headers) -> None:
    key = issue_key(engine, Role.regulator)
    for client in (app_client, second_worker):  # both workers have it cached now
        assert client.get("/v1/exposure", headers=bearer(key)).status_code == 200
    key_id = key_id_of(app_client, key)
    r = app_client.post(f"/v1/keys/{key_id}/revoke", headers=operator,
                        json={"reason": "leaked"})
    assert r.status_code == 200, r.text
    assert r.json()["revoked"] is True
    assert_problem(app_client.get("/v1/exposure", headers=bearer(key)), 401, "unauthorized",
                   None)
    # The other worker heard of it from the database (LISTEN), not from this process.
    deadline = time.monotonic() + notice_wait_s
    while second_worker.get("/v1/exposure", headers=bearer(key)).status_code == 200:
        assert time.monotonic() < deadline, "the second worker still accepts a revoked key"
        time.sleep(0.01)
    assert_problem(second_worker.get("/v1/exposure", headers=bearer(key)), 401,
                   "unauthorized", None)
    entry = app_client.get(f"/v1/journal/{r.json()['journal_seq']}", headers=operator).json()
    assert entry["kind"] == "key.revoked"
    assert entry["payload"]["key_id"] == key_id and entry["payload"]["reason"] == "leaked"
    with nothing_written(app_client, engine):
        assert_problem(app_client.post(f"/v1/keys/{key_id}/revoke", headers=operator), 409,
                       "conflict", "key_id")


def test_an_expired_key_is_refused(app_client: TestClient, operator: Headers) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    r = app_client.post("/v1/keys", headers=operator,
                        json={"role": "regulator", "expires_at": soon.isoformat()})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert app_client.get("/v1/exposure", headers=bearer(key)).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    r = app_client.get("/v1/exposure", headers=bearer(key))
    assert_problem(r, 401, "unauthorized", None)
    assert "expired" in r.json()["detail"]


def test_keys_are_listed_without_secrets(app_client: TestClient, engine: Engine,
                                         operator: Headers) -> None:
    key = issue_key(engine, Role.regulator)
    listed = every_page(app_client, "/v1/keys", operator, 2)
    mine = [k for k in listed if k["prefix"] == key.split("_")[1]]
    assert len(mine) == 1 and mine[0]["role"] == "regulator"
    assert mine[0]["revoked_seq"] is None and mine[0]["expires_at"] is None
    text_of_all = json.dumps(listed)
    assert key.split("_", 2)[2] not in text_of_all and "secret" not in text_of_all
    regulator = bearer(key)  # reads everything, the list of keys too (never a secret)
    assert app_client.get("/v1/keys", headers=regulator).status_code == 200
    merchant = bearer(issue_key(engine, Role.merchant, file_merchant(engine, "B1")))
    assert_problem(app_client.get("/v1/keys", headers=merchant), 403, "forbidden", None)


def test_a_holder_revokes_its_own_key_and_no_one_elses(
        app_client: TestClient, engine: Engine) -> None:
    merchant = file_merchant(engine, "B1")
    mine, theirs = issue_key(engine, Role.merchant, merchant), issue_key(engine, Role.merchant,
                                                                          merchant)
    theirs_id = key_id_of(app_client, theirs)
    regulator = bearer(issue_key(engine, Role.regulator))
    with nothing_written(app_client, engine):
        r = app_client.post(f"/v1/keys/{theirs_id}/revoke", headers=bearer(mine))
        assert_problem(r, 404, "not_found", "key_id")
        gone = app_client.post("/v1/keys/999999999/revoke", headers=bearer(mine))
        assert gone.json()["detail"].replace("999999999", "N") == \
            r.json()["detail"].replace(str(theirs_id), "N")
    r = app_client.post(f"/v1/keys/{key_id_of(app_client, mine)}/revoke", headers=bearer(mine))
    assert r.status_code == 200, r.text
    assert_problem(app_client.get(f"/v1/merchants/{merchant}", headers=bearer(mine)), 401,
                   "unauthorized", None)
    regulator_id = key_id_of(app_client, regulator["Authorization"][7:])
    r = app_client.post(f"/v1/keys/{regulator_id}/revoke", headers=regulator)
    assert_problem(r, 403, "forbidden", None)  # a regulator writes nothing


def test_every_write_names_the_key_behind_it(app_client: TestClient, engine: Engine,
                                             operator: Headers) -> None:
    merchant = file_merchant(engine, "B1")
    key = issue_key(engine, Role.merchant, merchant)
    r = app_client.post(f"/v1/merchants/{merchant}/products", headers=bearer(key), json={
        "kind": "stored_value", "name": "卡", "price_fen": 10_000})
    assert r.status_code == 201, r.text
    entry = app_client.get(f"/v1/journal/{r.json()['journal_seq']}", headers=operator).json()
    assert entry["payload"]["actor"] == {"key_id": key_id_of(app_client, key),
                                         "role": "merchant"}
    r = app_client.post(f"/v1/merchants/{merchant}/freeze", headers=operator,
                        json={"reason": "test"})
    entry = app_client.get(f"/v1/journal/{r.json()['journal_seq']}", headers=operator).json()
    assert entry["payload"]["actor"] == {
        "key_id": key_id_of(app_client, operator["Authorization"][7:]), "role": "operator"}


def test_the_cli_names_its_operator(app_client: TestClient, operator: Headers,
                                    database_env: dict[str, str],
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in database_env.items():
        monkeypatch.setenv(name, value)
    before = head_seq(app_client)
    assert yufu(["keys", "create", "--role", "regulator", "--label", "from the shell"]) == 0
    entry = app_client.get(f"/v1/journal/{before + 1}", headers=operator).json()
    assert entry["kind"] == "key.issued"
    assert entry["payload"]["actor"] == {"role": "operator", "via": "cli",
                                         "os_user": getpass.getuser()}
    capsys.readouterr()
    assert yufu(["keys", "list", "--role", "regulator"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(k["label"] == "from the shell" for k in listed)


def test_a_retried_key_issue_or_sale_never_keeps_the_secret_it_showed(
        app_client: TestClient, engine: Engine, operator: Headers) -> None:
    retry = {**operator, "Idempotency-Key": "issue-once"}
    first = app_client.post("/v1/keys", headers=retry, json={"role": "regulator"})
    again = app_client.post("/v1/keys", headers=retry, json={"role": "regulator"})
    assert first.status_code == again.status_code == 201
    secret = first.json()["key"]
    assert "key" not in again.json() and again.json()["withheld"] == ["key"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["key_id"] == first.json()["key_id"]  # written once
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT response::text FROM idempotency_records "
                                   "WHERE key = 'issue-once'")).scalar_one()
    assert secret not in stored and secret.split("_", 2)[2] not in stored
