"""No input answers a 5xx: hostile paths, query strings and bodies are 4xx problems.

Each request goes to the app with the till's lane and to one without it (FastAPI's routes
alone), on one database: both must answer the same problem (status, code, field), each with
its own request id, and neither may write anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.messages import OutboxSender
from ledger.auth import Role
from tests.support.db import issue_key, nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem, bearer

JSON = {"Content-Type": "application/json"}
nesting_depth_hostile = 10_000
REQUEST_ID_HEX_CHARS = 32


@pytest.fixture(scope="module")
def world(app_client: TestClient, engine: Engine, operator: Headers,
          outbox: OutboxSender) -> dict[str, Any]:
    custody = Driver(app_client, engine, operator, outbox)
    merchant = custody.file("体育健身")
    key = custody.merchant_key(merchant["id"])
    product = custody.product(merchant["id"], key, kind="stored_value", price_fen=50_000,
                              validity_months=3)
    card = custody.sell(product["id"], key)
    return {"merchant": merchant["id"], "product": product["id"], "card": card["card_id"],
            "keys": {"none": {}, "merchant": key, "operator": operator,
                     "bank": bearer(issue_key(engine, Role.bank, bank_id="ICBC-BJ"))}}


def refused_alike(app_client: TestClient, plain_client: TestClient, engine: Engine,
                  request: dict[str, Any], status: int, code: str, field: str
                  ) -> httpx.Response:
    """Send to both apps; both answer this problem, each with its id; nothing is written."""
    answers = []
    with nothing_written(app_client, engine):
        for client in (app_client, plain_client):
            response = client.request(**request)
            body = assert_problem(response, status, code, field)
            assert body["request_id"] == response.headers["x-request-id"]
            assert len(body.pop("request_id")) == REQUEST_ID_HEX_CHARS
            answers.append(body)
    assert answers[0] == answers[1]
    return response


def _sale(world: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"product_id": world["product"], "consumer": {"phone": "13900000001"}, **changes}


def _request(world: dict[str, Any], key: str, method: str, url: str, content: bytes = b"",
             **extra: Any) -> dict[str, Any]:
    """A request as httpx takes it, with the credential `key` names ("none": no key)."""
    return {"method": method, "url": url.format(card=world["card"]), "content": content,
            "headers": {**world["keys"][key], **JSON}, **extra}


# (key, method, url, body, field at fault)
PATHS_AND_QUERIES = [
    ("none", "GET", "/v1/cards/%00", b"", "path"),
    ("none", "GET", "/v1/cards/c%00x/receipt", b"", "path"),
    ("none", "GET", "/v1/cards/%FF", b"", "path"),
    ("none", "GET", "/v1/cards/%ED%A0%80", b"", "path"),  # a lone surrogate, as UTF-8
    ("merchant", "POST", "/v1/cards/%00/consumptions", b'{"amount_fen": 5}', "path"),
    ("merchant", "POST", "/v1/cards/%FF/refunds", b'{"reason": "balance"}', "path"),
    ("operator", "GET", "/v1/merchants/m%00", b"", "path"),
    ("operator", "GET", "/v1/releases?status=%00", b"", "status"),
    ("bank", "GET", "/v1/releases?status=%FF", b"", "status"),
    ("operator", "GET", "/v1/releases?status=%ED%B0%80", b"", "status"),
    ("operator", "GET", "/v1/releases?x=1&st%00atus=a", b"", "st\x00atus"),
    ("operator", "GET", "/v1/journal?after=1%00", b"", "after"),
]


@pytest.mark.parametrize(("key", "method", "url", "body", "field"), PATHS_AND_QUERIES,
                         ids=[case[2] for case in PATHS_AND_QUERIES])
def test_nul_invalid_utf8_and_surrogates_in_paths_and_queries_are_422(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any], key: str, method: str, url: str, body: bytes,
        field: str) -> None:
    request = _request(world, key, method, url, body)
    response = refused_alike(app_client, plain_client, engine, request, 422,
                             "invalid_input", field)
    assert "NUL" in response.json()["detail"] or "UTF-8" in response.json()["detail"]


def _lone_surrogate_as_utf8(world: dict[str, Any]) -> bytes:
    # json.loads decodes bytes with surrogatepass: these three bytes become "\ud800".
    return json.dumps(_sale(world, product_id="p@")).encode().replace(b"@", b"\xed\xa0\x80")


Make = Callable[[dict[str, Any]], Any]
PRODUCT = {"kind": "stored_value", "price_fen": 100, "validity_months": 3}
# (key, url, the body from the world, field at fault): strings PostgreSQL cannot hold.
BODIES: list[tuple[str, str, Make, str]] = [
    ("merchant", "/v1/cards", lambda w: _sale(w, product_id="p\x00"), "product_id"),
    ("merchant", "/v1/cards", lambda w: _sale(w, consumer={"phone": "139\x00"}),
     "consumer.phone"),
    ("merchant", "/v1/cards", lambda w: _sale(w, consumer={"ph\x00one": "1"}),
     "consumer.ph\x00one"),
    ("merchant", "/v1/cards", lambda w: {**_sale(w), "x\x00": 1}, "x\x00"),
    # A lone surrogate cannot be sent back as it came: the field shows it escaped.
    ("merchant", "/v1/cards", lambda w: _sale(w, consumer={"k\udc00": "1"}),
     "consumer.k\\udc00"),
    ("merchant", "/v1/cards", lambda w: _sale(w, consumer={"external_id": "a\ud800"}),
     "consumer.external_id"),
    ("merchant", "/v1/cards", _lone_surrogate_as_utf8, "product_id"),
    # UTF-16, which json.loads also reads: its NUL escape is not the bytes \u0000.
    ("merchant", "/v1/cards",
     lambda w: json.dumps(_sale(w, product_id="p\x00")).encode("utf-16"), "product_id"),
    ("merchant", "/v1/cards", lambda w: [_sale(w), {"a": ["ok", "b\x00"]}], "[1].a[1]"),
    ("merchant", "/v1/cards/{card}/consumptions", lambda w: {"amount_fen": 1, "n\x00": 1},
     "n\x00"),
    ("operator", "/v1/transactions", lambda w: {"postings": [], "memo": "\x00"}, "memo"),
    ("merchant", "/v1/merchants/{merchant}/products",
     lambda w: {**PRODUCT, "name": "10节\x00课"}, "name"),
    ("operator", "/v1/merchants", lambda w: {"name": "商户\x00", "industry": "体育健身"}, "name"),
    ("operator", "/v1/keys", lambda w: {"role": "bank", "bank_id": "B\x00"}, "bank_id"),
]


@pytest.mark.parametrize(("key", "url", "make", "field"), BODIES,
                         ids=[f"{case[1]} {case[3]!r}" for case in BODIES])
def test_nul_and_lone_surrogates_in_json_strings_and_keys_are_422_with_their_path(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any], key: str, url: str, make: Make, field: str) -> None:
    body = make(world)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = _request(world, key, "POST", url.replace("{merchant}", world["merchant"]),
                       content)
    refused_alike(app_client, plain_client, engine, request, 422, "invalid_input", field)


def _deep(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


@pytest.mark.parametrize(("path", "key", "body"), [
    ("/v1/cards", "merchant", _deep(nesting_depth_hostile)),
    ("/v1/cards", "merchant", b'{"product_id": ' + _deep(nesting_depth_hostile) + b"}"),
    ("/v1/cards", "merchant", _deep(nesting_depth_hostile, '"\\u0000"')),  # parsed at the edge
    ("/v1/cards", "none", _deep(nesting_depth_hostile)),
    ("/v1/cards/{card}/consumptions", "merchant", _deep(nesting_depth_hostile)),
    ("/v1/merchants", "operator", _deep(nesting_depth_hostile)),
    ("/v1/merchants", "operator", b'{"name": ' + _deep(nesting_depth_hostile) + b"}"),
], ids=["cards", "cards field", "cards with a NUL", "cards without a key", "consumptions",
        "merchants", "merchants field"])
def test_json_nested_10000_deep_is_400_malformed_json(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any], path: str, key: str, body: bytes) -> None:
    response = refused_alike(app_client, plain_client, engine,
                             _request(world, key, "POST", path, body), 400, "malformed_json",
                             "body")
    assert "nests too deeply" in response.json()["detail"]


@pytest.mark.parametrize("body", [b'{"product_id": "\xff"}', b'{"product_id": "\xc3"}',
                                  b"\xff\xfe{"])
def test_a_body_that_is_not_utf8_is_400_malformed_json(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any], body: bytes) -> None:
    refused_alike(app_client, plain_client, engine,
                  _request(world, "merchant", "POST", "/v1/cards", body), 400,
                  "malformed_json", "body")


def test_an_integer_of_5000_digits_is_400_malformed_json(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any]) -> None:
    """json.loads refuses it with a ValueError that is no JSONDecodeError."""
    body = b'{"amount_fen": ' + b"7" * 5000 + b"}"
    refused_alike(app_client, plain_client, engine,
                  _request(world, "merchant", "POST", "/v1/cards/{card}/consumptions", body),
                  400, "malformed_json", "body")


@pytest.mark.parametrize(("method", "url", "status", "code", "field"), [
    ("GET", "/v1/nowhere", 404, "not_found", "path"),
    ("POST", "/v1/nowhere", 404, "not_found", "path"),
    ("GET", "/", 404, "not_found", "path"),
    ("GET", "/v1/health/", 404, "not_found", "path"),
    ("POST", "/v1/cards/", 404, "not_found", "path"),
    ("GET", "/v1/cards", 405, "method_not_allowed", "method"),
    ("DELETE", "/v1/health", 405, "method_not_allowed", "method"),
    ("PATCH", "/v1/cards/c_x/consumptions", 405, "method_not_allowed", "method"),
    ("BREW", "/v1/health", 405, "method_not_allowed", "method"),
])
def test_unknown_paths_and_methods_are_problems_and_nothing_redirects(
        app_client: TestClient, plain_client: TestClient, engine: Engine,
        world: dict[str, Any], method: str, url: str, status: int, code: str,
        field: str) -> None:
    request = _request(world, "merchant", method, url, b"{}", follow_redirects=False)
    request["headers"]["Host"] = "evil.example"
    response = refused_alike(app_client, plain_client, engine, request, status, code, field)
    assert "location" not in response.headers
    assert "evil" not in response.text and "evil" not in str(response.headers)
    if status == 405:
        assert method not in response.headers["allow"] and response.headers["allow"]


def test_nul_without_any_credential_is_refused_before_authentication(
        app_client: TestClient, engine: Engine) -> None:
    with nothing_written(app_client, engine):
        response = app_client.get("/v1/cards/%00")
    body = assert_problem(response, 422, "invalid_input", "path")
    assert body["request_id"] == response.headers["x-request-id"]


def test_ordinary_text_that_looks_suspect_still_passes(
        app_client: TestClient, world: dict[str, Any]) -> None:
    """Escapes of real characters, emoji as surrogate pairs, Hangul (0xED lead bytes) and an
    escaped backslash before u0000 are text PostgreSQL holds: the sale goes through."""
    headers = {**world["keys"]["merchant"], **JSON}
    for external_id in ("\\u0000 literally", "😀 pair", "한국 Hangul", "é escaped"):
        sale = _sale(world, consumer={"external_id": external_id})
        for ascii_only in (True, False):
            content = json.dumps(sale, ensure_ascii=ascii_only).encode()
            response = app_client.post("/v1/cards", headers=headers, content=content)
            assert response.status_code == 201, (external_id, response.text)


def test_a_keyless_request_cannot_make_the_service_parse_or_answer_megabytes(
        app_client: TestClient, engine: Engine, operator: dict[str, str]) -> None:
    huge = "{" + ",".join(f'"k{n}":1' for n in range(300_000)) + "}"
    with nothing_written(app_client, engine):
        r = app_client.post("/v1/consumer/codes", content=huge,
                            headers={"Content-Type": "application/json"})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        # A body of many wrong fields is answered with a page of them and their count.
        r = app_client.post("/v1/keys", headers=operator,
                            json={"role": "regulator", **{f"k{n}": 1 for n in range(500)}})
    assert r.status_code == 422, r.text
    body = r.json()
    assert len(body["errors"]) == 20 and body["errors_count"] == 500
