"""The HTTP client helpers: keys in headers, a consumer's own key, problem checks, paged lists,
and the app under a real uvicorn."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.messages import OutboxSender, read_outbox
from api.ratelimit import RateLimits

Headers = dict[str, str]
PROBLEM_JSON = "application/problem+json"
# Every request of a TestClient comes from one address, and the tests send dozens of bad keys
# and one-time codes on purpose: the limits per client address are off for them
# (tests/api/test_edge.py and tests/ledger/custody/test_consumer_credential.py test them);
# every other limit keeps its default.
ONE_ADDRESS_LIMITS = RateLimits(failed_auth_rate_per_s=0, code_rate_per_s=0)
server_start_timeout_s = 20.0


def bearer(key: str) -> Headers:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int, code: str | None = None,
                   field: str | None = None, *, detail_has: str | None = None
                   ) -> dict[str, Any]:
    """A clear RFC 9457 problem: this status, a title and a detail, this code if given (in
    `type` and `code`), this field at fault (None: no field at all), and `detail_has` in the
    detail if given. Returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:yufu:problem:"), body
    if code is not None:
        assert body["type"] == f"urn:yufu:problem:{code}", body
        assert body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is None:
        assert "field" not in body, body
    else:
        assert body.get("field") == field, body
    if detail_has is not None:
        assert detail_has in body["detail"], body
    return body


def regulator_key(client: TestClient, operator: Headers, **scope: str) -> Headers:
    """A new regulator key, scoped by `department=` or `street=` (none: the district's)."""
    response = client.post("/v1/keys", headers=operator, json={"role": "regulator", **scope})
    assert response.status_code == 201, response.text
    return bearer(response.json()["key"])


def consumer_key(client: TestClient, outbox: OutboxSender, phone: str) -> Headers:
    """A cardholder's own key, the way a consumer gets one: a code sent to the phone, read
    from the development outbox, traded for a key."""
    r = client.post("/v1/consumer/codes", json={"phone": phone})
    assert r.status_code == 202, r.text
    messages = read_outbox(outbox.path, phone)
    code = re.search(r"[0-9]{6}", messages[-1]["text"])
    assert code is not None
    r = client.post("/v1/consumer/keys", json={"phone": phone, "code": code.group(0)})
    assert r.status_code == 201, r.text
    return bearer(r.json()["key"])


def balance(client: TestClient, headers: Headers, account_id: int) -> int:
    response = client.get(f"/v1/accounts/{account_id}", headers=headers)
    assert response.status_code == 200, response.text
    return int(response.json()["balance_fen"])


def acted_by(payload: dict[str, Any], role: str) -> dict[str, Any]:
    """The payload without its actor, once the actor is checked to be a key of this role."""
    rest = dict(payload)
    actor = rest.pop("actor")
    assert actor["role"] == role and isinstance(actor["key_id"], int), actor
    return rest


def key_id_of(client: TestClient, key: str) -> int:
    """The id of an API key, as the service under test knows it."""
    return int(client.app.state.ctx.keys.authenticate(key).key_id)  # type: ignore[attr-defined]


def every_page(client: TestClient, path: str, headers: Headers, page_size: int,
               **filters: str) -> list[dict[str, Any]]:
    """Every item of a paged list (`items`, `next_after`), following the cursor from the
    first page (no `after`), with the list's filters as query parameters."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": page_size}
    while True:
        page = client.get(path, headers=headers, params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        if page.json()["next_after"] is None:
            return items
        params["after"] = page.json()["next_after"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_server(app: FastAPI, options: dict[str, Any] | None = None) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free port; yields its base URL. `options` are
    uvicorn's (its host and port are replaced)."""
    port = free_port()
    config = {"log_level": "warning", **(options or {}), "host": "127.0.0.1", "port": port}
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", **config))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + server_start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=server_start_timeout_s)


def wait_done(client: Any, location: str, headers: dict[str, str]) -> dict[str, Any]:
    """A long job (`GET /v1/jobs/{id}`) polled until it is over (done or failed)."""
    for _ in range(600):
        job = client.get(location, headers=headers).json()
        if job["status"] != "running":
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"{location} still running")
