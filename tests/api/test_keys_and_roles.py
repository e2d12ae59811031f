"""API keys and roles over HTTP: who may read and write what, and how keys are kept."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from ledger.auth import Role
from tests.support.db import (
    file_merchant,
    head_seq,
    issue_key,
    nothing_written,
    open_account,
    register_bank,
)
from tests.support.http import Headers, assert_problem, bearer


@pytest.fixture(scope="module")
def scene(app_client: TestClient, engine: Engine, operator: Headers) -> dict[str, Any]:
    """Accounts of two merchants and two banks, one unowned, and one posted transaction."""
    m1, m2 = file_merchant(engine, "B1"), file_merchant(engine, "B2")
    register_bank(engine, "B7")
    accounts = {
        "m1": open_account(engine, "liability", merchant_id=m1),
        "m2": open_account(engine, "liability", merchant_id=m2),
        "b1": open_account(engine, "asset", bank_id="B1"),
        "b2": open_account(engine, "asset", bank_id="B2"),
        "m1_at_b2": open_account(engine, "asset", merchant_id=m1, bank_id="B2"),
        "house": open_account(engine, "equity"),
    }
    response = app_client.post("/v1/transactions", headers=operator, json={"postings": [
        {"account_id": accounts["b1"], "amount_fen": 900},
        {"account_id": accounts["m1"], "amount_fen": -900}]})
    assert response.status_code == 201, response.text
    return {**accounts, "tx": response.json()["id"], "M1": m1, "M2": m2}


def writes(scene: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """One of every POST, each well formed, so only the key can stop it."""
    postings = [{"account_id": scene["b1"], "amount_fen": 1},
                {"account_id": scene["m1"], "amount_fen": -1}]
    return [
        ("/v1/accounts", {"kind": "asset", "name": "sneaky"}),
        ("/v1/transactions", {"postings": postings}),
        ("/v1/transactions/batch", {"transactions": [{"postings": postings}]}),
        ("/v1/transactions/batch", {"transactions": [{"postings": postings}], "atomic": True}),
        (f"/v1/transactions/{scene['tx']}/reverse", None),
        ("/v1/keys", {"role": "operator"}),
    ]


# --- authentication --------------------------------------------------------------------


def test_a_request_without_a_key_is_401_and_writes_nothing(
        app_client: TestClient, engine: Engine, scene: dict[str, Any]) -> None:
    for path in (f"/v1/accounts/{scene['m1']}", f"/v1/accounts/{scene['m1']}/postings",
                 "/v1/journal", "/v1/journal/1"):
        assert_problem(app_client.get(path), 401, "unauthorized", None)
    with nothing_written(app_client, engine):
        for path, body in writes(scene):
            assert_problem(app_client.post(path, json=body), 401, "unauthorized", None)


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": "Bearer yufu_short_secret"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer nope_0123456789abcdef_secret"},
    {"X-API-Key": "yufu_0123456789abcdef"},
], ids=["empty", "no prefix", "short prefix", "basic auth", "wrong scheme name", "no secret"])
def test_a_malformed_key_is_401(app_client: TestClient, engine: Engine, scene: dict[str, Any],
                                headers: Headers) -> None:
    assert_problem(app_client.get(f"/v1/accounts/{scene['m1']}", headers=headers), 401,
                   "unauthorized", None)
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/transactions", headers=headers,
                                   json=writes(scene)[1][1])
    assert_problem(response, 401, "unauthorized", None)


def test_an_unknown_key_or_a_wrong_secret_is_401(
        app_client: TestClient, engine: Engine, operator_key: str, scene: dict[str, Any]) -> None:
    _, prefix, secret = operator_key.split("_", 2)
    unknown_prefix = f"yufu_{'0' * 16}_{secret}"
    wrong_secret = f"yufu_{prefix}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    for key in (unknown_prefix, wrong_secret, f"yufu_{prefix}_"):
        response = app_client.get(f"/v1/accounts/{scene['m1']}", headers=bearer(key))
        body = assert_problem(response, 401, "unauthorized", None)
        assert body["detail"] in ("unknown API key", "the API key is malformed")
        with nothing_written(app_client, engine):
            refused = app_client.post("/v1/transactions", headers=bearer(key),
                                      json=writes(scene)[1][1])
        assert_problem(refused, 401, "unauthorized", None)


def test_a_key_works_in_the_bearer_or_the_x_api_key_header(
        app_client: TestClient, operator_key: str, scene: dict[str, Any]) -> None:
    for headers in (bearer(operator_key), {"authorization": f"bearer {operator_key}"},
                    {"X-API-Key": operator_key}):
        response = app_client.get(f"/v1/accounts/{scene['b1']}", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["balance_fen"] == 900


# --- regulator -------------------------------------------------------------------------


def test_a_regulator_reads_everything(app_client: TestClient, engine: Engine,
                                      scene: dict[str, Any]) -> None:
    regulator = bearer(issue_key(engine, Role.regulator))
    for name in ("m1", "m2", "b1", "b2", "house"):
        response = app_client.get(f"/v1/accounts/{scene[name]}", headers=regulator)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == scene[name]
    postings = app_client.get(f"/v1/accounts/{scene['m1']}/postings", headers=regulator)
    assert [(p["transaction_id"], p["amount_fen"]) for p in postings.json()["items"]] == [
        (scene["tx"], -900)]
    journal = app_client.get("/v1/journal", headers=regulator)
    assert journal.status_code == 200
    assert journal.json()["head_seq"] == head_seq(app_client)
    entry = app_client.get(f"/v1/journal/{scene['tx']}", headers=regulator)
    assert (entry.status_code, entry.json()["kind"]) == (200, "transaction")


def test_a_regulator_may_not_write_anything(app_client: TestClient, engine: Engine,
                                            scene: dict[str, Any]) -> None:
    regulator = bearer(issue_key(engine, Role.regulator))
    with nothing_written(app_client, engine):
        for path, body in writes(scene):
            response = app_client.post(path, headers=regulator, json=body)
            assert_problem(response, 403, "forbidden", None)
    assert app_client.get(f"/v1/accounts/{scene['m1']}", headers=regulator).json()[
        "normal_balance_fen"] == 900


# --- merchant --------------------------------------------------------------------------


def test_a_merchant_reads_only_its_own_accounts(app_client: TestClient, engine: Engine,
                                                scene: dict[str, Any]) -> None:
    merchant = bearer(issue_key(engine, Role.merchant, merchant_id=scene["M1"]))
    for name in ("m1", "m1_at_b2"):
        response = app_client.get(f"/v1/accounts/{scene[name]}", headers=merchant)
        assert response.status_code == 200, response.text
        assert response.json()["merchant_id"] == scene["M1"]
    own = app_client.get(f"/v1/accounts/{scene['m1']}", headers=merchant).json()
    assert (own["balance_fen"], own["normal_balance_fen"]) == (-900, 900)
    postings = app_client.get(f"/v1/accounts/{scene['m1']}/postings", headers=merchant)
    assert postings.status_code == 200
    assert [p["amount_fen"] for p in postings.json()["items"]] == [-900]
    # Another's account answers exactly as a missing one: existence is not given away.
    missing = app_client.get("/v1/accounts/999999999", headers=merchant)
    for name in ("m2", "b1", "house"):
        for path in (f"/v1/accounts/{scene[name]}", f"/v1/accounts/{scene[name]}/postings"):
            r = app_client.get(path, headers=merchant)
            assert_problem(r, 404, "not_found", "id")
            assert r.json()["detail"].replace(str(scene[name]), "N") == \
                missing.json()["detail"].replace("999999999", "N")
    # The journal names every merchant's money: not for a merchant's eyes.
    assert_problem(app_client.get("/v1/journal", headers=merchant), 403, "forbidden", None)
    assert_problem(app_client.get(f"/v1/journal/{scene['tx']}", headers=merchant), 403,
                   "forbidden", None)


def test_a_merchant_may_not_write_anything(app_client: TestClient, engine: Engine,
                                           scene: dict[str, Any]) -> None:
    merchant = bearer(issue_key(engine, Role.merchant, merchant_id=scene["M1"]))
    with nothing_written(app_client, engine):
        for path, body in writes(scene):
            response = app_client.post(path, headers=merchant, json=body)
            assert_problem(response, 403, "forbidden", None)


# --- bank ------------------------------------------------------------------------------


def test_a_bank_reads_only_its_own_accounts(app_client: TestClient, engine: Engine,
                                            scene: dict[str, Any]) -> None:
    bank = bearer(issue_key(engine, Role.bank, bank_id="B1"))
    response = app_client.get(f"/v1/accounts/{scene['b1']}", headers=bank)
    assert response.status_code == 200, response.text
    assert (response.json()["bank_id"], response.json()["balance_fen"]) == ("B1", 900)
    postings = app_client.get(f"/v1/accounts/{scene['b1']}/postings", headers=bank)
    assert [p["amount_fen"] for p in postings.json()["items"]] == [900]
    for name in ("b2", "m1", "m1_at_b2", "house"):
        assert_problem(app_client.get(f"/v1/accounts/{scene[name]}", headers=bank), 404,
                       "not_found", "id")
        assert_problem(app_client.get(f"/v1/accounts/{scene[name]}/postings", headers=bank),
                       404, "not_found", "id")
    with nothing_written(app_client, engine):
        for path, body in writes(scene):
            assert_problem(app_client.post(path, headers=bank, json=body), 403, "forbidden",
                           None)


# --- issuing keys ----------------------------------------------------------------------


def test_an_issued_key_is_returned_once_and_works(app_client: TestClient, engine: Engine,
                                                  operator: Headers,
                                                  scene: dict[str, Any]) -> None:
    before = head_seq(app_client)
    response = app_client.post("/v1/keys", headers=operator, json={
        "role": "merchant", "merchant_id": scene["M1"], "label": "till 3"})
    assert response.status_code == 201, response.text
    body = response.json()
    key = body.pop("key")
    prefix = body["prefix"]
    assert body == {"key_id": body["key_id"], "prefix": prefix, "role": "merchant",
                    "merchant_id": scene["M1"], "bank_id": None, "label": "till 3",
                    "expires_at": None, "issued_seq": before + 1, "department": None,
                    "street": None}
    assert key.startswith(f"yufu_{prefix}_")
    assert len(prefix) == 16
    assert head_seq(app_client) == before + 1
    works = app_client.get(f"/v1/accounts/{scene['m1']}", headers=bearer(key))
    assert works.status_code == 200, works.text
    assert works.json()["merchant_id"] == scene["M1"]
    assert_problem(app_client.get(f"/v1/accounts/{scene['m2']}", headers=bearer(key)), 404,
                   "not_found", "id")


def test_an_issued_operator_key_can_write(app_client: TestClient, operator: Headers) -> None:
    response = app_client.post("/v1/keys", headers=operator, json={"role": "operator"})
    assert response.status_code == 201, response.text
    opened = app_client.post("/v1/accounts", headers=bearer(response.json()["key"]),
                             json={"kind": "asset", "name": "by the new key"})
    assert opened.status_code == 201, opened.text
    assert opened.json()["name"] == "by the new key"


def test_keys_are_stored_hashed_and_never_journaled(
        app_client: TestClient, engine: Engine, operator: Headers, scene: dict[str, Any]
) -> None:
    response = app_client.post("/v1/keys", headers=operator,
                               json={"role": "bank", "bank_id": "B7", "label": "treasury"})
    assert response.status_code == 201, response.text
    issued = response.json()
    key = issued["key"]
    _, prefix, secret = key.split("_", 2)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
        row = conn.execute(text("SELECT * FROM api_keys WHERE id = :id"),
                           {"id": issued["key_id"]}).mappings().one()
        hits = conn.execute(
            text("SELECT count(*) FROM api_keys k WHERE strpos(k::text, :s) > 0 "
                 "OR strpos(encode(k.secret_hash, 'escape'), :s) > 0"),
            {"s": secret}).scalar_one()
    assert hits == 0
    assert (row["prefix"], row["role"], row["bank_id"], row["merchant_id"], row["label"]) == (
        prefix, "bank", "B7", None, "treasury")
    assert bytes(row["secret_hash"]) == hashlib.sha256(secret.encode()).digest()
    for stored in rows:
        for value in stored.values():
            as_text = bytes(value).hex() if isinstance(value, bytes | memoryview) else str(value)
            assert key not in as_text and secret not in as_text
            assert secret.encode().hex() not in as_text
    entry = app_client.get(f"/v1/journal/{issued['issued_seq']}", headers=operator).json()
    assert entry["kind"] == "key.issued"
    operator_key_id = app_client.app.state.ctx.keys.authenticate(  # type: ignore[attr-defined]
        operator["Authorization"][7:]).key_id
    assert entry["payload"] == {"key_id": issued["key_id"], "prefix": prefix, "role": "bank",
                                "merchant_id": None, "bank_id": "B7", "label": "treasury",
                                "expires_at": None,
                                "actor": {"key_id": operator_key_id, "role": "operator"}}
    assert secret.encode() not in base64.b64decode(entry["canonical_b64"])


@pytest.mark.parametrize(("body", "field"), [
    ({"role": "merchant"}, "merchant_id"),
    ({"role": "operator", "merchant_id": "m_x"}, "merchant_id"),
    ({"role": "merchant", "merchant_id": ""}, "merchant_id"),
    ({"role": "merchant", "merchant_id": "m_never_filed"}, "merchant_id"),
    ({"role": "bank", "bank_id": "NO-SUCH-BANK"}, "bank_id"),
    ({"role": "consumer"}, "role"),
    ({"role": "operator", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ({"role": "operator", "expires_at": "2020-01-01T00:00:00+08:00"}, "expires_at"),
    ({"role": "bank"}, "bank_id"),
    ({"role": "regulator", "bank_id": "B1"}, "bank_id"),
    ({"role": "root"}, "role"),
    ({}, "role"),
    ({"role": "operator", "scopes": ["all"]}, "scopes"),
    ({"role": "operator", "label": "x" * 201}, "label"),
    ({"role": "operator", "label": "nul\u0000"}, "label"),
])
def test_a_bad_key_request_is_422_and_writes_nothing(
        app_client: TestClient, engine: Engine, operator: Headers, body: dict[str, Any],
        field: str) -> None:
    with nothing_written(app_client, engine):
        response = app_client.post("/v1/keys", headers=operator, json=body)
    assert_problem(response, 422, "invalid_input", field)
