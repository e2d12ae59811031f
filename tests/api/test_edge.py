"""The edge (api/edge.py): request ids, the access log and its hook, and the rate limits."""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.edge import new_request_id
from api.messages import OutboxSender
from api.ratelimit import RateLimits
from api.runtime import run_command
from ledger.auth import Role
from ledger.service import IssueKey
from tests.support.db import nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

JSON = {"Content-Type": "application/json"}
NEW_ID = re.compile(r"[0-9a-f]{32}")
ACCESS_FIELDS = {"time", "request_id", "key_id", "role", "method", "route", "status",
                 "latency_ms", "client"}
WRONG_KEY = {"Authorization": "Bearer yufu_0000000000000000_not-the-secret"}
log_clock_skew_s = 5


def key(engine: Engine, role: Role, merchant_id: str | None = None,
        bank_id: str | None = None) -> tuple[Headers, int]:
    issued = run_command(engine, IssueKey(role, merchant_id, bank_id))
    return bearer(str(issued["key"])), int(issued["key_id"])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def shop(app_client: TestClient, engine: Engine, operator: Headers,
         outbox: OutboxSender) -> dict[str, Any]:
    custody = Driver(app_client, engine, operator, outbox)
    merchant = custody.file("体育健身")["id"]
    headers, key_id = key(engine, Role.merchant, merchant)
    product = custody.product(merchant, headers, kind="stored_value", price_fen=50_000,
                              validity_months=3)["id"]
    card = custody.sell(product, headers)["card_id"]
    return {"merchant": merchant, "key": headers, "key_id": key_id, "product": product,
            "card": card}


@contextmanager
def limited(engine: Engine, limits: RateLimits) -> Iterator[TestClient]:
    with TestClient(create_app(engine, rate_limits=limits),
                    raise_server_exceptions=False) as client:
        yield client


# --- request ids --------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["abc-123._X", "a", "Z" * 64])
def test_a_plain_request_id_from_the_client_is_echoed_in_the_header_and_problem(
        app_client: TestClient, given: str) -> None:
    response = app_client.get("/v1/nowhere", headers={"X-Request-Id": given})
    assert response.headers["x-request-id"] == given
    assert assert_problem(response, 404, "not_found", "path")["request_id"] == given


@pytest.mark.parametrize("given", ["", "Z" * 65, "has space", "a/b", "ünï".encode("latin-1"),
                                   "a\tb", "{x}"])
