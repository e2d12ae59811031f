"""What the custody tests share: valid credit codes, problem checks, proof nothing was written,
the custody identity, and an independent largest-remainder split."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from stdnum.cn import uscc

from ledger.db import custody_queries, queries
from ledger.journal import ChainBreak, check_chain

Headers = dict[str, str]
PROBLEM_JSON = "application/problem+json"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Every table a custody write can touch: if none changes, nothing was written.
TABLES = ("journal_entries", "transactions", "postings", "accounts", "api_keys",
          "idempotency_records", "rule_sets", "merchants", "merchant_accounts", "products",
          "cards", "consumptions", "release_instructions", "refund_instructions")
ORDER = {"journal_entries": "seq", "transactions": "id", "postings": "transaction_id, idx",
         "merchant_accounts": "merchant_id, purpose", "idempotency_records": "api_key_id, key"}
ASSETS = ("custody_cash", "custody_in_transit", "direct_share")
LIABILITIES = ("earned_pending", "earned", "reserve", "release_pending", "refunds_payable",
               "merchant_refund_due")


def credit_code(rng: random.Random) -> str:
    """A valid unified social credit code: 8 digits (authority, type, region), 9 characters
    of organisation code, and the GB 32100-2015 check character."""
    base = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + \
        "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    code = base + uscc.calc_check_digit(base)
    assert uscc.is_valid(code)
    return code


def bearer(key: str) -> Headers:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response: httpx.Response, status: int, field: str | None = None,
                   code: str | None = None, detail_has: str | None = None) -> dict[str, Any]:
    """A clear RFC 9457 problem: status, type, title, detail, and the field at fault."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:yufu:problem:")
    if code is not None:
        assert body["type"] == f"urn:yufu:problem:{code}", body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if field is None:
        assert "field" not in body, body
    else:
        assert body.get("field") == field, body
    if detail_has is not None:
        assert detail_has in body["detail"], body
    return body


def head_seq(client: TestClient) -> int:
    response = client.get("/v1/health")
    assert response.status_code == 200, response.text
    return int(response.json()["journal_head_seq"])


def database_state(engine: Engine) -> dict[str, Any]:
    """Every row of every table a write can touch, and the chain head."""
    with engine.connect() as conn:
        state: dict[str, Any] = {
            table: [tuple(r) for r in conn.execute(
                text(f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}"))]
            for table in TABLES}
        state["head"] = tuple(conn.execute(text("SELECT seq, entry_hash FROM chain_head")).one())
    return state


@contextmanager
def nothing_written(client: TestClient, engine: Engine) -> Iterator[None]:
    """The block leaves the journal head (from /v1/health), every row and balance as is."""
    seq_before, state_before = head_seq(client), database_state(engine)
    yield
    assert head_seq(client) == seq_before
    assert database_state(engine) == state_before


def card_balances(conn: Connection, merchant_id: str) -> dict[str, int]:
    """Each card's normal balance (what is left on it), by card id."""
    rows = conn.execute(text(
        "SELECT c.id, -a.balance_fen FROM cards c JOIN accounts a ON a.id = c.account_id "
        "WHERE c.merchant_id = :m"), {"m": merchant_id}).all()
    return {r[0]: int(r[1]) for r in rows}


def check_custody_identity(conn: Connection, merchant_id: str) -> dict[str, int]:
    """The merchant's balance sheet and its custody identity; returns the balances."""
    b = custody_queries.merchant_balances(conn, merchant_id)
    assert set(b) == set(ASSETS) | set(LIABILITIES)
    assert all(value >= 0 for value in b.values()), b
    cards = sum(card_balances(conn, merchant_id).values())
    # Balance sheet: every asset account against every liability account, cards included.
    assert sum(b[p] for p in ASSETS) == cards + sum(b[p] for p in LIABILITIES)
    # Custody identity: what the bank holds or is receiving equals the custodied share of
    # the outstanding card balances, plus what is earned, reserved, being released and being
    # refunded. The custodied share is the card balances less what the merchant took
    # directly and still covers them with (what it took, less what it already owes back).
    custodied_share = cards - (b["direct_share"] - b["merchant_refund_due"])
    assert b["custody_cash"] + b["custody_in_transit"] == (
        custodied_share + b["earned_pending"] + b["earned"] + b["reserve"]
        + b["release_pending"] + b["refunds_payable"])
    return b


def check_journal(conn: Connection, start_after: int = 0, prev_hash: bytes | None = None
                  ) -> tuple[int, bytes]:
    """The chain verifies from `start_after` (whose hash is `prev_hash`); returns the head."""
    kwargs: dict[str, Any] = {}
    if start_after:
        assert prev_hash is not None
        kwargs = {"start_seq": start_after + 1, "start_prev_hash": prev_hash}
    seq, head = start_after, prev_hash
    for result in check_chain(queries.stored_entries(conn, start_after), **kwargs):
        assert not isinstance(result, ChainBreak), result
        seq, head = seq + 1, result
    assert queries.account_balance_mismatches(conn) == []
    assert queries.chain_head(conn) == (seq, head)
    assert head is not None
    return seq, head


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Written again from the definition, to check the service: floors of the exact shares,
    then one fen each to the largest remainders, ties to the earlier."""
    whole = sum(weights)
    exact = [Fraction(total * w, whole) for w in weights]
    parts = [int(x) for x in exact]  # floor: all non-negative
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts
