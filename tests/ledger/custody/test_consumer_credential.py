"""The consumer's own credential: a one-time code to the phone a card was sold to buys a key
that acts for the cardholder, and nothing the merchant saw at the sale can do the same."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.messages import OutboxSender, WebhookSender, read_outbox
from api.ratelimit import RateLimits
from api.runtime import run_command
from ledger import consumer
from ledger.custody.cards import consumer_pseudonym
from ledger.errors import Unauthorized
from ledger.trust_service import VerifyCode
from tests.support.db import nothing_written
from tests.support.driver import Driver
from tests.support.http import Headers, assert_problem

TODAY = date(2026, 12, 7)
DEV_PSEUDONYM_KEY = b"yufu-development-pseudonym-key"  # create_app's default in tests


@pytest.fixture(scope="module")
def shop(custody: Driver) -> dict[str, Any]:
    custody.set_today(TODAY)
    m = custody.file("学科类培训")  # consumption needs the consumer's confirmation
    key = custody.merchant_key(m["id"])
    product = custody.product(m["id"], key, kind="sessions", price_fen=50_000, sessions=10,
                              validity_months=3)
    return {"m": m, "key": key, "product": product}


def _code(outbox: OutboxSender, phone: str) -> str:
    found = re.search(r"[0-9]{6}", read_outbox(outbox.path, phone)[-1]["text"])
    assert found is not None
    return found.group(0)


def test_a_merchant_holding_all_the_sale_answered_cannot_act_for_the_consumer(
        app_client: TestClient, engine: Engine, custody: Driver, shop: dict[str, Any]
) -> None:
    sale = custody.sell(shop["product"]["id"], shop["key"])
    use = custody.consume(sale["card_id"], shop["key"], sessions=5)
    assert use["status"] == "pending"
    # Everything the merchant saw, tried as a credential in every place one could go.
    seen = [v for v in sale.values() if isinstance(v, str)]
    assert "consumer_token" not in sale
    attempts: list[Headers] = [shop["key"]]
    for value in seen:
        attempts += [{"Authorization": f"Bearer {value}"}, {"X-Receipt-Code": value},
                     {"X-Consumer-Token": value}, {"X-API-Key": value}]
    card = sale["card_id"]
    with nothing_written(app_client, engine):
        for headers in attempts:
            for path, body in ((f"/v1/consumptions/{use['consumption_id']}/confirm", None),
                               (f"/v1/consumptions/{use['consumption_id']}/reject", None),
                               (f"/v1/cards/{card}/dispute", None),
                               (f"/v1/cards/{card}/consumer-refunds", {"reason": "balance"})):
                r = app_client.post(path, headers=headers, json=body)
                assert r.status_code in (401, 403, 404), (path, headers, r.text)
    # The cardholder, with the code sent to their phone, can.
    holder = custody.consumer(sale)
    r = custody.ok("POST", f"/v1/consumptions/{use['consumption_id']}/confirm", holder)
    assert r["status"] == "confirmed"
    entry = custody.ok("GET", f"/v1/journal/{r['journal_seq']}", custody.operator)
    assert entry["payload"]["actor"]["role"] == "consumer"
    assert entry["payload"]["actor"]["consumer_id"] == consumer_pseudonym(
        DEV_PSEUDONYM_KEY, f"phone:{sale['phone']}")


def test_a_consumer_key_acts_on_every_card_sold_to_that_phone_and_no_other(
        app_client: TestClient, custody: Driver, shop: dict[str, Any]) -> None:
    first = custody.sell(shop["product"]["id"], shop["key"])
    phone = first["phone"]
    again = custody.ok("POST", "/v1/cards", shop["key"], {
        "product_id": shop["product"]["id"], "consumer": {"phone": phone}}, 201)
    other = custody.sell(shop["product"]["id"], shop["key"])
    holder = custody.consumer(first)
    for card in (first["card_id"], again["card_id"]):
        assert custody.ok("GET", f"/v1/cards/{card}", holder)["remaining_paid_fen"] == 50_000
    r = app_client.get(f"/v1/cards/{other['card_id']}", headers=holder)
    assert_problem(r, 404, field="card_id", code="not_found")


def test_codes_are_stored_as_keyed_hashes_and_wrong_ones_spend_the_code(
        app_client: TestClient, engine: Engine, outbox: OutboxSender) -> None:
    phone = "13611112222"
    assert app_client.post("/v1/consumer/codes", json={"phone": phone}).status_code == 202
    code = _code(outbox, phone)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT code_hash::text, attempts, code_hash "
                                   "FROM consumer_codes ORDER BY id DESC LIMIT 1")).one()
    stored_hash = bytes(stored[2])
    assert code not in stored[0] and code.encode().hex() not in stored[0]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [app_client.post("/v1/consumer/keys", json={"phone": phone, "code": wrong})
               for _ in range(consumer.code_attempts_max)]
    # Spent: even the right code is refused now, and a new one must be asked for.
    answers.append(app_client.post("/v1/consumer/keys", json={"phone": phone, "code": code}))
    # ... told exactly as a phone with no code at all is told: nothing is given away.
    answers.append(app_client.post("/v1/consumer/keys",
                                   json={"phone": "13699990000", "code": code}))
    for r in answers:
        assert_problem(r, 401, field="code", code="unauthorized", detail_has="ask for a new one")
    assert len({r.json()["detail"] for r in answers}) == 1
    with engine.connect() as conn:
        attempts = conn.execute(text("SELECT attempts FROM consumer_codes WHERE code_hash = "
                                     ":h"), {"h": stored_hash}).scalar_one()
    assert attempts == consumer.code_attempts_max


def test_a_code_expires(app_client: TestClient, engine: Engine, outbox: OutboxSender) -> None:
    phone = "13633334444"
    assert app_client.post("/v1/consumer/codes", json={"phone": phone}).status_code == 202
    code = _code(outbox, phone)
    consumer_id = consumer_pseudonym(DEV_PSEUDONYM_KEY, f"phone:{phone}")
    secret = app_client.app.state.ctx.code_secret  # type: ignore[attr-defined]
    later = datetime.now(UTC) + timedelta(seconds=consumer.code_ttl_s + 1)
    with pytest.raises(Unauthorized):
        run_command(engine, VerifyCode(consumer_id, code, secret, later))
    # Before its time it still works: the refusal above was the clock, not the code.
    r = app_client.post("/v1/consumer/keys", json={"phone": phone, "code": code})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "consumer" and body["consumer_id"] == consumer_id
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=consumer.consumer_key_ttl_days - 1) < expires - datetime.now(UTC)


def test_codes_per_phone_are_limited_with_retry_after(app_client: TestClient,
                                                      engine: Engine) -> None:
    phone = "13655556666"
    for _ in range(consumer.codes_per_consumer_max):
        assert app_client.post("/v1/consumer/codes", json={"phone": phone}).status_code == 202
    with nothing_written(app_client, engine):
        r = app_client.post("/v1/consumer/codes", json={"phone": phone})
    assert_problem(r, 429, field="phone", code="rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= consumer.codes_window_s


def test_a_code_request_answers_alike_for_a_phone_with_no_card(
        app_client: TestClient) -> None:
    r = app_client.post("/v1/consumer/codes", json={"phone": "13000000000"})
    assert r.status_code == 202 and r.json() == {"sent": True,
                                                 "expires_in_s": consumer.code_ttl_s}


@pytest.mark.parametrize("body", [{}, {"phone": "1", "external_id": "x"}, {"phone": ""},
                                  {"phone": "1" * 65}, {"phone": 13800138000}])
def test_a_bad_code_request_is_422_and_writes_nothing(app_client: TestClient, engine: Engine,
                                                      body: dict[str, Any]) -> None:
    with nothing_written(app_client, engine):
        r = app_client.post("/v1/consumer/codes", json=body)
    assert r.status_code == 422, r.text


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()


def test_the_webhook_sender_posts_a_signed_message_to_the_gateway(gateway: str) -> None:
    _Gateway.received.clear()
    WebhookSender(gateway, b"shared-secret").send("13800138000", "code 123456")
    [(headers, body)] = _Gateway.received
    assert json.loads(body) == {"to": "13800138000", "channel": "phone",
                                "text": "code 123456", "kind": "one_time_code"}
    expected = hmac.new(b"shared-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Yufu-Signature"] == f"sha256={expected}"


def test_code_requests_and_attempts_per_client_address_are_limited(engine: Engine) -> None:
    limits = RateLimits(failed_auth_rate_per_s=0, code_rate_per_s=0.001, code_burst=3)
    with TestClient(create_app(engine, rate_limits=limits),
                    raise_server_exceptions=False) as client:
        answers = [client.post("/v1/consumer/codes", json={"phone": f"1370000{n:04d}"})
                   for n in range(2)]
        answers.append(client.post("/v1/consumer/keys",
                                   json={"phone": "13700000000", "code": "000000"}))
        assert [a.status_code for a in answers[:2]] == [202, 202]
        for path, body in (("/v1/consumer/codes", {"phone": "13700009999"}),
                           ("/v1/consumer/keys", {"phone": "13700000000", "code": "123456"})):
            r = client.post(path, json=body)
            assert_problem(r, 429, code="rate_limited")
            assert int(r.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("spelling", ["+8613912345678", "008613912345678", "139-1234-5678",
                                      "(139) 1234 5678", "１３９１２３４５６７８"])
def test_one_phone_is_one_consumer_however_it_is_written(
        app_client: TestClient, custody: Driver, shop: dict[str, Any], outbox: OutboxSender,
        spelling: str) -> None:
    sale = custody.ok("POST", "/v1/cards", shop["key"], {
        "product_id": shop["product"]["id"], "consumer": {"phone": spelling}}, 201)
    assert sale["consumer_id"] == consumer_pseudonym(DEV_PSEUDONYM_KEY, "phone:13912345678")
    holder = custody.consumer({"phone": "13912345678"})
    assert custody.ok("GET", f"/v1/cards/{sale['card_id']}", holder)["id"] == sale["card_id"]
    assert read_outbox(outbox.path, "13912345678")[-1]["channel"] == "phone"


@pytest.mark.parametrize("phone", ["138", "1" * 58, "12800138000", "+1 415 555 0100",
                                   "1380013800０x"])
def test_a_number_that_is_no_mobile_phone_gets_no_code_and_no_card(
        app_client: TestClient, engine: Engine, custody: Driver, shop: dict[str, Any],
        phone: str) -> None:
    with nothing_written(app_client, engine):
        r = app_client.post("/v1/consumer/codes", json={"phone": phone})
        assert_problem(r, 422, field="phone", code="invalid_input")
        r = app_client.post("/v1/cards", headers=shop["key"], json={
            "product_id": shop["product"]["id"], "consumer": {"phone": phone}})
        assert_problem(r, 422, field="consumer.phone", code="invalid_input")