def test_any_other_request_id_is_replaced_by_a_new_one(app_client: TestClient,
                                                       given: str | bytes) -> None:
    response = app_client.get("/v1/nowhere", headers={"X-Request-Id": given})
    assert NEW_ID.fullmatch(response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_new_request_ids_are_distinct_random_uuids_also_in_a_forked_child() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for made in ids[:100]:
        assert NEW_ID.fullmatch(made)
        assert (uuid.UUID(hex=made).version, uuid.UUID(hex=made).variant) == (4, uuid.RFC_4122)
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # the child writes its next id and leaves at once
        os.write(write_fd, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    os.close(write_fd)
    in_child = os.read(read_fd, 64).decode()
    os.close(read_fd)
    assert NEW_ID.fullmatch(in_child) and in_child != new_request_id()


def test_every_answer_gets_its_own_new_id_on_the_lane_and_on_fastapi(
        app_client: TestClient, plain_client: TestClient, shop: dict[str, Any]) -> None:
    headers = {**shop["key"], **JSON}
    sale = {"product_id": shop["product"], "consumer": {"phone": "13900000077"}}
    answers = [app_client.get("/v1/health"), app_client.get("/v1/health"),
               app_client.post("/v1/cards", headers=headers, json=sale),
               plain_client.post("/v1/cards", headers=headers, json=sale),
               app_client.post("/v1/cards/c_missing/consumptions", headers=headers,
                               json={"amount_fen": 1}),
               plain_client.post("/v1/cards/c_missing/consumptions", headers=headers,
                                 json={"amount_fen": 1})]
    assert [a.status_code for a in answers] == [200, 200, 201, 201, 404, 404]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(NEW_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
    for problem in answers[4:]:  # the lane's problems carry it as FastAPI's do
        assert problem.json()["request_id"] == problem.headers["x-request-id"]


# --- the access log -----------------------------------------------------------------------


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "yufu.access"]


def test_one_json_access_line_per_request_names_the_route_key_and_status(
        app_client: TestClient, plain_client: TestClient, shop: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    card_path = f"/v1/cards/{shop['card']}/consumptions"
    headers = {**shop["key"], **JSON, "X-Request-Id": "till-7.req-1"}
    with caplog.at_level(logging.INFO, logger="yufu.access"):
        lane = app_client.post(card_path, headers=headers, json={"amount_fen": 3})
        plain = plain_client.post(card_path, headers=headers, json={"amount_fen": 3})
        read = app_client.get(f"/v1/merchants/{shop['merchant']}", headers=shop["key"])
        unknown = app_client.get("/v1/nowhere/" + "x" * 500)
        refused = app_client.get("/v1/cards/%00")
        wrong = app_client.get(f"/v1/merchants/{shop['merchant']}", headers=WRONG_KEY)
    assert [r.status_code for r in (lane, plain, read, unknown, refused, wrong)] == \
        [201, 201, 200, 404, 422, 401]
    lines = _access_lines(caplog)
    assert len(lines) == 6
    assert all(set(line) == ACCESS_FIELDS for line in lines)
    consumption = {"request_id": "till-7.req-1", "key_id": shop["key_id"], "role": "merchant",
                   "method": "POST", "route": "/v1/cards/{card_id}/consumptions",
                   "status": 201, "client": "testclient"}
    anonymous = {"key_id": None, "role": None, "method": "GET", "client": "testclient"}
    expected = [
        consumption, consumption,  # the lane names the route as FastAPI does
        {**consumption, "request_id": read.headers["x-request-id"], "method": "GET",
         "route": "/v1/merchants/{merchant_id}", "status": 200},
        {**anonymous, "route": ("/v1/nowhere/" + "x" * 500)[:200], "status": 404},
        {**anonymous, "route": "/v1/cards/\x00", "status": 422},
        {**anonymous, "route": "/v1/merchants/{merchant_id}", "status": 401},
    ]
    now = datetime.now(UTC)
    for line, want, response in zip(lines, expected, (lane, plain, read, unknown, refused,
                                                      wrong), strict=True):
        assert {k: line[k] for k in want} == want
        assert line["request_id"] == response.headers["x-request-id"]
        assert isinstance(line["latency_ms"], float) and 0 <= line["latency_ms"] < 10_000
        logged = datetime.fromisoformat(line["time"])
        assert logged.utcoffset() == timedelta(0)
        assert abs((now - logged).total_seconds()) < log_clock_skew_s


def test_the_on_request_hook_gets_the_record_after_the_answer_and_cannot_break_it(
        app_client: TestClient, shop: dict[str, Any], caplog: pytest.LogCaptureFixture
        ) -> None:
    records: list[dict[str, Any]] = []
    state = app_client.app.state  # type: ignore[attr-defined]
    kept = state.on_request
    try:
        state.on_request = lambda entry, scope: records.append(
            {**entry, "path": scope["path"]})
        response = app_client.get(f"/v1/merchants/{shop['merchant']}", headers=shop["key"])
        assert response.status_code == 200
        # The access-log record, and the request's scope (which resource was asked for).
        assert len(records) == 1 and set(records[0]) == ACCESS_FIELDS | {"path"}
        assert records[0]["path"] == f"/v1/merchants/{shop['merchant']}"
        assert records[0]["request_id"] == response.headers["x-request-id"]
        assert (records[0]["key_id"], records[0]["role"], records[0]["status"]) == \
            (shop["key_id"], "merchant", 200)

        def broken(_: dict[str, Any], __: Any) -> None:
            raise RuntimeError("the reads store is down")

        state.on_request = broken
        with caplog.at_level(logging.ERROR, logger="yufu.api"):
            again = app_client.get(f"/v1/merchants/{shop['merchant']}", headers=shop["key"])
        assert again.status_code == 200
        assert any("on_request hook failed" in r.getMessage() for r in caplog.records)
    finally:
        state.on_request = kept


# --- rate limits --------------------------------------------------------------------------


def test_after_the_burst_of_failed_authentications_an_address_gets_429_with_retry_after(
        engine: Engine, operator: Headers) -> None:
    with limited(engine, RateLimits(failed_auth_rate_per_s=0.01, failed_auth_burst=3)) as client, \
            nothing_written(client, engine):
        for _ in range(3):
            assert_problem(client.get("/v1/accounts/1", headers=WRONG_KEY), 401,
                           "unauthorized", None)
        for headers in (WRONG_KEY, operator, {"X-API-Key": "anything"}):
            response = client.get("/v1/accounts/1", headers=headers)
            body = assert_problem(response, 429, "rate_limited", None)
            assert response.headers["retry-after"] == "100"  # one token at 0.01/s
            assert body["request_id"] == response.headers["x-request-id"]
        # Without a credential there is nothing to guess: those are answered as ever.
        assert client.get("/v1/health").status_code == 200
        assert_problem(client.get("/v1/accounts/1"), 401, "unauthorized", None)


def test_a_key_over_its_rate_gets_429_on_the_lane_and_fastapi_and_other_keys_do_not(
        app_client: TestClient, engine: Engine, operator: Headers, shop: dict[str, Any]
        ) -> None:
    other, _ = key(engine, Role.merchant, shop["merchant"])
    sale = {"product_id": shop["product"], "consumer": {"phone": "13900000078"}}
    with limited(engine, RateLimits(key_rate_per_s=0.5, key_burst=2)) as client:
        assert client.get(f"/v1/merchants/{shop['merchant']}", headers=shop["key"]
                          ).status_code == 200
        assert client.post("/v1/cards", headers={**shop["key"], **JSON}, json=sale
                           ).status_code == 201
        with nothing_written(app_client, engine):
            for path in ("/v1/cards", f"/v1/cards/{shop['card']}/consumptions"):  # the lane
                response = client.post(path, headers={**shop["key"], **JSON},
                                       json={"amount_fen": 1})
                assert_problem(response, 429, "rate_limited", None)
                assert response.headers["retry-after"] == "2"  # one token at 0.5/s
            response = client.get(f"/v1/merchants/{shop['merchant']}", headers=shop["key"])
            assert_problem(response, 429, "rate_limited", None)
        assert client.get(f"/v1/merchants/{shop['merchant']}", headers=other
                          ).status_code == 200
        assert client.get("/v1/health", headers=operator).status_code == 200


def test_the_default_limits_let_a_burst_of_a_till_through(engine: Engine,
                                                          shop: dict[str, Any]) -> None:
    with limited(engine, RateLimits()) as client:
        statuses = {client.get(f"/v1/merchants/{shop['merchant']}",
                               headers=shop["key"]).status_code for _ in range(300)}
    assert statuses == {200}


def test_reads_by_banks_and_regulators_are_recorded_for_the_operator(
        app_client: TestClient, engine: Engine, operator: Headers, shop: dict[str, Any]
        ) -> None:
    regulator, regulator_id = key(engine, Role.regulator)
    path = f"/v1/merchants/{shop['merchant']}"
    r = app_client.get(path, headers=regulator, params={"x": "1"})
    assert r.status_code == 200
    app_client.get(path, headers=shop["key"])  # a merchant's own read is not a record
    app_client.app.state.access.flush()  # type: ignore[attr-defined]
    page = app_client.get("/v1/access-records", headers=operator,
                          params={"key_id": regulator_id}).json()
    [record] = page["items"]
    assert (record["role"], record["method"], record["route"], record["path"],
            record["query"], record["status"]) == (
        "regulator", "GET", "/v1/merchants/{merchant_id}", path, "x=1", 200)
    assert record["request_id"] == r.headers["x-request-id"]
    merchants = app_client.get("/v1/access-records", headers=operator,
                               params={"key_id": shop["key_id"]}).json()
    assert merchants["items"] == []
    assert app_client.get("/v1/access-records", headers=regulator).status_code == 200
    assert app_client.get("/v1/access-records", headers=shop["key"]).status_code == 403
