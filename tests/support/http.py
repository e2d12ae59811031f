"""The HTTP client helpers: a consumer's key, problem checks and proof that nothing was
written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.messages import OutboxSender, read_outbox
from api.ratelimit import RateLimits

Headers = dict[str, str]
# Every request of a TestClient comes from one address, and the tests send dozens of bad keys
# and one-time codes on purpose: the limits per client address are off for them
# (tests/api/test_edge.py and tests/ledger/custody/test_consumer_credential.py test them);
# every other limit keeps its default.
ONE_ADDRESS_LIMITS = RateLimits(failed_auth_rate_per_s=0, code_rate_per_s=0)
PROBLEM_JSON = "application/problem+json"
# Every table a write can touch: if none of them changes, nothing was written.
WRITTEN_TABLES = ("journal_entries", "transactions", "postings", "accounts", "api_keys",
                  "idempotency_records")


def head_seq(client: TestClient) -> int:
    response = client.get("/v1/health")
    assert response.status_code == 200, response.text
    return int(response.json()["journal_head_seq"])


def assert_problem(response: httpx.Response, status: int, code: str,
                   field: str | None) -> dict[str, Any]:
    """An RFC 9457 problem with this status, code and field (None: no field at all)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:yufu:problem:{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is None:
        assert "field" not in body, body
    else:
        assert body["field"] == field, body
    return body


def database_state(engine: Engine) -> dict[str, Any]:
    """Row counts of every written table, every balance, and the chain head."""
    with engine.connect() as conn:
        state: dict[str, Any] = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in WRITTEN_TABLES}
        state["balances"] = [tuple(r) for r in conn.execute(
            text("SELECT id, balance_fen FROM accounts ORDER BY id"))]
        state["head"] = tuple(conn.execute(text("SELECT seq, entry_hash FROM chain_head")).one())
    return state


@contextmanager
def nothing_written(client: TestClient, engine: Engine) -> Iterator[None]:
    """Asserts that the block leaves the journal head, every table and every balance as is."""
    seq_before, state_before = head_seq(client), database_state(engine)
    yield
    assert head_seq(client) == seq_before
    assert database_state(engine) == state_before


def balance(client: TestClient, headers: dict[str, str], account_id: int) -> int:
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


def every_page(client: TestClient, path: str, headers: dict[str, str], page_size: int
               ) -> list[dict[str, Any]]:
    """Every item of a paged list (`items`, `next_after`), following the cursor."""
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = client.get(path, headers=headers, params={"after": after, "limit": page_size})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        if page.json()["next_after"] is None:
            return items
        after = page.json()["next_after"]


def consumer_key(client: TestClient, outbox: OutboxSender, phone: str) -> dict[str, str]:
    """A cardholder's own key, the way a consumer gets one: a code sent to the phone, read
    from the development outbox, traded for a key."""
    r = client.post("/v1/consumer/codes", json={"phone": phone})
    assert r.status_code == 202, r.text
    messages = read_outbox(outbox.path, phone)
    code = re.search(r"[0-9]{6}", messages[-1]["text"])
    assert code is not None
    r = client.post("/v1/consumer/keys", json={"phone": phone, "code": code.group(0)})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['key']}"}
