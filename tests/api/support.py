"""Helpers the HTTP tests share: problem checks and proof that nothing was written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

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
