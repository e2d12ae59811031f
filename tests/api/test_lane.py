"""The lane (api/lane.py) answers the till's writes exactly as FastAPI's routes do.

The same requests go to an app with the lane and to one without it, on one database; every
answer must agree: status, content type, the whole problem body for a refusal, and the same
fields for a success (whose ids and sequence numbers differ by nature). A refusal writes
nothing on either path.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.lane import ROUTES
from api.messages import OutboxSender
from api.routes import custody, ledger
from ledger.auth import Role
from tests.support.db import issue_key, nothing_written, open_account
from tests.support.driver import Driver
from tests.support.http import Headers, bearer

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def world(app_client: TestClient, engine: Engine, operator: Headers,
          outbox: OutboxSender) -> dict[str, Any]:
    custody = Driver(app_client, engine, operator, outbox)
    merchant = custody.file("体育健身")
    other = custody.file("体育健身")
    key = custody.merchant_key(merchant["id"])
    product = custody.product(merchant["id"], key, kind="stored_value", price_fen=50_000,
                              validity_months=3)
    other_key = custody.merchant_key(other["id"])
    other_product = custody.product(other["id"], other_key, kind="stored_value",
                                    price_fen=50_000, validity_months=3)
    return {"custody": custody, "key": key, "product": product["id"],
            "other_product": other_product["id"], "cash": open_account(engine, "asset"),
            "card_account": open_account(engine, "liability", non_negative=True),
            "regulator": bearer(issue_key(engine, Role.regulator))}


def _both(lane: TestClient, plain: TestClient, path: str, headers: Headers,
          content: bytes | str) -> tuple[httpx.Response, httpx.Response]:
    body = content.encode() if isinstance(content, str) else content
    return (lane.post(path, headers=headers, content=body),
            plain.post(path, headers=headers, content=body))


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert (a.status_code, a.headers["content-type"]) == \
        (b.status_code, b.headers["content-type"]), (a.text, b.text)
    if a.status_code >= 400:  # the same problem, each with its own request's id
        first, second = a.json(), b.json()
        assert first.pop("request_id") == a.headers["x-request-id"]
        assert second.pop("request_id") == b.headers["x-request-id"]
        assert first == second
    else:
        assert a.json().keys() == b.json().keys()


REFUSED_BODIES = [
    "",  # no body
    "{",  # not JSON
    "[1, 2]",  # JSON, not an object
    '{"unknown": 1}',
    '{"amount_fen": "5"}',
    '{"amount_fen": 1.5}',
    '{"sessions": 1, "amount_fen": 1}',
    '{"amount_fen": 0}',
    '{"reason": "because"}',
    '{"product_id": "p_missing", "consumer": {"phone": "13900000000"}}',
    '{"product_id": "x", "consumer": {"phone": "1", "external_id": "2"}}',
    '{"postings": [{"account_id": 1, "amount_fen": 5}]}',
    '{"postings": "no"}',
    b'{"amount_fen": 5}\xff',
]


@pytest.mark.parametrize("content", REFUSED_BODIES)
@pytest.mark.parametrize("path", ["/v1/transactions", "/v1/cards", "/v1/cards/c_x/consumptions",
                                  "/v1/cards/c_x/refunds"])
def test_refusals_agree_and_write_nothing(app_client: TestClient, plain_client: TestClient,
                                          engine: Engine, world: dict[str, Any], path: str,
                                          content: bytes | str) -> None:
    with nothing_written(app_client, engine):
        a, b = _both(app_client, plain_client, path, {**world["key"], **JSON}, content)
    _same(a, b)


@pytest.mark.parametrize("headers", [
    JSON,  # no key
    {**JSON, "Authorization": "Bearer yufu_0000000000000000_nope"},
    {"Authorization": "x", "Content-Type": "text/plain"},
    {**JSON, "Idempotency-Key": ""},
])
def test_credentials_and_headers_agree(app_client: TestClient, plain_client: TestClient,
                                       engine: Engine, world: dict[str, Any],
                                       headers: Headers) -> None:
    with nothing_written(app_client, engine):
        a, b = _both(app_client, plain_client, "/v1/cards/c_x/consumptions",
                     {**world["key"], **headers}, '{"amount_fen": 5}')
    _same(a, b)


def test_each_lane_route_is_a_fastapi_post_route_with_its_template_and_endpoint() -> None:
    """So the access log names a request's route alike on both paths (the app includes these
    routers without a prefix of its own)."""
    posts = {(route.path, route.endpoint) for router in (custody.router, ledger.router)
             for route in router.routes if isinstance(route, APIRoute) and "POST" in route.methods}
    assert {(route.path, route.endpoint) for route in ROUTES} <= posts
    assert len(ROUTES) == 4


def test_a_path_beyond_the_id_limit_goes_to_fastapi(app_client: TestClient,
                                                    plain_client: TestClient,
                                                    world: dict[str, Any]) -> None:
    a, b = _both(app_client, plain_client, f"/v1/cards/{'c' * 65}/consumptions",
                 {**world["key"], **JSON}, '{"amount_fen": 5}')
    _same(a, b)
    assert a.status_code == 422 and a.json()["field"] == "card_id"


def test_writes_agree(app_client: TestClient, plain_client: TestClient,
                      world: dict[str, Any]) -> None:
    headers = {**world["key"], **JSON}
    sale = json.dumps({"product_id": world["product"], "consumer": {"phone": "13900000009"}})
    a, b = _both(app_client, plain_client, "/v1/cards", headers, sale)
    _same(a, b)
    assert a.status_code == 201
    for card in (a.json()["card_id"], b.json()["card_id"]):
        c, d = (client.post(f"/v1/cards/{card}/consumptions", headers=headers,
                            content=b'{"amount_fen": 700}')
                for client in (app_client, plain_client))
        _same(c, d)
        assert c.json()["paid_fen"] == d.json()["paid_fen"] == 700
    theirs = json.dumps({"product_id": world["other_product"], "consumer": {"phone": "1"}})
    _same(*_both(app_client, plain_client, "/v1/cards", headers, theirs))
    regulator = {**world["regulator"], **JSON}
    _same(*_both(app_client, plain_client, "/v1/cards", regulator, sale))


def test_idempotent_replays_agree(app_client: TestClient, plain_client: TestClient,
                                  world: dict[str, Any], operator: Headers) -> None:
    transfer = json.dumps({"postings": [{"account_id": world["cash"], "amount_fen": 100},
                                        {"account_id": world["card_account"],
                                         "amount_fen": -100}]})
    headers = {**operator, **JSON, "Idempotency-Key": "lane-replay-1"}
    first = app_client.post("/v1/transactions", headers=headers, content=transfer)
    assert first.status_code == 201, first.text
    again, plain_again = _both(app_client, plain_client, "/v1/transactions", headers, transfer)
    assert again.json() == plain_again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == plain_again.headers["Idempotent-Replayed"]
    changed = transfer.replace("100", "200")
    assert changed != transfer
    _same(*_both(app_client, plain_client, "/v1/transactions", headers, changed))
