"""The lane (api/lane.py) answers the till's writes exactly as FastAPI's routes do.

The same requests go to an app with the lane and to one without it, on one database; every
answer must agree: status, content type, the whole problem body for a refusal, and the same
fields for a success (whose ids and sequence numbers differ by nature). A refusal writes
nothing on either path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.responses import Response

from api import lane
from api.app import create_app
from api.context import Authed, MaybeAuthed, limit_code_attempts
from api.lane import LaneMismatch, lane_routes
from api.messages import OutboxSender
from api.routes import custody, ledger
from api.routes.custody import ConsumptionIn
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


def test_each_lane_route_is_a_fastapi_post_route_with_its_template_and_endpoint(
        app_client: TestClient) -> None:
    """So the access log names a request's route alike on both paths (the app includes these
    routers without a prefix of its own)."""
    routes = app_client.app.lane_routes  # type: ignore[attr-defined]
    posts = {(route.path, route.endpoint) for router in (custody.router, ledger.router)
             for route in router.routes if isinstance(route, APIRoute) and "POST" in route.methods}
    assert {(route.path, route.endpoint) for route in routes} <= posts
    assert len(routes) == 4


def test_the_lane_takes_each_endpoint_and_body_model_from_the_apps_routes(
        app_client: TestClient) -> None:
    table = {route.path: (route.endpoint, route.body)
             for route in app_client.app.lane_routes}  # type: ignore[attr-defined]
    assert table == {
        "/v1/transactions": (ledger.post_transaction, ledger.TransactionIn),
        "/v1/cards": (custody.sell_card, custody.SaleIn),
        "/v1/cards/{card_id}/consumptions": (custody.consume, ConsumptionIn),
        "/v1/cards/{card_id}/refunds": (custody.refund_card, custody.RefundIn)}


# Consumption endpoints the lane could not call as FastAPI does, each for its own reason.
async def _without_who(request: Request, card_id: str, body: ConsumptionIn) -> Response:
    raise AssertionError("never called")


async def _maybe_keyed(request: Request, card_id: str, body: ConsumptionIn,
                       who: MaybeAuthed) -> Response:
    raise AssertionError("never called")


async def _body_named_otherwise(request: Request, card_id: str, payload: ConsumptionIn,
                                who: Authed) -> Response:
    raise AssertionError("never called")


async def _with_a_query_parameter(request: Request, card_id: str, body: ConsumptionIn,
                                  who: Authed, dry_run: bool = False) -> Response:
    raise AssertionError("never called")


def _not_async(request: Request, card_id: str, body: ConsumptionIn, who: Authed) -> Response:
    raise AssertionError("never called")


async def _path_parameter_renamed(request: Request, card: str, body: ConsumptionIn,
                                  who: Authed) -> Response:
    raise AssertionError("never called")


async def _request_not_first(card_id: str, request: Request, body: ConsumptionIn,
                             who: Authed) -> Response:
    raise AssertionError("never called")


def _app_consuming_with(endpoint: Callable[..., Any], **route: Any) -> FastAPI:
    app = FastAPI()
    app.add_api_route("/v1/transactions", ledger.post_transaction, methods=["POST"])
    app.add_api_route("/v1/cards", custody.sell_card, methods=["POST"])
    app.add_api_route("/v1/cards/{card_id}/consumptions", endpoint, methods=["POST"], **route)
    app.add_api_route("/v1/cards/{card_id}/refunds", custody.refund_card, methods=["POST"])
    return app


@pytest.mark.parametrize(("endpoint", "route", "reason"), [
    (_without_who, {}, "who=Depends(keyed)"),
    (_without_who, {}, "cannot be called as the lane calls it"),
    (_maybe_keyed, {}, "who=Depends(keyed)"),
    (_body_named_otherwise, {}, "one pydantic model named body"),
    (_with_a_query_parameter, {}, "query, header or cookie parameters"),
    (_not_async, {}, "must be async"),
    (_path_parameter_renamed, {}, "path parameters must be ['card_id']"),
    (_request_not_first, {}, "first parameter must be the Request"),
    (custody.consume, {"dependencies": [Depends(limit_code_attempts)]}, "one dependency"),
])
def test_the_lane_refuses_an_endpoint_that_does_not_take_what_it_passes(
        endpoint: Callable[..., Any], route: dict[str, Any], reason: str) -> None:
    app = _app_consuming_with(endpoint, **route)
    with pytest.raises(LaneMismatch, match=re.escape(reason)) as refused:
        lane_routes(app.routes)
    assert "POST /v1/cards/{card_id}/consumptions" in str(refused.value)
    assert len(lane_routes(_app_consuming_with(custody.consume).routes)) == 4  # the real one


def test_the_lane_refuses_a_path_the_app_has_no_route_for() -> None:
    app = FastAPI()
    app.add_api_route("/v1/transactions", ledger.post_transaction, methods=["POST"])
    with pytest.raises(LaneMismatch, match="POST /v1/cards, and the app has no such route"):
        lane_routes(app.routes)


def test_an_app_whose_lane_cannot_serve_its_paths_is_not_made(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lane, "PATHS", (*lane.PATHS, "/v1/nowhere"))
    with pytest.raises(LaneMismatch, match="/v1/nowhere"):
        create_app(engine)
    assert create_app(engine, lane=False).lane_routes is None  # type: ignore[attr-defined]


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
