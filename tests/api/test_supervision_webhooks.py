"""Webhooks per department (预警推送): a department's alerts are POSTed to a real local HTTP
server, signed with HMAC-SHA-256 over the body, retried with backoff when the receiver
fails, and every attempt recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.webhooks import SIGNATURE_HEADER, deliver_due
from ledger.db.supervision_queries import webhook_attempts_max, webhook_backoff_first_s
from tests.support.driver import Driver
from tests.support.http import Headers, bearer

D0 = date(2026, 6, 1)
SECRET = "望京-文旅体局-webhook-secret"


class Receiver(ThreadingHTTPServer):
    """Answers each POST with the next status of `answers` (then 200), keeping what came."""

    def __init__(self, answers: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        status = self.server.answers.pop(0) if self.server.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([503])  # the first attempt fails: the second is the retry
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def regulator(client: TestClient, operator: Headers, **scope: str) -> Headers:
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def test_a_department_s_alert_is_delivered_signed_and_retried_with_backoff(
        custody: Driver, app_client: TestClient, engine: Engine, receiver: Receiver) -> None:
    custody.set_today(D0)
    culture = regulator(app_client, custody.operator, department="区文旅体局")
    commerce = regulator(app_client, custody.operator, department="区商务局")
    subscribed = custody.ok("POST", "/v1/webhooks", culture, {
        "department": "区文旅体局", "url": receiver.url, "secret": SECRET}, 201)
    assert "secret" not in subscribed
    response = app_client.post("/v1/webhooks", headers=commerce, json={
        "department": "区文旅体局", "url": receiver.url, "secret": SECRET})
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    ours, theirs = custody.file("体育健身"), custody.file("美容美发")
    for m, key in ((ours, culture), (theirs, commerce)):
        custody.ok("POST", "/v1/supervision/records", key, {
            "credit_code": m["credit_code"], "kind": "失信被执行人", "source": "法院"}, 201)
    alerts = [a["id"] for a in custody.ok("GET", "/v1/alerts", culture)["items"]
              if a["merchant_id"] == ours["id"]]
    assert len(alerts) == 1

    now = datetime.now(UTC)
    first = deliver_due(engine, now)
    assert [(t["status"], t["answer"]) for t in first] == [("pending", 503)]
    assert deliver_due(engine, now) == []  # not due again before its backoff
    later = now + timedelta(seconds=webhook_backoff_first_s)
    second = deliver_due(engine, later)
    assert [(t["status"], t["answer"]) for t in second] == [("delivered", 200)]

    assert len(receiver.received) == 2  # only our department's alert, twice
    headers, body = receiver.received[-1]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    sent = json.loads(body)
    assert (sent["alert"]["id"], sent["alert"]["merchant_id"]) == (alerts[0], ours["id"])
    assert sent["alert"]["signals"][0]["kind"] == "court_listed_defaulter"
    [delivery] = custody.ok("GET", "/v1/webhooks/deliveries", culture)["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "delivered", 2, 200)
    assert custody.ok("GET", "/v1/webhooks/deliveries", commerce)["items"] == []


def test_a_receiver_that_never_answers_well_ends_failed_and_stays_listed(
        custody: Driver, app_client: TestClient, engine: Engine, receiver: Receiver) -> None:
    custody.set_today(D0)
    street = regulator(app_client, custody.operator, street="酒仙桥街道")
    receiver.answers[:] = [500] * webhook_attempts_max
    custody.ok("POST", "/v1/webhooks", street, {
        "street": "酒仙桥街道", "url": receiver.url, "secret": SECRET}, 201)
    m = custody.file("美容美发", street="酒仙桥街道")  # not the first test's department
    custody.ok("POST", "/v1/supervision/records", street, {
        "credit_code": m["credit_code"], "kind": "注销", "source": "区市监局"}, 201)
    at = datetime.now(UTC)
    statuses = []
    for _ in range(webhook_attempts_max):
        statuses += [t["status"] for t in deliver_due(engine, at)]
        at += timedelta(days=1)  # past any backoff
    assert statuses == ["pending"] * (webhook_attempts_max - 1) + ["failed"]
    assert deliver_due(engine, at) == []
    [delivery] = custody.ok("GET", "/v1/webhooks/deliveries", street)["items"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status"]) == (
        "failed", webhook_attempts_max, 500)
    assert delivery["last_error"] == "answered 500"
